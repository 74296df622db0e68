"""The lean reference for `GET /v1/bills` (goal G5): what the dashboard costs without a framework or an ORM.

    .venv/bin/python bench/lean.py --port 8001 [--database-url ...]             # serve (2 uvicorn workers)
    .venv/bin/python bench/lean.py --check --service-url ... --lean-url ...     # compare with the service

A bare ASGI app on an asyncpg pool, answering `GET /v1/bills?limit=N[&cursor=...]` for a bearer token exactly as
the service does, in ONE transaction (what the service's request sends, minus its pool's pre-ping):

  1. the user row, as the token check reads it (`identity.repository.get_user`),
  2. the dashboard page with its lines (`BillRepository.presented_page`, one statement), or, with a service
     that has no such statement (or LEAN_LINES=separate), the page (`BillRepository.page`) and then the lines
     of its bills (`BillRepository.lines`, by the page's bill ids, the scope repeated),
  4. the access-log entry, as the service's `ReadLog.record` writes it under BILLING_API_ACCESS_LOG_BATCHING
     (read through the service's Settings, default true):
       batching: the entry's grants computed in this transaction (`access_log.repository.granted_entry`, one
         SELECT), handed to the process's `AccessLogWriter` (the service's own, on an engine of one connection,
         `db.engine_for(..., connections=1)`), which inserts the rows of concurrent reads in one shared
         transaction; the request waits for that commit here, inside its read transaction, as the service's
         route does before its session commits;
       off: the insert (`access_log.repository.insert_entry`) in this transaction,
  5. COMMIT, durable (the connections take the service's SERVER_SETTINGS; synchronous_commit is left as the
     service leaves it), then the answer.

The SQL is never copied: those service functions run as they are, on `LeanSession`, a stand-in for SQLAlchemy's
AsyncSession that compiles each statement they hand it (once per statement object) for asyncpg and sends it with
the request's parameters bound. When the service changes its statements, the reference follows.

`?readonly=1` (or LEAN_READONLY=1) answers the page without the access-log insert, in a read-only transaction.
The token is verified with a minimal HMAC-SHA256 check making the service's checks (LEAN_JWT=service: the
service's own `read_token`, python-jose). Support callers are refused (their reads are audited; not measured).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs

import asyncpg
import orjson
from sqlalchemy import bindparam, inspect, select
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from common import database_url, server_env  # noqa: E402

from billing_api.access_log.service import USER_AGENT_MAX, ReadLog  # noqa: E402
from billing_api.access_log.writer import AccessLogWriter  # noqa: E402
from billing_api.auth import tokens  # noqa: E402
from billing_api.authz.permissions import Permission  # noqa: E402
from billing_api.authz.scope import bill_scope  # noqa: E402
from billing_api.bills import service as bills_service  # noqa: E402
from billing_api.bills.repository import BillFilters, BillRepository  # noqa: E402
from billing_api.bills.schemas import BillRead  # noqa: E402
from billing_api.config import Settings  # noqa: E402
from billing_api.db import SERVER_SETTINGS, engine_for  # noqa: E402
from billing_api.db import Record as Row  # noqa: E402  (rows read by attribute too, as the service reads them)
from billing_api.errors import DomainError  # noqa: E402
from billing_api.identity import repository as identity_repository  # noqa: E402
from billing_api.models import AccountType, User, UserStatus  # noqa: E402
from billing_api.pagination import MAX_LIMIT, decode_cursor, next_cursor  # noqa: E402
from billing_api.patients.schemas import ServiceLineRead  # noqa: E402

DIALECT = asyncpg_dialect.dialect()
ROUTE = "/v1/bills"
SURFACE = "billing_dashboard"
# The response's fields, in the schema's order (so the body follows BillRead when it changes).
BILL_FIELDS = list(BillRead.model_fields)
LINE_FIELDS = list(ServiceLineRead.model_fields)
# The fields the page's statement builds as JSON (the others are columns).
JSON_FIELDS = {"lines"}


# The statements: the service's own functions, run on a stand-in session.


class Compiled:
    """One statement compiled for asyncpg, once; `bind` gives the SQL and positional arguments for one set of
    parameters, as SQLAlchemy's execution does (expanding IN lists, bind processors such as JSONB's)."""

    def __init__(self, statement) -> None:
        self.compiled = statement.compile(dialect=DIALECT)
        self.expands = bool(self.compiled.post_compile_params or self.compiled.literal_execute_params)
        # `.scalars()` of `select(Entity)` gives whole rows (ORM entities in the service); otherwise column one.
        descriptions = getattr(statement, "column_descriptions", None) or []
        self.whole_rows = len(descriptions) == 1 and isinstance(descriptions[0].get("expr"), type)

    def bind(self, params: dict) -> tuple[str, list]:
        compiled = self.compiled
        values = compiled.construct_params(params, _no_postcompile=True)
        if self.expands:
            state = compiled._process_parameters_for_postcompile(values)
            sql, names, values = state.statement, state.positiontup, state.parameters
            processors = {**compiled._bind_processors, **state.processors}
        else:
            sql, names, processors = compiled.string, compiled.positiontup, compiled._bind_processors
        return sql, [processors[name](values[name]) if name in processors else values[name] for name in names]


_compiled: dict[int, tuple[object, Compiled]] = {}


def compiled_for(statement) -> Compiled:
    # Keyed by the statement object: the service builds each shape once and reuses it (the object is kept
    # alongside, so its id is never reused by another).
    entry = _compiled.get(id(statement))
    if entry is None or entry[0] is not statement:
        entry = _compiled[id(statement)] = (statement, Compiled(statement))
    return entry[1]


class Result:
    def __init__(self, rows: list, whole_rows: bool) -> None:
        self.rows, self.whole_rows = rows, whole_rows

    def scalars(self) -> list:
        return self.rows if self.whole_rows else [row[0] for row in self.rows]

    def all(self) -> list:
        return self.rows

    def __iter__(self):
        return iter(self.rows)

    def first(self):
        return self.rows[0] if self.rows else None

    def scalar_one_or_none(self):
        values = self.scalars()
        return values[0] if values else None


_get_statements: dict[type, object] = {}


def get_statement(entity: type):
    """What `AsyncSession.get` sends: the entity's columns by primary key (`--check` compares the SQL with the
    one SQLAlchemy emits for the service's `get_user`)."""
    statement = _get_statements.get(entity)
    if statement is None:
        keys = inspect(entity).primary_key
        statement = _get_statements[entity] = select(entity).where(
            *(key == bindparam(f"pk_{i}", type_=key.type) for i, key in enumerate(keys)))
    return statement


