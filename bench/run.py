"""The benchmark of the authorization core. Run bench/generate.py first, then:

    .venv/bin/python bench/run.py [--runs 300] [--http-seconds 10] [--revocations 1000] [--database-url ...]
    .venv/bin/python bench/run.py --only-http [--batching off] [--database-url ...]   # G5, G6, tails: ~2 min

Prints one JSON object (one figure per key) and a human summary. Figures are ratios measured in the
same run, so the machine's noise cancels out; the absolute times are printed for reference.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy import select, union
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_PASSWORD, database_url, server_env  # noqa: E402

from billing_api.access_log import repository as access_log_repository  # noqa: E402
from billing_api.authz.permissions import Permission  # noqa: E402
from billing_api.authz.rules import may_on_provider  # noqa: E402
from billing_api.authz.scope import bill_scope  # noqa: E402
from billing_api.bills.repository import BillFilters, BillRepository  # noqa: E402
from billing_api.db import SERVER_SETTINGS  # noqa: E402
from billing_api.models import User  # noqa: E402

DIALECT = asyncpg_dialect.dialect()
PAGE = 50
CLASSES = ["a_provider", "b_delegate_5", "c_delegate_40", "d_parent_admin", "e_support", "f_everything"]

NO_FILTER_PAGE = "SELECT * FROM bill ORDER BY created_at DESC, id DESC LIMIT 51"
PK_READ = "SELECT * FROM bill WHERE id = $1"
# The best page shapes for an application handed a literal provider list by an external engine
# (docs/performance.md): one probe per provider when the list is short, one filtered index walk when long.
LIST_PAGE_NARROW = """
    SELECT * FROM bill WHERE id IN (
        SELECT k.id FROM unnest($1::uuid[]) AS p(id)
        CROSS JOIN LATERAL (SELECT id, created_at FROM bill WHERE provider_id = p.id
                            ORDER BY created_at DESC, id DESC LIMIT 51) k
        ORDER BY k.created_at DESC, k.id DESC LIMIT 51)
    ORDER BY created_at DESC, id DESC"""
LIST_PAGE_WIDE = "SELECT * FROM bill WHERE provider_id = ANY($1::uuid[]) ORDER BY created_at DESC, id DESC LIMIT 51"
SUPPORT_CHECK = "SELECT account_type FROM app_user WHERE id = $1"


def compiled(statement, params: dict | None = None) -> tuple[str, list]:
    query = (statement.params(params) if params else statement).compile(dialect=DIALECT)
    return str(query), [query.params[name] for name in query.positiontup]


def compiled_insert(statement, params: dict) -> tuple[str, list]:
    query = statement.compile(dialect=DIALECT)
    return str(query), [params.get(name, query.params[name]) for name in query.positiontup]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": statistics.median(values) * 1000, "p95": percentile(values, 0.95) * 1000,
            "p99": percentile(values, 0.99) * 1000}


class Timed:
    """A prepared statement and its timings (seconds)."""

    def __init__(self, statement: asyncpg.prepared_stmt.PreparedStatement, args: list) -> None:
        self.statement, self.args, self.times = statement, args, []

    async def run(self) -> list:
        started = time.perf_counter()
        rows = await self.statement.fetch(*self.args)
        self.times.append(time.perf_counter() - started)
        return rows


async def measure_queries(conn: asyncpg.Connection, ours_conn: asyncpg.Connection, callers: dict[str, uuid.UUID],
                         runs: int) -> dict:
    """`ours_conn` is configured as the service configures its connections; `conn` as the two-step
    application would (PostgreSQL's default plan choice, best for its literal lists)."""
    ours, lists, two_step_first = {}, {}, {}
    for name in CLASSES:
        actor = callers[name]
        scope = bill_scope(actor, Permission.BILLS_VIEW, is_support=name == "e_support")
        sql, args = compiled(*BillRepository(None, scope).dashboard_statement(BillFilters(), 51))
        ours[name] = Timed(await ours_conn.prepare(sql), args)
        if name == "e_support":
            two_step_first[name] = Timed(await conn.prepare(SUPPORT_CHECK), [actor])
            lists[name] = Timed(await conn.prepare(NO_FILTER_PAGE), [])
            continue
        # Step one of the two-step shape: the visible providers, as an external engine would list them.
        visible = union(
            scope.providers(),
            select(User.id).where(User.is_provider, User.company_id.in_(scope.companies())),
        )
        sql, args = compiled(visible, scope.params)
        two_step_first[name] = Timed(await conn.prepare(sql), args)
        provider_ids = [row[0] for row in await two_step_first[name].statement.fetch(*args)]
        shape = LIST_PAGE_NARROW if len(provider_ids) <= 100 else LIST_PAGE_WIDE
        lists[name] = Timed(await conn.prepare(shape), [provider_ids])
        two_step_first[name].visible = len(provider_ids)
    no_filter = Timed(await conn.prepare(NO_FILTER_PAGE), [])

    # One decision (authorize) against reading one bill by primary key.
    some_bill = await conn.fetchrow("SELECT id, provider_id, company_id FROM bill ORDER BY created_at DESC LIMIT 1")
    pk_read = Timed(await ours_conn.prepare(PK_READ), [some_bill["id"]])
    delegate = callers["c_delegate_40"]
    seen = await ours["c_delegate_40"].statement.fetchrow(*ours["c_delegate_40"].args)
    unseen = await conn.fetchrow("""SELECT b.provider_id, b.company_id FROM bill b JOIN company c ON c.id = b.company_id
        WHERE c.billing_segregation_enabled_at IS NOT NULL AND b.provider_id <> $1 LIMIT 1""", seen["provider_id"])
    decisions = {}
    for label, provider, company in (("allowed", seen["provider_id"], seen["company_id"]),
                                     ("denied", unseen["provider_id"], unseen["company_id"])):
        sql, args = compiled(select(may_on_provider(delegate, Permission.BILLS_VIEW, provider, company)))
        decisions[label] = Timed(await ours_conn.prepare(sql), args)

    # Keyset pagination: the cursor of page 200 for the 40-provider delegate, found by walking (the last full
    # page when a small data set has fewer).
    scope = bill_scope(delegate, Permission.BILLS_VIEW, is_support=False)
    after = None
    for _ in range(199):
        sql, args = compiled(*BillRepository(None, scope).dashboard_statement(BillFilters(), 51, after))
        rows = await conn.fetch(sql, *args)
        if len(rows) <= PAGE:
            break
        after = (rows[PAGE - 1]["created_at"], rows[PAGE - 1]["id"])
    sql, args = compiled(*BillRepository(None, scope).dashboard_statement(BillFilters(), 51, after))
    deep_page = Timed(await ours_conn.prepare(sql), args)

    jobs = [*ours.values(), *lists.values(), *two_step_first.values(), no_filter, pk_read, *decisions.values(),
            deep_page]
    two_step_times = {name: [] for name in CLASSES}
    for run in range(runs + 10):
        random.shuffle(jobs)
        for job in jobs:
            await job.run()
        for name in CLASSES:  # the two round trips, back to back, as the application would make them
            started = time.perf_counter()
            await two_step_first[name].statement.fetch(*two_step_first[name].args)
            await lists[name].statement.fetch(*lists[name].args)
            two_step_times[name].append(time.perf_counter() - started)
        if run == 9:  # warm-up done (and past the switch to generic plans): start counting
            for job in jobs:
                job.times.clear()
            for times in two_step_times.values():
                times.clear()

    figures: dict[str, float] = {}
    unfiltered = summary(no_filter.times)
    for name in CLASSES:
        mine, two_step, literal = summary(ours[name].times), summary(two_step_times[name]), summary(lists[name].times)
        figures[f"G1_{name}_p50_ratio"] = mine["p50"] / two_step["p50"]
        figures[f"G1_{name}_p95_ratio"] = mine["p95"] / two_step["p95"]
        figures[f"G1cap_{name}_p95_ratio"] = mine["p95"] / unfiltered["p95"]
        figures[f"G1_{name}_vs_literal_list_p95_ratio"] = mine["p95"] / literal["p95"]
        figures[f"ms_{name}_p50"], figures[f"ms_{name}_p95"] = mine["p50"], mine["p95"]
        figures[f"ms_{name}_two_step_p50"], figures[f"ms_{name}_two_step_p95"] = two_step["p50"], two_step["p95"]
        if hasattr(two_step_first[name], "visible"):
            figures[f"visible_providers_{name}"] = two_step_first[name].visible
    figures["ms_no_filter_p50"], figures["ms_no_filter_p95"] = unfiltered["p50"], unfiltered["p95"]
    figures["G2_p95_ratio"] = summary(ours["f_everything"].times)["p95"] / summary(ours["a_provider"].times)["p95"]
    pk = summary(pk_read.times)
    for label, timed in decisions.items():
        figures[f"G3_{label}_p95_ratio"] = summary(timed.times)["p95"] / pk["p95"]
    figures["G3_p95_ratio"] = max(figures["G3_allowed_p95_ratio"], figures["G3_denied_p95_ratio"])
    figures["ms_pk_read_p95"] = pk["p95"]
    figures["keyset_page200_vs_page1_p95_ratio"] = summary(deep_page.times)["p95"] / summary(
        ours["c_delegate_40"].times)["p95"]
    return figures


def log_insert(scope, rows: list) -> tuple[str, list]:
    """The access-log insert the service makes after showing `rows` (bills) to the scope's actor."""
    pairs = sorted({(r["provider_id"], r["company_id"]) for r in rows}, key=str)
    return compiled_insert(access_log_repository._insert(Permission.BILLS_VIEW), {
        **scope.params, "route": "/v1/bills", "surface": "billing_dashboard",
        "shown_provider_ids": [p for p, _ in pairs], "shown_company_ids": [c for _, c in pairs],
        "provider_ids": sorted({p for p, _ in pairs}), "patient_ids": sorted({r["patient_id"] for r in rows}),
        "record_count": len(rows), "client_address": "127.0.0.1", "user_agent": "bench", "policy_grants": "[]",
    })


async def measure_log_cost(conn: asyncpg.Connection, callers: dict[str, uuid.UUID], runs: int) -> dict:
    """What the access log costs the bill page: per class, the first page in its own transaction, without and
    with the request's access-log insert (grants computed in the insert, chain lock, the commit that then has
    to reach the WAL), interleaved in one run. `conn` is configured as the service's connections."""
    pages, inserts = {}, {}
    without: dict[str, list[float]] = {name: [] for name in CLASSES}
    with_log: dict[str, list[float]] = {name: [] for name in CLASSES}
    for name in CLASSES:
        scope = bill_scope(callers[name], Permission.BILLS_VIEW, is_support=name == "e_support")
        sql, args = compiled(*BillRepository(None, scope).dashboard_statement(BillFilters(), 51))
        pages[name] = (await conn.prepare(sql), args)
        sql, args = log_insert(scope, (await pages[name][0].fetch(*args))[:PAGE])
        inserts[name] = (await conn.prepare(sql), args)
    for run in range(runs + 10):
        for name in random.sample(CLASSES, len(CLASSES)):
            (page, page_args), (insert, insert_args) = pages[name], inserts[name]
            for logged in random.sample([False, True], 2):
                started = time.perf_counter()
                async with conn.transaction():
                    await page.fetch(*page_args)
                    if logged:
                        await insert.fetch(*insert_args)
                (with_log if logged else without)[name].append(time.perf_counter() - started)
        if run == 9:  # warm-up done
            for times in (*without.values(), *with_log.values()):
                times.clear()
    figures: dict[str, float] = {}
    for name in CLASSES:
        plain, logged = summary(without[name]), summary(with_log[name])
        figures[f"log_{name}_p50_ratio"] = logged["p50"] / plain["p50"]
        figures[f"log_{name}_p95_ratio"] = logged["p95"] / plain["p95"]
        figures[f"ms_log_{name}_p50"], figures[f"ms_log_{name}_p95"] = logged["p50"], logged["p95"]
        figures[f"ms_nolog_{name}_p50"], figures[f"ms_nolog_{name}_p95"] = plain["p50"], plain["p95"]
    figures["access_log_rows"] = await conn.fetchval("SELECT count(*) FROM access_log")
    return figures


async def measure_log_contention(url: str, callers: dict[str, uuid.UUID], seconds: float,
                                 clients: int = 8) -> dict:
    """The chain lock under concurrency: `clients` connections each run class c's page in a transaction, as
    fast as they can for `seconds`, without and then with the access-log insert; transactions per second and
    p95. Logged transactions serialize from their insert to their commit."""
    scope = bill_scope(callers["c_delegate_40"], Permission.BILLS_VIEW, is_support=False)
    page_sql, page_args = compiled(*BillRepository(None, scope).dashboard_statement(BillFilters(), 51))
    conns = [await asyncpg.connect(url, server_settings=SERVER_SETTINGS) for _ in range(clients)]
    insert_sql, insert_args = log_insert(scope, (await conns[0].fetch(page_sql, *page_args))[:PAGE])

    async def client(conn: asyncpg.Connection, logged: bool, deadline: float, times: list[float]) -> None:
        page, insert = await conn.prepare(page_sql), await conn.prepare(insert_sql)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with conn.transaction():
                await page.fetch(*page_args)
                if logged:
                    await insert.fetch(*insert_args)
            times.append(time.perf_counter() - started)

    figures: dict[str, float] = {}
    try:
        for logged in (False, True):
            times: list[float] = []
            deadline = time.perf_counter() + seconds
            await asyncio.gather(*(client(conn, logged, deadline, times) for conn in conns))
            label = "log" if logged else "nolog"
            figures[f"contention_{label}_tps"] = len(times) / seconds
            figures[f"contention_{label}_p95_ms"] = summary(times)["p95"]
    finally:
        for conn in conns:
            await conn.close()
    figures["contention_log_vs_nolog_tps_ratio"] = figures["contention_log_tps"] / figures["contention_nolog_tps"]
    figures["contention_clients"] = clients
    return figures


# HTTP


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(url: str, port: int, settings: dict[str, str] | None = None) -> subprocess.Popen:
    """`billing-api serve --workers 2` with `server_env`, plus `settings` (environment variables) if given."""
    env = {**server_env(url), **(settings or {})}
    billing_api = Path(sys.executable).with_name("billing-api")
    return subprocess.Popen([str(billing_api), "serve", "--port", str(port), "--workers", "2", "--log-level",
                             "warning"], env=env, stdout=subprocess.DEVNULL, stderr=server_log())


def server_log():
    """The server's log (errors only, at level warning): a file named by BENCH_SERVER_LOG, or nowhere."""
    path = os.environ.get("BENCH_SERVER_LOG")
    return open(path, "ab") if path else subprocess.DEVNULL


async def wait_ready(base: str, process: subprocess.Popen | None = None) -> None:
    """Until GET /readyz answers 200; a `process` that exits first (a refused setting) fails at once."""
    async with httpx.AsyncClient() as client:
        for _ in range(1200):  # up to two minutes on a busy machine
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"the server for {base} exited with {process.returncode} before it was ready")
            try:
                if (await client.get(f"{base}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the server did not become ready")


async def login(client: httpx.AsyncClient, base: str, username: str) -> dict[str, str]:
    response = await client.post(f"{base}/v1/auth/token", data={"username": username, "password": BENCH_PASSWORD})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _connection_loop(host: str, port: int, request: bytes, deadline: float, latencies: list[float],
                           statuses: list[int]) -> None:
    """One keep-alive connection sending the same request until the deadline: a minimal HTTP/1.1 client,
    so that the load generator costs far less CPU than the server it measures."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses.append(int(head[9:12]))
    finally:
        writer.close()


def _load_process(port: int, path: str, token: str | None, seconds: float, connections: int) -> tuple:
    import uvloop

    headers = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if token:
        headers += f"Authorization: Bearer {token}\r\n"
    request = (headers + "\r\n").encode()
    latencies: list[float] = []
    statuses: list[int] = []

    async def run() -> float:
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(*(_connection_loop("127.0.0.1", port, request, deadline, latencies, statuses)
                               for _ in range(connections)))
        return time.perf_counter() - started

    elapsed = uvloop.run(run())
    return latencies, statuses, elapsed


async def load(port: int, path: str, token: str | None, seconds: float, concurrency: int = 32) -> dict:
    """`concurrency` keep-alive clients, in a process of their own (its event loop never waits on ours)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1) as pool:
        latencies, statuses, elapsed = await asyncio.get_running_loop().run_in_executor(
            pool, _load_process, port, path, token, seconds, concurrency)
    figures = summary(latencies)
    errors = Counter(status for status in statuses if status != 200)
    result = {"rps": len(latencies) / elapsed, "p50_ms": figures["p50"], "p99_ms": figures["p99"],
              "errors": sum(errors.values()), "requests": len(latencies), "seconds": elapsed}
    if errors:  # which answers, since rps and the percentiles count them as pages
        result["error_statuses"] = ", ".join(f"{count} x {status}" for status, count in sorted(errors.items()))
    return result


