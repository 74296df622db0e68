"""Database engine and the per-request session: the one place where transactions commit or roll back."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from functools import cache
from pathlib import Path
from time import monotonic
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import ARRAY, Executable, Uuid, event, inspect
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from billing_api import embedded_postgres
from billing_api.config import Settings
from billing_api.errors import DatabaseUnavailable, DomainError


def embedded_database_url(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL kept in `data_dir` and return its asyncpg URL. Its lifecycle
    (who stops it, and when) is in embedded_postgres.py."""
    return to_asyncpg_url(embedded_postgres.url(data_dir / "postgres"))


def to_asyncpg_url(uri: str) -> str:
    """pgserver and libpq speak `postgresql://user:@/db?host=...`; SQLAlchemy wants the asyncpg dialect."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgresql://", "postgres://"):
        if uri.startswith(prefix):
            rest = uri[len(prefix) :]
            break
    else:
        raise ValueError(f"not a PostgreSQL URL: {uri}")
    rest = rest.replace("postgres:@", "postgres@", 1)
    return "postgresql+asyncpg://" + rest


def resolve_database_url(settings: Settings) -> str:
    if settings.database_url:
        return to_asyncpg_url(settings.database_url)
    settings.check_production()
    return embedded_database_url(settings.data_dir)


# The bill queries decide their access path at run time inside one statement (bills/repository/dashboard.py), so
# one generic plan serves every caller; re-planning them for each execution (custom plans) cost more than
# running them (docs/performance.md, "The plan cache"; bench/run.py measures it).
# JIT off: a generic plan costed on default selectivities can cross the JIT thresholds for a statement that runs in
# milliseconds, and then compiles for seconds (docs/performance.md, "Access review at 10M access-log rows").
SERVER_SETTINGS = {"plan_cache_mode": "force_generic_plan", "jit": "off"}


class Record(asyncpg.Record):
    """A row of `fetch`: by position, by name (`row["id"]`) and as an attribute (`row.id`), like SQLAlchemy's."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class _Compiled:
    """A statement compiled once for asyncpg: its SQL, and how to turn named parameters into positional ones
    (the statement's own defaults, then SQLAlchemy's bind processors: enums to their values, JSON to text)."""

    def __init__(self, statement: Executable, dialect) -> None:
        self.compiled = statement.compile(dialect=dialect)
        self.sql = str(self.compiled)
        if "POSTCOMPILE" in self.sql:
            raise ValueError("expanding parameters (IN lists) are rendered per execution: use session.execute")
        self.names = tuple(self.compiled.positiontup or ())
        processors = self.compiled._bind_processors  # private to SQLAlchemy, pinned in the lock
        binds = {name: bind for bind, name in self.compiled.bind_names.items()}
        # asyncpg takes UUIDs and arrays of them as they are; SQLAlchemy's processors would copy each element.
        self.processors = tuple(None if isinstance(binds[name].type, (ARRAY, Uuid)) else processors.get(name)
                                for name in self.names)

    def arguments(self, params: dict) -> list:
        values = self.compiled.construct_params(params)
        return [value if process is None or value is None else process(value)
                for value, process in zip((values[name] for name in self.names), self.processors, strict=True)]


_compiled: dict[Executable, _Compiled] = {}


async def fetch(session: AsyncSession, statement: Executable, params: dict) -> list[Record]:
    """Run a statement built once (and kept) by a repository, in the session's transaction, straight on the
    asyncpg connection: for the hottest reads and writes, SQLAlchemy's execution and result layers cost more
    CPU than PostgreSQL spends running them (docs/performance.md). Errors come out as SQLAlchemy's would."""
    if session.new or session.dirty or session.deleted:
        await session.flush()  # as session.execute's autoflush would: the statement sees the request's changes
    connection = await session.connection()
    async with _on_asyncpg(connection, statement) as (adapted, compiled):
        # The adapter's own lazy BEGIN (SQLAlchemy's asyncpg adapter, pinned): this runs inside the session's
        # transaction exactly as its own statements do.
        if adapted._transaction is None:
            await adapted._start_transaction()
        return await adapted.driver_connection.fetch(compiled.sql, *compiled.arguments(params), record_class=Record)


async def write_many(connection: AsyncConnection, statement: Executable, rows: list[dict]) -> None:
    """`statement` once per row, all in one transaction of its own on `connection` (not in one of SQLAlchemy's),
    straight on asyncpg, which sends the rows together: one commit, one WAL flush, for a batch of writes."""
    async with _on_asyncpg(connection, statement) as (adapted, compiled):
        driver = adapted.driver_connection
        async with driver.transaction():
            await driver.executemany(compiled.sql, [compiled.arguments(row) for row in rows])


@asynccontextmanager
async def _on_asyncpg(connection: AsyncConnection, statement: Executable) -> AsyncIterator[tuple]:
    """The connection's asyncpg adapter, under its lock, and `statement` compiled for it; asyncpg's errors are
    raised as SQLAlchemy raises them, and a connection they show dead is invalidated."""
    adapted = (await connection.get_raw_connection()).dbapi_connection
    compiled = _compiled.get(statement)
    if compiled is None:
        compiled = _compiled[statement] = _Compiled(statement, connection.dialect)
    try:
        async with adapted._execute_mutex:
            yield adapted, compiled
    except Exception as error:
        try:
            adapted._handle_exception(error)  # asyncpg's error as the DBAPI error SQLAlchemy would have seen
        except connection.dialect.loaded_dbapi.Error as dbapi_error:
            invalidated = connection.dialect.is_disconnect(dbapi_error, adapted, None)
            if invalidated:
                await connection.invalidate()
            raise DBAPIError.instance(compiled.sql, None, dbapi_error, connection.dialect.loaded_dbapi.Error,
                                      hide_parameters=True, connection_invalidated=invalidated,
                                      dialect=connection.dialect) from error
        raise