class LeanSession:
    """The part of AsyncSession the dashboard's service code calls, on one asyncpg connection in a transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.sent: list[str] = []  # the SQL sent, for --check

    async def execute(self, statement, params: dict | None = None) -> Result:
        compiled = compiled_for(statement)
        sql, args = compiled.bind(params or {})
        self.sent.append(sql)
        return Result(await self.conn.fetch(sql, *args), compiled.whole_rows)

    async def get(self, entity: type, ident):
        idents = ident if isinstance(ident, tuple) else (ident,)
        result = await self.execute(get_statement(entity), {f"pk_{i}": value for i, value in enumerate(idents)})
        return result.scalar_one_or_none()


# The lines' shape: `folded` (the service's `presented_page`: the page with its lines as JSON, one statement) when
# the service has it, else `separate` (`page`, then `lines` by the page's bill ids). LEAN_LINES forces one.
LINES = os.environ.get("LEAN_LINES") or ("folded" if hasattr(BillRepository, "presented_page") else "separate")


def route_service_fetch() -> None:
    """The service runs its hottest statements through `db.fetch(session, statement, params)` (straight on the
    driver connection of the session): for a LeanSession, that is its own `execute`. Patched into every service
    module that imported it."""
    from billing_api import db

    original = getattr(db, "fetch", None)
    if original is None:
        return

    async def fetch(session, statement, params):
        if isinstance(session, LeanSession):
            return (await session.execute(statement, params)).all()
        return await original(session, statement, params)

    for name, module in list(sys.modules.items()):
        if name.startswith("billing_api") and getattr(module, "fetch", None) is original:
            module.fetch = fetch


route_service_fetch()


async def dashboard(conn: asyncpg.Connection, user_id: uuid.UUID, token_version: int, limit: int, after,
                    logged: bool, address: str | None, agent: str | None,
                    writer: AccessLogWriter | None = None) -> dict | None:
    """The request's statements, in the service's order (router.list_bills, _page), in the caller's transaction.
    None: the token's user is no longer valid. `writer`: the process's access-log writer when batching (the entry
    is committed by it before this returns, as in the service's route). Adapt here when the service moves its
    statements."""
    session = LeanSession(conn)
    user = await identity_repository.get_user(session, user_id)
    if user is None or user.status != UserStatus.active or user.token_version != token_version:
        return None
    if user.account_type == AccountType.support:
        raise PermissionError("the lean reference does not serve support callers (their reads are audited)")
    scope = bill_scope(user.id, Permission.BILLS_VIEW, is_support=False)
    repository = BillRepository(session, scope)
    if LINES == "folded":
        rows = await repository.presented_page(BillFilters(), limit, after)
        bills = rows[:limit]
        # The lines arrive as JSON text from PostgreSQL: passed through as they are. The diagnoses (jsonb, decoded)
        # get the API's key order, as the service gives them.
        items = [{name: orjson.Fragment(bill[name]) if name in JSON_FIELDS
                  else bills_service.api_diagnoses(bill[name]) if name == "diagnoses" and bill[name] else bill[name]
                  for name in BILL_FIELDS} for bill in bills]
    else:
        rows = await repository.page(BillFilters(), limit, after)
        bills = rows[:limit]
        lines = await repository.lines([bill.id for bill in bills])
        items = [{name: [{field: line[field] for field in LINE_FIELDS} for line in lines.get(bill.id, [])]
                  if name == "lines" else bill[name] for name in BILL_FIELDS} for bill in bills]
    if logged:
        # As the service's `read_log` dependency builds it: the writer (or None: the row in this transaction) and
        # whether the log is on.
        principal = SimpleNamespace(address=address)
        log = ReadLog(session, principal, ROUTE, agent, writer, settings().access_log_enabled)
        await log.record(scope, SURFACE, bills_service.shown(bills))
    return {"items": items, "next_cursor": next_cursor(rows, limit), "_sent": session.sent}


# The token.

_settings: Settings | None = None  # read in the workers (run.py gives them the service's secret)


def settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = Settings()
    return _settings


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def read_token_hmac(token: str) -> tuple[uuid.UUID, int] | None:
    """The service's checks (auth/tokens.py) without python-jose: HS256 pinned in the header, the signature,
    `sub`, `ver`, `iat` and `exp` required (integers), expiry, `nbf` and `iat` with the clock skew, and the lifetime
    bound."""
    if len(token) > tokens.MAX_TOKEN_LENGTH:
        return None
    try:
        head, body, signature = token.split(".")
        config = settings()
        if json.loads(_b64(head)).get("alg") != config.jwt_algorithm:
            return None
        expected = hmac.new(config.resolved_jwt_secret().encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _b64(signature)):
            return None
        claims = json.loads(_b64(body))
        issued_at, expires, version, subject = claims["iat"], claims["exp"], claims["ver"], claims["sub"]
        not_before = claims.get("nbf", 0)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (issued_at, expires, version, not_before)):
            return None
        now, skew = time.time(), tokens.CLOCK_SKEW_SECONDS
        if expires < now - skew or not_before > now + skew or issued_at > now + skew:
            return None
        if not isinstance(subject, str) or not 0 < expires - issued_at <= config.token_lifetime_minutes * 60 + skew:
            return None
        return uuid.UUID(subject), version
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
        return None


def batching() -> bool:
    """BILLING_API_ACCESS_LOG_BATCHING, as the service reads it."""
    return settings().access_log_batching


def mode() -> str:
    if not settings().access_log_enabled:
        return "access log off (BILLING_API_ACCESS_LOG_ENABLED=false)"
    if batching():
        return ("access log batched (BILLING_API_ACCESS_LOG_BATCHING=true): grants read in the request's "
                "transaction, rows written by the service's AccessLogWriter, one per worker")
    return "access log unbatched (BILLING_API_ACCESS_LOG_BATCHING=false): each request inserts its row itself"


def read_token_service(token: str) -> tuple[uuid.UUID, int] | None:
    claims = tokens.read_token(settings(), token)
    return (claims.user_id, claims.token_version) if claims else None


read_token = read_token_service if os.environ.get("LEAN_JWT") == "service" else read_token_hmac


# The ASGI app.

_pool: asyncpg.Pool | None = None
_writer: AccessLogWriter | None = None
READONLY_DEFAULT = os.environ.get("LEAN_READONLY") == "1"


def access_log_writer() -> AccessLogWriter | None:
    """The process's writer when batching (as the service's lifespan makes it: an engine of its own with one
    connection, so it never waits behind the reads that wait for it), started at startup or else on first use."""
    global _writer
    if _writer is None and batching():
        config = settings().model_copy(update={"database_url": os.environ["LEAN_DATABASE_URL"]})
        _writer = AccessLogWriter(engine_for(config, connections=1))
        _writer.start()
    return _writer


async def _jsonb_as_the_service(conn: asyncpg.Connection) -> None:
    """jsonb decoded as SQLAlchemy's asyncpg dialect decodes it on the service's connections (its codec, verbatim):
    `granted_entry` hands the grants it read to the writer, whose insert encodes them again; as text they would be
    stored as one JSON string. (json stays text: the page's lines are passed through as they are.)"""
    await conn.set_type_codec("jsonb", schema="pg_catalog", format="binary",
                              encoder=lambda value: b"\x01" + value.encode(),
                              decoder=lambda value: json.loads(value[1:].decode()))


def _default(value):
    return str(value)  # asyncpg's UUID


async def _send(send, status: int, body: bytes, content_type: bytes = b"application/json") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _problem(send, status: int, code: str) -> None:
    await _send(send, status, orjson.dumps({"status": status, "code": code}), b"application/problem+json")


async def bills(scope, send) -> None:
    headers = dict(scope["headers"])
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, token = authorization.partition(" ")
    claims = read_token(token) if scheme.lower() == "bearer" and token else None
    if claims is None:
        return await _problem(send, 401, "not_authenticated")
    query = parse_qs(scope["query_string"].decode("latin-1"))
    try:
        limit = int(query.get("limit", ["50"])[0])
        after = decode_cursor(query["cursor"][0]) if "cursor" in query else None
    except (ValueError, DomainError):
        return await _problem(send, 422, "invalid_query")
    if not 1 <= limit <= MAX_LIMIT or set(query) - {"limit", "cursor", "readonly"}:
        return await _problem(send, 422, "not_in_the_lean_reference")
    logged = not (READONLY_DEFAULT or query.get("readonly") == ["1"])
    agent = headers.get(b"user-agent")
    agent = agent.decode("latin-1")[:USER_AGENT_MAX] if agent else None
    client = scope.get("client")
    try:
        async with _pool.acquire() as conn:
            # The writer's commit is awaited inside the read transaction (as the service's route awaits it before
            # its session commits); the answer leaves after both.
            async with conn.transaction(readonly=not logged):
                page = await dashboard(conn, claims[0], claims[1], limit, after, logged,
                                       client[0] if client else None, agent, access_log_writer() if logged else None)
    except PermissionError:
        return await _problem(send, 403, "support_not_served")
    if page is None:
        return await _problem(send, 401, "token_revoked")
    del page["_sent"]
    await _send(send, 200, orjson.dumps(page, default=_default, option=orjson.OPT_UTC_Z))


async def app(scope, receive, send) -> None:
    global _pool
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                size, overflow = settings().db_pool_size, settings().db_max_overflow
                _pool = await asyncpg.create_pool(
                    os.environ["LEAN_DATABASE_URL"], min_size=size, max_size=size + overflow,
                    server_settings=SERVER_SETTINGS, record_class=Row, init=_jsonb_as_the_service)
                access_log_writer()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _writer is not None:  # writes what waits, then closes its connection
                    await _writer.stop()
                await _pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    if path == ROUTE and method == "GET":
        return await bills(scope, send)
    if path in ("/readyz", "/healthz") and method == "GET":
        # The mode, so that --check reports the one the server runs in (not the one its own environment says).
        return await _send(send, 200, orjson.dumps({"status": "ok", "access_log_batching": batching(),
                                                    "access_log_enabled": settings().access_log_enabled}))
    await _problem(send, 404, "not_found")


# Serving and checking.


def serve(url: str, port: int, workers: int, http: str) -> None:
    import uvicorn

    from billing_api.cli import KEEP_ALIVE_SECONDS, WORKER_HEALTHCHECK_SECONDS

    os.environ["LEAN_DATABASE_URL"] = url
    print(f"lean: {mode()}", file=sys.stderr, flush=True)
    # By default the service's own HTTP protocol (h11 with a bounded head), so the two differ only in the app.
    options = {"http": "billing_api.header_limit:HeadLimitedH11Protocol",
               "h11_max_incomplete_event_size": settings().max_request_head_bytes} if http == "service" else {
        "http": http}
    uvicorn.run("lean:app", app_dir=str(BENCH_DIR), host="127.0.0.1", port=port, workers=workers,
                log_level="warning", access_log=False, lifespan="on", timeout_keep_alive=KEEP_ALIVE_SECONDS,
                timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS, **options)


def start_lean(url: str, port: int, workers: int = 2, http: str = "service", readonly: bool = False,
               lines: str | None = None, batching: bool | None = None):
    """`batching`: BILLING_API_ACCESS_LOG_BATCHING for the lean (None: as the environment says, as for the
    service). Give it whatever the service was given, or the two write the log differently."""
    import subprocess

    env = server_env(url)
    if batching is not None:
        env["BILLING_API_ACCESS_LOG_BATCHING"] = "true" if batching else "false"
    if readonly:
        env["LEAN_READONLY"] = "1"
    if lines:
        env["LEAN_LINES"] = lines
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--port", str(port), "--workers",
                             str(workers), "--http", http, "--database-url", url], env=env,
                            stdout=subprocess.DEVNULL, stderr=None)