async def revocations(conn: asyncpg.Connection, base: str, count: int) -> dict:
    """G4: grant, check, revoke, and count the next requests that still return the revoked bill."""
    provider, admin, revokee, group_id, bill_id = await revocation_fixture(conn)
    late = {"list_save": 0, "group_removal": 0, "deactivation": 0}
    granted_not_seen = 0
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        owner = await login(client, base, provider)
        manager = await login(client, base, admin)
        revokee_id = await conn.fetchval("SELECT id FROM app_user WHERE username = $1", revokee)

        async def save_list(entries: list[dict]) -> None:
            current = (await client.get(f"/v1/providers/{await provider_id()}/delegation", headers=owner)).json()
            response = await client.put(f"/v1/providers/{await provider_id()}/delegation", headers=owner,
                                        json={"entries": entries, "version": current["version"],
                                              "password": BENCH_PASSWORD})
            response.raise_for_status()

        async def provider_id():
            return await conn.fetchval("SELECT id FROM app_user WHERE username = $1", provider)

        async def sees(headers) -> bool:
            return (await client.get(f"/v1/bills/{bill_id}", headers=headers)).status_code == 200

        group_entry = {"group_id": str(group_id), "role": "financial_viewer"}
        for i in range(count):
            kind = ("list_save", "group_removal", "deactivation")[i % 3]
            if kind == "list_save":
                await save_list([group_entry, {"user_id": str(revokee_id), "role": "financial_viewer"}])
                token = await login(client, base, revokee)
                granted_not_seen += not await sees(token)
                await save_list([group_entry])
            elif kind == "group_removal":
                await client.put(f"/v1/groups/{group_id}/members", headers=manager,
                                 json={"user_ids": [str(revokee_id)]})
                token = await login(client, base, revokee)
                granted_not_seen += not await sees(token)
                await client.put(f"/v1/groups/{group_id}/members", headers=manager, json={"user_ids": []})
            else:
                await client.put(f"/v1/groups/{group_id}/members", headers=manager,
                                 json={"user_ids": [str(revokee_id)]})
                await client.post(f"/v1/users/{revokee_id}/reactivate", headers=manager)
                token = await login(client, base, revokee)
                granted_not_seen += not await sees(token)
                await client.post(f"/v1/users/{revokee_id}/deactivate", headers=manager)
            late[kind] += await sees(token)
            if kind == "deactivation":  # leave the next cycle a clean start
                await client.post(f"/v1/users/{revokee_id}/reactivate", headers=manager)
                await client.put(f"/v1/groups/{group_id}/members", headers=manager, json={"user_ids": []})
    return {"G4_late": sum(late.values()), **{f"G4_late_{k}": v for k, v in late.items()},
            "G4_revocations": count, "G4_grants_not_seen": granted_not_seen}