@cache
def _loaders(model: type, dialect) -> tuple[tuple[str, object], ...]:
    """Each column attribute of `model` with the result processor of its type (enum values to members...)."""
    return tuple((attribute.key, attribute.columns[0].type._cached_result_processor(dialect, None))
                 for attribute in inspect(model).column_attrs)


def columns_of(model: type) -> list:
    """What `fetch` must select for `loaded` to build the model: its column attributes, labelled by key."""
    return [getattr(model, attribute.key).label(attribute.key) for attribute in inspect(model).column_attrs]


def loaded(session: AsyncSession, model: type, record: Record):
    """The ORM instance of a row `fetch` read (selecting `columns_of(model)`), in the session as though the
    session had loaded it: changes to it flush as updates."""
    values = {}
    for key, process in _loaders(model, session.bind.dialect):
        value = record[key]
        values[key] = value if process is None or value is None else process(value)
    known = session.sync_session.identity_map.get(identity_key(model, record["id"]))
    if known is not None:  # the session's own copy, brought up to the row just read
        for key, value in values.items():
            set_committed_value(known, key, value)
        return known
    instance = model(**values)
    make_transient_to_detached(instance)  # as if loaded: no pending changes
    session.add(instance)
    return instance


class _NoRows(logging.Filter):
    """Rows hold password hashes and health data: SQL logging (DEBUG on sqlalchemy.engine) shows statements, not
    rows. Parameters are hidden by the engines' `hide_parameters`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Row %r"


logging.getLogger("sqlalchemy.engine.Engine").addFilter(_NoRows())


def make_engine(url: str, pool_size: int = 5, max_overflow: int = 5, *, connect_timeout: float = 5.0,
                command_timeout: float = 60.0, pool_timeout: float = 30.0) -> AsyncEngine:
    # A small pool per process: under load, requests queue fairly for a connection here instead of
    # crowding the database's CPUs (which stretched the latency tail in bench/run.py).
    engine = create_async_engine(
        url,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        connect_args={"server_settings": SERVER_SETTINGS, "timeout": connect_timeout,
                      "command_timeout": command_timeout},
    )
    _ping_when_idle(engine)
    return engine


# A connection that rested this long is pinged before a request gets it.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Replace connections that died with a database restart, so the service recovers by itself, without
    SQLAlchemy's pool_pre_ping: that pings on every checkout, three round trips (BEGIN, a statement, ROLLBACK)
    per request, as many as the page's own reads. Here only a connection that rested is pinged; one in steady
    use proves itself alive by its use, and when one turns out dead mid-request the request answers 503 and the
    pool retires every connection opened before that moment (SQLAlchemy's disconnect handling)."""

    def resting_from_now(dbapi_connection, record) -> None:  # a new connection, or one handed back
        record.info["idle_since"] = monotonic()

    event.listen(engine.sync_engine, "connect", resting_from_now)
    event.listen(engine.sync_engine, "checkin", resting_from_now)

    @event.listens_for(engine.sync_engine, "checkout")
    def ping_if_rested(dbapi_connection, record, proxy) -> None:
        if monotonic() - record.info.get("idle_since", 0.0) < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except Exception as error:
            raise DisconnectionError("a pooled connection did not answer its ping") from error  # the pool retries


def engine_for(settings: Settings, *, connections: int | None = None) -> AsyncEngine:
    """The process's engine; with `connections`, a pool of exactly that many (for a background task that must
    never wait for the requests' connections)."""
    pool_size, max_overflow = (connections, 0) if connections else (settings.db_pool_size, settings.db_max_overflow)
    return make_engine(resolve_database_url(settings), pool_size, max_overflow,
                       connect_timeout=settings.db_connect_timeout_seconds,
                       command_timeout=settings.db_command_timeout_seconds,
                       pool_timeout=settings.db_pool_timeout_seconds)


# SQLSTATE classes that mean "the database cannot serve now", not "this request is wrong": connection
# exception, insufficient resources, operator intervention (shutting down, starting up).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` says the database is unreachable (down, restarting, too slow), rather than a fault in
    the request or in our code."""
    if isinstance(error, (OSError, TimeoutError, PoolTimeout)):
        return True  # refused or timed-out connections, a pool with no connection to give
    if isinstance(error, DBAPIError):
        sqlstate = str(getattr(error.orig, "sqlstate", "") or "")
        return error.connection_invalidated or sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES
    return False


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: commit once on success, roll back on any error.

    A domain error may carry audit events that must outlive the rollback (a refused login, say); they are
    written and committed on their own after the rollback. A domain error marked `commit` commits the
    request's own writes instead (a counted password failure, written under its counter's row lock).
    """
    session: AsyncSession = request.app.state.sessionmaker()
    try:
        yield session
        await session.commit()
    except DomainError as error:
        if error.commit:
            session.expunge_all()  # what the request changed but never flushed stays out
        else:
            await session.rollback()
        if error.audit_events or error.commit:
            session.add_all(error.audit_events)
            await session.commit()
        raise
    except Exception as error:
        if not database_unavailable(error):
            await session.rollback()
            raise
        with suppress(Exception):  # the connection is gone; the pool discards it
            await session.rollback()
        raise DatabaseUnavailable() from error
    except BaseException:
        await session.rollback()
        raise
    finally:
        with suppress(Exception):
            await session.close()


# scope="function": commit before the response is sent, so the next request sees the change.
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]