async def _captured_service_sql(url: str, user_id: uuid.UUID) -> str:
    """The SQL SQLAlchemy sends for the service's `get_user` (an AsyncSession on the service's engine)."""
    from sqlalchemy import event

    from billing_api.db import make_engine, make_sessionmaker

    engine = make_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1), pool_size=1, max_overflow=0)
    sent: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    try:
        async with make_sessionmaker(engine)() as session:
            await identity_repository.get_user(session, user_id)
            await session.rollback()
    finally:
        await engine.dispose()
    return [sql for sql in sent if "app_user" in sql][0]


# The access-log row a request added (what --check compares between the two; id, time, chain and the user agent,
# which names the request, differ).
LOGGED_COLUMNS = ("route", "surface", "permission", "provider_ids", "patient_ids", "grants", "record_count",
                  "client_address")


class _HeldWriter:
    """A writer that only keeps the entries (for the statements of one request, rolled back: nothing written)."""

    def __init__(self) -> None:
        self.entries: list[dict] = []

    async def write(self, entry: dict) -> None:
        self.entries.append(entry)


async def check(url: str, service_url: str, lean_url: str, username: str) -> list[str]:
    """Fetch the same pages from both (page one, the next page by its cursor, the read-only variant) and compare
    the parsed JSON; that each logged request added exactly one access-log row, already committed when it was
    answered (none for a read-only one), and the same row from both; also that the user read is the statement
    SQLAlchemy sends for the service. The differences."""
    import httpx

    from run import login

    differences: list[str] = []
    conn = await asyncpg.connect(url, server_settings=SERVER_SETTINGS, record_class=Row)
    await _jsonb_as_the_service(conn)  # as the lean server's connections
    try:
        user_id = await conn.fetchval("SELECT id FROM app_user WHERE username = $1", username)
        # Each request names itself in its User-Agent, which both log: others may read as the same user meanwhile
        # (another benchmark on the same database).
        run = f"lean-check {uuid.uuid4()}"
        count = "SELECT count(*) FROM access_log WHERE actor_id = $1 AND user_agent LIKE $2"
        added_by = f"SELECT {', '.join(LOGGED_COLUMNS)} FROM access_log WHERE actor_id = $1 AND user_agent = $2"
        async with httpx.AsyncClient(timeout=60) as client:
            ready = (await client.get(lean_url + "/readyz")).json()
            lean_batching, enabled = ready.get("access_log_batching"), ready.get("access_log_enabled", True)
            print(f"lean --check: the lean server runs with access-log batching {lean_batching}, access log "
                  f"{'on' if enabled else 'off'}", file=sys.stderr)
            headers = await login(client, service_url, username)
            rows_checked = {"service": 0, "lean": 0}
            total_expected, requests = 0, 0

            async def logged_get(who: str, full_url: str, expected: int):
                """The response, and the row it added (None if none); a count other than `expected` (counted as
                soon as it answered: the row must be committed before the answer) is a difference."""
                nonlocal total_expected, requests
                requests += 1
                agent = f"{run} {requests} {who}"
                response = await client.get(full_url, headers={**headers, "User-Agent": agent})
                rows = await conn.fetch(added_by, user_id, agent)
                added = len(rows)
                total_expected += expected
                if added != expected:
                    differences.append(f"{who} {full_url}: {added} access-log rows committed when it answered, "
                                       f"not {expected}")
                else:
                    rows_checked[who] += 1
                return response, rows[0] if added == 1 else None

            pages = []
            for path in ("/v1/bills?limit=50", None, "/v1/bills?limit=7"):
                if path is None:  # the next page of the first, by the service's cursor
                    cursor = pages[0][0].get("next_cursor")
                    if not cursor:
                        differences.append("the first page has no next_cursor (too few bills to check the cursor)")
                        continue
                    path = f"/v1/bills?limit=50&cursor={cursor}"
                service, service_row = await logged_get("service", service_url + path, 1 if enabled else 0)
                for lean_path in (path, path + "&readonly=1"):
                    logged = not lean_path.endswith("&readonly=1")
                    lean, lean_row = await logged_get("lean", lean_url + lean_path, 1 if enabled and logged else 0)
                    if service.status_code != 200 or lean.status_code != 200:
                        differences.append(f"{lean_path}: status {service.status_code} (service) {lean.status_code} "
                                           "(lean)")
                        continue
                    ours, theirs = lean.json(), service.json()
                    pages.append((theirs, ours))
                    differences += _compare(lean_path, theirs, ours)
                    if logged and service_row is not None and lean_row is not None:
                        unequal = [name for name in LOGGED_COLUMNS if service_row[name] != lean_row[name]]
                        if unequal:
                            differences.append(f"{lean_path}: the access-log rows differ in {unequal}: "
                                               f"{[service_row[n] for n in unequal]} (service) vs "
                                               f"{[lean_row[n] for n in unequal]} (lean)")
            refused = await client.get(lean_url + "/v1/bills?limit=50", headers={"Authorization": "Bearer x.y.z"})
            if refused.status_code != 401:
                differences.append(f"a forged token: {refused.status_code}, not 401")
        await asyncio.sleep(1)  # then nothing more comes (a late or doubled row)
        total = await conn.fetchval(count, user_id, run + " %")
        if total != total_expected:
            differences.append(f"{total} access-log rows in all a second later, not {total_expected}")
        print(f"lean --check: access-log rows: {rows_checked['service']} service and {rows_checked['lean']} lean "
              f"requests each added what they should ({total} rows in all, {total_expected} expected)",
              file=sys.stderr)

        version = await conn.fetchval("SELECT token_version FROM app_user WHERE id = $1", user_id)
        held = _HeldWriter() if lean_batching else None
        transaction = conn.transaction()
        await transaction.start()
        try:  # the statements one request sends, in a transaction rolled back (nothing written)
            page = await dashboard(conn, user_id, version, 50, None, True, "127.0.0.1", None, held)
        finally:
            await transaction.rollback()
        print(f"lean --check: {len(pages)} pages compared ({', '.join(str(len(p[0]['items'])) for p in pages)} "
              f"bills); lines {LINES}; one request sends:", file=sys.stderr)
        for sql in page["_sent"]:
            print("    " + " ".join(sql.split())[:150], file=sys.stderr)
        if held is not None and held.entries:
            from billing_api.access_log.repository import _insert_granted

            print("  and its process's writer, in a transaction shared with the concurrent requests' rows:\n    "
                  + " ".join(str(_insert_granted().compile(dialect=DIALECT)).split())[:150], file=sys.stderr)
    finally:
        await conn.close()
    ours_sql = compiled_for(get_statement(User)).compiled.string
    theirs_sql = await _captured_service_sql(url, user_id)
    if " ".join(ours_sql.split()) != " ".join(theirs_sql.split()):
        differences.append(f"the user read differs:\n  service: {theirs_sql}\n  lean:    {ours_sql}")
    return differences