async def revocation_fixture(conn: asyncpg.Connection) -> tuple[str, str, str, uuid.UUID, uuid.UUID]:
    """A provider in a segregated company with one bill, a list manager, a user to grant and revoke, a group."""
    row = await conn.fetchrow("""SELECT u.id, u.company_id, u.username, u.password_hash FROM app_user u
        JOIN company c ON c.id = u.company_id JOIN bench_caller bc ON bc.user_id = u.id
        WHERE bc.class = 'a_provider'""")
    provider = row["username"]
    await conn.execute("""
        INSERT INTO app_user (id, company_id, email, username, display_name, password_hash, status, account_type,
                              kind, is_provider, permissions, token_version, created_at, updated_at)
        VALUES (gen_random_uuid(), $1, 'bench.revokee@bench.example', 'bench.revokee', 'Revokee', $2, 'active',
                'standard', 'member', false, '{}', 1, now(), now()),
               (gen_random_uuid(), $1, 'bench.admin@bench.example', 'bench.admin', 'Bench admin', $2, 'active',
                'standard', 'member', false, '{users:edit_others,billing:delegation_settings}', 1, now(), now())
        ON CONFLICT DO NOTHING""", row["company_id"], row["password_hash"])
    group_id = await conn.fetchval("SELECT id FROM user_group WHERE name = 'Bench revocation group'")
    if group_id is None:
        group_id = await conn.fetchval("""INSERT INTO user_group (id, company_id, name, permissions, created_at)
            VALUES (gen_random_uuid(), $1, 'Bench revocation group', '{}', now()) RETURNING id""", row["company_id"])
    bill_id = await conn.fetchval("SELECT id FROM bill WHERE provider_id = $1 LIMIT 1", row["id"])
    return provider, "bench.admin", "bench.revokee", group_id, bill_id


