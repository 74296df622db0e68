"""Database engine and the per-request session: the one place where transactions commit or roll back."""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from billing_api.config import Settings
from billing_api.errors import DomainError

_embedded_servers: dict[Path, object] = {}


def embedded_database_url(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL kept in `data_dir` and return its asyncpg URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RuntimeDirWarning when XDG_RUNTIME_DIR is unset
        import pgserver

    pgdata = (data_dir / "postgres").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = _embedded_servers.get(pgdata)
    if server is None:
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
        _embedded_servers[pgdata] = server
    return to_asyncpg_url(server.get_uri())


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


# The bill queries decide their access path at run time inside one statement (bills/repository.py), so one
# generic plan serves every caller; re-planning them for each execution (custom plans) cost more than
# running them (PERF-NOTES, and bench/run.py measures it).
SERVER_SETTINGS = {"plan_cache_mode": "force_generic_plan"}


class _NoRows(logging.Filter):
    """Rows hold password hashes and health data: SQL logging (DEBUG on sqlalchemy.engine) shows statements, not
    rows. Parameters are hidden by the engines' `hide_parameters`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Row %r"


logging.getLogger("sqlalchemy.engine.Engine").addFilter(_NoRows())


def make_engine(url: str, pool_size: int = 5, max_overflow: int = 5) -> AsyncEngine:
    # A small pool per process: under load, requests queue fairly for a connection here instead of
    # crowding the database's CPUs (which stretched the latency tail in bench/run.py).
    return create_async_engine(
        url,
        pool_pre_ping=True,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args={"server_settings": SERVER_SETTINGS},
    )


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
    except BaseException:
        await session.rollback()
        raise
    finally:
        await session.close()


# scope="function": commit before the response is sent, so the next request sees the change.
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]