def _compare(label: str, theirs: dict, ours: dict) -> list[str]:
    out = []
    if set(theirs) != set(ours):
        out.append(f"{label}: top-level keys {sorted(theirs)} vs {sorted(ours)}")
    if theirs.get("next_cursor") != ours.get("next_cursor"):
        out.append(f"{label}: next_cursor {theirs.get('next_cursor')} vs {ours.get('next_cursor')}")
    ids_theirs = [item["id"] for item in theirs.get("items", [])]
    ids_ours = [item["id"] for item in ours.get("items", [])]
    if ids_theirs != ids_ours:
        out.append(f"{label}: bill ids differ ({len(ids_theirs)} vs {len(ids_ours)} items)")
        return out
    for a, b in zip(theirs["items"], ours["items"]):
        if a != b:
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            out.append(f"{label}: bill {a['id']} differs in {keys}: {[a.get(k) for k in keys]} vs "
                       f"{[b.get(k) for k in keys]}")
            break
    if not ids_theirs:
        out.append(f"{label}: empty page (nothing compared)")
    return out


async def check_standalone(url: str, username: str, http: str) -> list[str]:
    """Start the service and the lean reference, check, stop them."""
    from run import free_port, start_server, wait_ready

    service_port, lean_port = free_port(), free_port()
    service, lean = start_server(url, service_port), start_lean(url, lean_port, http=http)
    try:
        await wait_ready(f"http://127.0.0.1:{service_port}")
        await wait_ready(f"http://127.0.0.1:{lean_port}")
        return await check(url, f"http://127.0.0.1:{service_port}", f"http://127.0.0.1:{lean_port}", username)
    finally:
        for process in (service, lean):
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="PostgreSQL URL; default: as bench/run.py")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--http", default="service",
                        help="uvicorn HTTP protocol: `service` (the service's bounded h11, default), h11, httptools")
    parser.add_argument("--check", action="store_true", help="compare the pages with the service's; exit 1 if "
                        "they differ (starts both servers unless --service-url and --lean-url are given)")
    parser.add_argument("--service-url")
    parser.add_argument("--lean-url")
    parser.add_argument("--username", default="bench.delegate40")
    args = parser.parse_args()
    url = database_url(args.database_url)
    if not args.check:
        serve(url, args.port, args.workers, args.http)
        return
    if args.service_url and args.lean_url:
        differences = asyncio.run(check(url, args.service_url, args.lean_url, args.username))
    else:
        differences = asyncio.run(check_standalone(url, args.username, args.http))
    for line in differences:
        print("lean --check: " + line, file=sys.stderr)
    print(f"lean --check: {'DIFFERENT' if differences else 'same pages'}", file=sys.stderr)
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