# G5: the service against the lean reference (bench/lean.py); G6: the service against itself without its access
# log. Same database, token, path and load, measured in the same interleaved rounds.


def tree_cpu(pid: int | None) -> dict[int, float]:
    """CPU seconds (user + system) of a process and each of its living descendants, by process id: a uvicorn
    supervisor and its workers, or the database server and its backends."""
    import psutil

    if pid is None:
        return {}
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    seconds = {}
    for process in processes:
        try:
            times = process.cpu_times()
            seconds[process.pid] = times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return seconds


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two `tree_cpu` readings: per process, so one that ended (a database backend of a
    closed connection) takes nothing away; the part it used in between is lost (never ours: the servers' pools
    and workers live through the rounds)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


async def postmaster_pid(conn: asyncpg.Connection) -> int | None:
    """The database server's main process, when it runs on this machine and can be seen (for its CPU)."""
    import psutil

    try:
        backend = psutil.Process(await conn.fetchval("SELECT pg_backend_pid()"))
        parent = backend.parent()
        return parent.pid if parent is not None and "postgres" in parent.name() else None
    except (psutil.Error, OSError):
        return None


def run_lean_check(url: str, service_base: str, lean_base: str) -> None:
    """bench/lean.py --check: the two must answer the same page, or their rates compare nothing."""
    result = subprocess.run([sys.executable, str(Path(__file__).with_name("lean.py")), "--check", "--database-url",
                             url, "--service-url", service_base, "--lean-url", lean_base])
    if result.returncode != 0:
        raise SystemExit("bench/lean.py --check: the lean reference and the service answer different pages")


HTTP_USER = "bench.delegate40"
# Figure prefixes of the servers measured in the rounds (the G5 names predate G6 and are kept).
ROUND_PREFIX = {"service": "G5_service", "nolog": "G6_nolog", "lean": "G5_lean"}
ROUND_LABEL = {"service": "service", "nolog": "no log", "lean": "lean"}


def use_batching(batching: str) -> None:
    """BILLING_API_ACCESS_LOG_BATCHING for every server the benchmark starts (`server_env` copies this process's
    environment): both services, and the lean reference, which writes its entry as that setting tells the service
    to, so that all of them write the same way."""
    if batching == "off" and not service_knows("access_log_batching"):
        print("--batching off: the service has no BILLING_API_ACCESS_LOG_BATCHING setting; it writes as it always "
              "has", file=sys.stderr, flush=True)
    os.environ["BILLING_API_ACCESS_LOG_BATCHING"] = "true" if batching == "on" else "false"


def access_log_env(enabled: bool) -> dict[str, str]:
    """The one setting in which the two services differ (the rest is `server_env`, the same for both)."""
    return {"BILLING_API_ACCESS_LOG_ENABLED": "true" if enabled else "false"}


def service_knows(setting: str) -> bool:
    """Whether the service in this checkout reads `setting` (a Settings field): the variable is ignored if not."""
    from billing_api.config import Settings

    return setting in Settings.model_fields


async def one_round(process: subprocess.Popen, port: int, path: str, token: str, seconds: float,
                    postmaster: int | None, concurrency: int = 32) -> dict:
    """One round of `load()` on one server, with the CPU its process tree and the database server used per page."""
    cpu, db_cpu = tree_cpu(process.pid), tree_cpu(postmaster)
    result = await load(port, path, token, seconds, concurrency)
    pages = max(result["requests"], 1)
    result["cpu_ms_per_page"] = cpu_used(cpu, tree_cpu(process.pid)) * 1000 / pages
    if postmaster:  # the whole database server: other jobs on it count too
        result["db_cpu_ms_per_page"] = cpu_used(db_cpu, tree_cpu(postmaster)) * 1000 / pages
    return result


async def access_log_rows_added(conn: asyncpg.Connection, actor_id: uuid.UUID, base: str, path: str, token: str,
                                requests: int) -> int:
    """The access-log rows that `requests` sequential page requests to one server add. The requests carry a
    User-Agent of their own, which the log records: other clients of the same database (another benchmark, as
    the same user) count for nothing. Counted again after a pause, in case a writer commits after it answers."""
    agent = f"bench-access-log-check-{uuid.uuid4()}"
    count = "SELECT count(*) FROM access_log WHERE actor_id = $1 AND user_agent = $2"
    before = await conn.fetchval(count, actor_id, agent)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for _ in range(requests):
            response = await client.get(path, headers={"Authorization": f"Bearer {token}", "User-Agent": agent})
            response.raise_for_status()
            if not response.json().get("items", True):
                raise SystemExit("the benchmark's page is empty: the service logs nothing for an empty page")
    for _ in range(30):  # up to 3 s for the rows expected
        if await conn.fetchval(count, actor_id, agent) - before >= requests:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)  # and then any late extra
    return await conn.fetchval(count, actor_id, agent) - before


async def check_access_log(conn: asyncpg.Connection, servers: dict, path: str, token: str,
                           requests: int = 5) -> str | None:
    """G6 compares nothing unless the server started without the access log writes no row and the normal one
    writes one per request: None when so, else why G6 cannot be measured."""
    actor_id = await conn.fetchval("SELECT id FROM app_user WHERE username = $1", HTTP_USER)
    added = {name: await access_log_rows_added(conn, actor_id, f"http://127.0.0.1:{servers[name][1]}", path, token,
                                               requests)
             for name in ("nolog", "service")}
    print(f"G6: {requests} requests each: the service added {added['service']} access-log rows, the service "
          f"without its access log {added['nolog']}", file=sys.stderr, flush=True)
    if added["nolog"]:
        print("G6: the service ignores BILLING_API_ACCESS_LOG_ENABLED (the server started with it false wrote "
              f"{added['nolog']} access-log rows for {requests} requests): G6 not measured", file=sys.stderr,
              flush=True)
        return (f"the service ignores BILLING_API_ACCESS_LOG_ENABLED ({added['nolog']} access-log rows for "
                f"{requests} requests with it false)")
    if added["service"] != requests:
        print(f"G6: the normal service wrote {added['service']} access-log rows for {requests} requests, not one "
              "each: G6 not measured", file=sys.stderr, flush=True)
        return f"the normal service wrote {added['service']} access-log rows for {requests} requests"
    return None


async def measure_rounds(servers: dict, path: str, token: str, rounds: int, seconds: float,
                         postmaster: int | None) -> dict:
    """Interleaved rounds of `load()` at 32 clients on each server, the order reversed each round so that no
    server always goes first (and gets the machine as the previous one left it): per round and mean rps, CPU per
    page over all rounds, and each round's p99/p50."""
    figures: dict = {}
    totals = {name: {"requests": 0, "cpu": 0.0, "db_cpu": 0.0, "errors": 0} for name in servers}
    order = list(servers)
    for number in range(1, rounds + 1):
        for name in order:
            process, port = servers[name]
            result = await one_round(process, port, path, token, seconds, postmaster)
            result["p99_vs_p50"] = result["p99_ms"] / result["p50_ms"]
            for key, value in result.items():
                figures[f"{ROUND_PREFIX[name]}_r{number}_{key}"] = value
            totals[name]["requests"] += result["requests"]
            totals[name]["cpu"] += result["cpu_ms_per_page"] * result["requests"]
            totals[name]["db_cpu"] += result.get("db_cpu_ms_per_page", 0.0) * result["requests"]
            totals[name]["errors"] += result["errors"]
            if result["errors"]:
                print(f"{name} round {number}: {result['errors']} errors ({result['error_statuses']})",
                      file=sys.stderr, flush=True)
        order.reverse()
    for name in servers:
        prefix, requests = ROUND_PREFIX[name], max(totals[name]["requests"], 1)
        figures[f"{prefix}_mean_rps"] = statistics.mean(figures[f"{prefix}_r{n}_rps"] for n in range(1, rounds + 1))
        figures[f"{prefix}_cpu_ms_per_page"] = totals[name]["cpu"] / requests
        figures[f"{prefix}_errors"] = totals[name]["errors"]
        if postmaster:
            figures[f"{prefix}_db_cpu_ms_per_page"] = totals[name]["db_cpu"] / requests
        # The tail goal holds in every round, so the worst one is what it is judged on.
        figures[f"{prefix}_worst_p99_vs_p50"] = max(figures[f"{prefix}_r{n}_p99_vs_p50"] for n in range(1, rounds + 1))
    return figures


async def measure_128_clients(servers: dict, path: str, token: str, seconds: float, postmaster: int | None) -> dict:
    """The service's tail at 128 clients, one round: four times the G5 load queues in the server, and the goal
    p99 <= 3 x p50 says whether it queues fairly."""
    process, port = servers["service"]
    result = await one_round(process, port, path, token, seconds, postmaster, concurrency=128)
    if result["errors"]:
        print(f"service at 128 clients: {result['errors']} errors ({result['error_statuses']})", file=sys.stderr,
              flush=True)
    figures = {f"service_c128_{key}": value for key, value in result.items()}
    figures["service_c128_p99_vs_p50"] = result["p99_ms"] / result["p50_ms"]
    return figures


async def measure_http(url: str, conn: asyncpg.Connection, args: argparse.Namespace) -> dict:
    """G5, G6 and the service's tail at 32 and 128 clients: the service, the service without its access log
    (on another port, otherwise the same settings) and the lean reference, started side by side."""
    import lean

    path = f"/v1/bills?limit={PAGE}"
    ports = {name: free_port() for name in ROUND_PREFIX}
    servers = {"service": (start_server(url, ports["service"], access_log_env(True)), ports["service"]),
               "nolog": (start_server(url, ports["nolog"], access_log_env(False)), ports["nolog"]),
               "lean": (lean.start_lean(url, ports["lean"], lines=args.lean_lines, http=args.lean_http),
                        ports["lean"])}
    postmaster = await postmaster_pid(conn)
    figures: dict = {"access_log_batching": args.batching}
    try:
        for process, port in servers.values():
            await wait_ready(f"http://127.0.0.1:{port}", process)
        service_base = f"http://127.0.0.1:{ports['service']}"
        run_lean_check(url, service_base, f"http://127.0.0.1:{ports['lean']}")
        async with httpx.AsyncClient() as client:
            token = (await login(client, service_base, HTTP_USER))["Authorization"].split()[1]
        not_measured = await check_access_log(conn, servers, path, token)
        if not_measured:  # a second, identical service would only take the rounds' time
            figures["G6_not_measured"] = not_measured
            process, _ = servers.pop("nolog")
            process.terminate()
            process.wait(timeout=30)
        for process, port in servers.values():  # warm-up
            await load(port, path, token, 2)
        print(f"G5{'/G6' if 'nolog' in servers else ''}: {args.g5_rounds} interleaved rounds x {args.g5_seconds:g} s, "
              f"32 clients: {', '.join(ROUND_LABEL[name] for name in servers)}...", file=sys.stderr, flush=True)
        figures.update(await measure_rounds(servers, path, token, args.g5_rounds, args.g5_seconds, postmaster))
        figures["G5"] = figures["G5_service_mean_rps"] / figures["G5_lean_mean_rps"]
        if "nolog" in servers:
            figures["G6"] = figures["G5_service_mean_rps"] / figures["G6_nolog_mean_rps"]
        figures["G5_rounds"], figures["G5_seconds"] = args.g5_rounds, args.g5_seconds
        figures["G5_lean_lines"] = lean.LINES if args.lean_lines is None else args.lean_lines
        print("the service at 128 clients, one round...", file=sys.stderr, flush=True)
        figures.update(await measure_128_clients(servers, path, token, args.g5_seconds, postmaster))
        # For reference: the lean page without the access-log insert (a read-only transaction), one round.
        lean_process, lean_port = servers["lean"]
        readonly = await one_round(lean_process, lean_port, path + "&readonly=1", token, args.g5_seconds, postmaster)
        figures.update({f"G5_lean_readonly_{key}": value for key, value in readonly.items()})
    finally:
        for process, _ in servers.values():
            process.terminate()
        for process, _ in servers.values():
            process.wait(timeout=30)
    return figures


def http_lines(figures: dict) -> list[str]:
    if "G5" not in figures:
        return []
    rounds = figures["G5_rounds"]
    lines = [f"G5/G6, GET /v1/bills?limit={PAGE} as {HTTP_USER}, 32 clients, {figures['G5_seconds']:g} s rounds "
             f"(lean: lines {figures['G5_lean_lines']}; access-log batching {figures['access_log_batching']}):",
             f"  {'':<9}" + "".join(f"{'round ' + str(n):>10}" for n in range(1, rounds + 1))
             + f"{'mean':>10}{'CPU/page':>11}{'DB CPU/page':>13}{'p99/p50':>9}"
             + "  (server's processes; the whole database server; worst round)"]
    for name, prefix in ROUND_PREFIX.items():
        if f"{prefix}_mean_rps" not in figures:
            continue
        db = figures.get(f"{prefix}_db_cpu_ms_per_page")
        lines.append(f"  {ROUND_LABEL[name]:<9}"
                     + "".join(f"{figures[f'{prefix}_r{n}_rps']:>6.0f} rps" for n in range(1, rounds + 1))
                     + f"{figures[f'{prefix}_mean_rps']:>6.0f} rps{figures[f'{prefix}_cpu_ms_per_page']:>8.2f} ms"
                     + (f"{db:>10.2f} ms" if db is not None else f"{'':>13}")
                     + f"{figures[f'{prefix}_worst_p99_vs_p50']:>9.2f}")
    if "G6_not_measured" in figures:
        lines.append(f"  G6 not measured: {figures['G6_not_measured']}")
    errors = {ROUND_LABEL[name]: figures[f"{prefix}_errors"] for name, prefix in ROUND_PREFIX.items()
              if figures.get(f"{prefix}_errors")}
    if errors:  # a fast error answer counts as a page in rps: the figures above are not the pages' own
        lines.append("  ERRORS, counted as pages in rps and p50/p99 (statuses in the JSON): "
                     + ", ".join(f"{label} {count}" for label, count in errors.items()))
    lines.append("  service p50/p99 per round at 32 clients: " + ", ".join(
        f"{figures[f'G5_service_r{n}_p50_ms']:.1f}/{figures[f'G5_service_r{n}_p99_ms']:.1f} ms"
        for n in range(1, rounds + 1)))
    if "service_c128_rps" in figures:
        lines.append(f"  service at 128 clients, one round: {figures['service_c128_rps']:.0f} rps, p50 "
                     f"{figures['service_c128_p50_ms']:.1f} ms, p99 {figures['service_c128_p99_ms']:.1f} ms, "
                     f"p99/p50 {figures['service_c128_p99_vs_p50']:.2f}, "
                     f"{figures['service_c128_cpu_ms_per_page']:.2f} ms CPU/page"
                     + (f", ERRORS {figures['service_c128_errors']}" if figures["service_c128_errors"] else ""))
    readonly = "G5_lean_readonly_rps"
    if readonly in figures:
        lines.append(f"  lean without the access-log insert (read-only transaction): {figures[readonly]:.0f} rps, "
                     f"{figures['G5_lean_readonly_cpu_ms_per_page']:.2f} ms CPU/page")
    return lines


async def main_async(args: argparse.Namespace) -> dict:
    url = database_url(args.database_url)
    use_batching(args.batching)
    conn = await asyncpg.connect(url)
    callers = {row["class"]: row["user_id"] for row in await conn.fetch("SELECT class, user_id FROM bench_caller")}
    scale = await conn.fetchrow("""SELECT (SELECT count(*) FROM bill) AS bills,
        (SELECT count(*) FROM app_user WHERE is_provider) AS providers, (SELECT count(*) FROM app_user) AS users,
        (SELECT count(*) FROM user_group) AS groups""")
    figures: dict = {f"data_{k}": v for k, v in scale.items()}
    figures["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} " \
                         f"{platform.python_version()}, PostgreSQL {conn.get_server_version().major}"
    if args.only_http:
        try:
            figures.update(await measure_http(url, conn, args))
        finally:
            await conn.close()
        return figures
    print(f"measuring queries ({args.runs} interleaved runs)...", file=sys.stderr, flush=True)
    ours_conn = await asyncpg.connect(url, server_settings=SERVER_SETTINGS)
    figures.update(await measure_queries(conn, ours_conn, callers, args.runs))
    print(f"measuring the access log's cost ({args.runs} interleaved runs)...", file=sys.stderr, flush=True)
    figures.update(await measure_log_cost(ours_conn, callers, args.runs))
    figures.update(await measure_log_contention(url, callers, min(args.http_seconds, 10)))
    await ours_conn.close()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(url, port)
    try:
        await wait_ready(base, server)
        async with httpx.AsyncClient() as client:
            token = (await login(client, base, "bench.delegate40"))["Authorization"].split()[1]
        print(f"HTTP load, 32 clients, {args.http_seconds:g} s each...", file=sys.stderr, flush=True)
        await load(port, "/healthz", None, 2)  # warm-up
        await load(port, f"/v1/bills?limit={PAGE}", token, 2)
        health = await load(port, "/healthz", None, args.http_seconds)
        bills = await load(port, f"/v1/bills?limit={PAGE}", token, args.http_seconds)
        figures.update({f"http_bills_{k}": v for k, v in bills.items()})
        figures.update({f"http_healthz_{k}": v for k, v in health.items()})
        figures["http_bills_vs_healthz_rps_ratio"] = bills["rps"] / health["rps"]
        figures["http_bills_p99_vs_p50_ratio"] = bills["p99_ms"] / bills["p50_ms"]
        print(f"revocations ({args.revocations})...", file=sys.stderr, flush=True)
        figures.update(await revocations(conn, base, args.revocations))
    finally:
        server.terminate()
        server.wait(timeout=30)
    try:
        figures.update(await measure_http(url, conn, args))
    finally:
        await conn.close()
    return figures


GOALS = [
    ("G1 (one statement / two-step), p95, worst class", lambda f: max(f[f"G1_{c}_p95_ratio"] for c in CLASSES), 1.0),
    ("G1 (one statement / two-step), p50, worst class", lambda f: max(f[f"G1_{c}_p50_ratio"] for c in CLASSES), 1.0),
    ("G1-cap (page / unfiltered page), p95, worst class", lambda f: max(f[f"G1cap_{c}_p95_ratio"] for c in CLASSES), 6.0),
    ("G2 (2,000 providers / 1), p95", lambda f: f["G2_p95_ratio"], 3.0),
    ("G3 (authorize / primary-key read), p95", lambda f: f["G3_p95_ratio"], 1.5),
    ("G4 (revoked bills returned late)", lambda f: f["G4_late"], 0),
    ("keyset (page 200 / page 1), p95", lambda f: f["keyset_page200_vs_page1_p95_ratio"], 1.25),
    ("HTTP bills rps / healthz rps (at least)", lambda f: f["http_bills_vs_healthz_rps_ratio"], 0.25),
    ("HTTP bills p99 / p50", lambda f: f["http_bills_p99_vs_p50_ratio"], 3.0),
    ("G5 (service rps / lean reference rps, at least)", lambda f: f["G5"], 0.8),
    ("G6 (service rps / service without log, at least)", lambda f: f["G6"], 0.8),
    ("service p99 / p50, 32 clients (worst G5 round)", lambda f: f["G5_service_worst_p99_vs_p50"], 3.0),
    ("service p99 / p50, 128 clients", lambda f: f["service_c128_p99_vs_p50"], 3.0),
]


def human(figures: dict) -> str:
    lines = [f"billing-api benchmark: {figures['data_bills']:,} bills, {figures['data_providers']:,} providers, "
             f"{figures['data_users']:,} users, {figures['data_groups']:,} groups; {figures['machine']}", ""]
    if "ms_no_filter_p50" in figures:  # the query measurements (not with --only-http)
        lines += [f"{'class':<16}{'visible':>8}{'page p50':>10}{'p95':>8}{'2-step p95':>12}{'G1 p50':>8}"
                  f"{'G1 p95':>8}{'G1-cap':>8}{'/list':>7}"]
        for name in CLASSES:
            lines.append(
                f"{name:<16}{str(figures.get(f'visible_providers_{name}', 'all')):>8}"
                f"{figures[f'ms_{name}_p50']:>9.2f}m{figures[f'ms_{name}_p95']:>7.2f}m"
                f"{figures[f'ms_{name}_two_step_p95']:>11.2f}m"
                f"{figures[f'G1_{name}_p50_ratio']:>8.2f}{figures[f'G1_{name}_p95_ratio']:>8.2f}"
                f"{figures[f'G1cap_{name}_p95_ratio']:>8.2f}{figures[f'G1_{name}_vs_literal_list_p95_ratio']:>7.2f}")
        lines += ["", "access log (page + insert + commit / page + commit), p50 and p95: " + ", ".join(
            f"{name[0]} {figures[f'log_{name}_p50_ratio']:.2f}/{figures[f'log_{name}_p95_ratio']:.2f}"
            for name in CLASSES)]
        lines += ["", f"no-filter page p50/p95 {figures['ms_no_filter_p50']:.2f}/{figures['ms_no_filter_p95']:.2f} ms; "
                  f"HTTP GET /v1/bills {figures['http_bills_rps']:.0f} rps (p50 {figures['http_bills_p50_ms']:.1f} ms, "
                  f"p99 {figures['http_bills_p99_ms']:.1f} ms), /healthz {figures['http_healthz_rps']:.0f} rps", ""]
    lines += http_lines(figures)
    lines.append("")
    for label, value, bound in GOALS:
        try:
            measured = value(figures)
        except KeyError:  # not measured in this run (--only-http), or could not be (said why)
            reason = figures.get(f"{label.split()[0]}_not_measured")
            if reason:
                lines.append(f"  n/a   {label:<52} {'-':>8}  (goal {bound}; not measured: {reason})")
            continue
        met = measured >= bound if "at least" in label else measured <= bound
        lines.append(f"  {'met ' if met else 'MISS'}  {label:<52} {measured:8.2f}  (goal {bound})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="PostgreSQL URL; default: embedded server in bench/.data")
    parser.add_argument("--runs", type=int, default=1000, help="interleaved runs per query figure (default 1000)")
    parser.add_argument("--http-seconds", type=float, default=10, help="seconds of load per endpoint (default 10)")
    parser.add_argument("--revocations", type=int, default=1000, help="revocations for G4 (default 1000)")
    parser.add_argument("--only-http", action="store_true",
                        help="only the HTTP rounds: G5 (the service against the lean reference, bench/lean.py), "
                             "G6 (against itself without its access log) and the tail at 32 and 128 clients: "
                             "about two minutes")
    parser.add_argument("--g5-rounds", type=int, default=3,
                        help="interleaved rounds per server for G5 and G6 (default 3)")
    parser.add_argument("--g5-seconds", type=float, default=8, help="seconds per G5/G6 round (default 8)")
    parser.add_argument("--batching", choices=["on", "off"], default="on",
                        help="the servers' access-log writes (BILLING_API_ACCESS_LOG_BATCHING): shared transactions "
                             "of a per-process writer (on, the default) or one transaction per request (off)")
    parser.add_argument("--lean-lines", choices=["folded", "separate"],
                        help="the lean reference's lines: as the service reads them (default), or forced")
    parser.add_argument("--lean-http", default="service",
                        help="the lean reference's uvicorn protocol: `service` (the service's own, default), "
                             "h11 or httptools")
    args = parser.parse_args()
    figures = asyncio.run(main_async(args))
    print(json.dumps(figures, indent=2, default=str))
    print(human(figures), file=sys.stderr)


if __name__ == "__main__":
    main()
