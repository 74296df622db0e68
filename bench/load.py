"""A mixed workload against `billing-api serve` (uvicorn, 2 workers) over loopback, for a set time, at each
concurrency asked for; it counts server errors, leaks and lost updates. Run bench/generate.py first, then:

    .venv/bin/python bench/load.py [--seconds 60] [--clients 32 128] [--database-url ...]

The workload, per client, drawn at random each time: 70% the billing dashboard (first page, or the next page
by cursor) as one of the benchmark's callers, 15% one bill by id, 5% GET /v1/me, 10% a delegation list save
on one of a few contended provider lists (read the version, save with it: 200 or 409 stale).

Beside it, revocation cells: each cell is a provider in a segregated company, a user and a group; the cell's
writer grants the user the provider's bills and revokes them again, by a list save, a group removal or a
deactivation in turn, while the cell's reader keeps reading the provider's bill and dashboard as the user.
A leak is a read that started after a revocation's response had arrived and still returned the provider's
bill. A lost update is a saved list that a later save overwrote without having read it: two saves that both
succeeded from the same version, or a final list that is not the last successful save.

Prints one JSON object (one entry per concurrency) and a human summary. The load generator runs in this
process, on the same machine as the server: its figures are what one machine serves with its own client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_PASSWORD, database_url  # noqa: E402
from run import free_port, login, percentile, start_server, wait_ready  # noqa: E402

READERS = ["a_provider", "b_delegate_5", "c_delegate_40", "d_parent_admin", "e_support", "f_everything"]
CONTENDED_LISTS = 4
CELLS = 4
READERS_PER_CELL = 2
REVOCATION_KINDS = ("list_save", "group_removal", "deactivation")


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: dict[str, int] = field(default_factory=dict)  # exception class -> count (no response)
    outcomes: dict[str, int] = field(default_factory=dict)  # "operation status" -> count
    unexpected: dict[str, int] = field(default_factory=dict)
    by_operation: dict[str, list[float]] = field(default_factory=dict)  # operation -> latencies (the tail's makeup)

    def record(self, started: float, response: httpx.Response | httpx.TransportError, operation: str,
               expected: tuple[int, ...]):
        latency = time.perf_counter() - started
        self.latencies.append(latency)
        self.by_operation.setdefault(operation, []).append(latency)
        if isinstance(response, httpx.TransportError):
            kind = f"{operation}: {type(response).__name__}"
            self.transport_errors[kind] = self.transport_errors.get(kind, 0) + 1
            return
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        key = f"{operation} {response.status_code}"
        self.outcomes[key] = self.outcomes.get(key, 0) + 1
        if response.status_code not in expected:
            self.unexpected[key] = self.unexpected.get(key, 0) + 1


@dataclass
class Cell:
    """One provider whose bills a user is granted and revoked, again and again."""

    provider: str
    provider_id: uuid.UUID
    bill_id: uuid.UUID
    revokee: str
    revokee_id: uuid.UUID
    admin: str
    group_id: uuid.UUID
    token: str | None = None
    revoked_at: float | None = None  # when the last revocation's response arrived; None while granted
    revocations: int = 0
    grants_not_seen: int = 0
    leaks: list[dict] = field(default_factory=list)
    reads_after_revocation: int = 0
    kind: str = ""


async def request(client: httpx.AsyncClient, tally: Tally, operation: str, method: str, url: str,
                  expected: tuple[int, ...] = (200,), **kwargs) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TransportError as error:
        tally.record(started, error, operation, expected)
        return None
    tally.record(started, response, operation, expected)
    return response


# ---------------------------------------------------------------- set-up (SQL on the benchmark data set)

async def make_cells(conn: asyncpg.Connection, count: int) -> list[Cell]:
    """Providers of segregated companies other than the benchmark's callers' home, each with a user and a
    group of its own and a list manager holding the two permissions."""
    password_hash = await conn.fetchval("SELECT password_hash FROM app_user WHERE username = 'bench.delegate5'")
    rows = await conn.fetch("""
        SELECT DISTINCT ON (u.company_id) u.id, u.username, u.company_id,
               (SELECT id FROM bill WHERE provider_id = u.id LIMIT 1) AS bill_id
        FROM app_user u JOIN company c ON c.id = u.company_id
        WHERE u.is_provider AND c.billing_segregation_enabled_at IS NOT NULL
          AND u.company_id NOT IN (SELECT company_id FROM bench_home)
          AND u.id NOT IN (SELECT user_id FROM bench_caller)
          AND EXISTS (SELECT 1 FROM bill WHERE provider_id = u.id)
        ORDER BY u.company_id, u.username LIMIT $1""", count)
    cells = []
    for n, row in enumerate(rows):
        names = (f"load.revokee{n}", f"load.admin{n}")
        for username, permissions in zip(names, ([], ["users:edit_others", "billing:delegation_settings"])):
            await conn.execute("""
                INSERT INTO app_user (id, company_id, email, username, display_name, password_hash, status,
                                      account_type, kind, is_provider, permissions, token_version, created_at,
                                      updated_at)
                VALUES (gen_random_uuid(), $1, $2 || '@bench.example', $2, $2, $3, 'active', 'standard', 'member',
                        false, $4, 1, now(), now())
                ON CONFLICT DO NOTHING""", row["company_id"], username, password_hash, permissions)
        group_name = f"Load cell {n}"
        group_id = await conn.fetchval("SELECT id FROM user_group WHERE name = $1", group_name) or \
            await conn.fetchval("""INSERT INTO user_group (id, company_id, name, permissions, created_at)
                VALUES (gen_random_uuid(), $1, $2, '{}', now()) RETURNING id""", row["company_id"], group_name)
        revokee_id = await conn.fetchval("SELECT id FROM app_user WHERE username = $1", names[0])
        # A clean start: the user active and in no group, the group on no list but this provider's.
        await conn.execute("UPDATE app_user SET status = 'active' WHERE id = $1", revokee_id)
        await conn.execute("DELETE FROM group_member WHERE user_id = $1 OR group_id = $2", revokee_id, group_id)
        cells.append(Cell(provider=row["username"], provider_id=row["id"], bill_id=row["bill_id"], revokee=names[0],
                          revokee_id=revokee_id, admin=names[1], group_id=group_id))
    return cells


async def contended_providers(conn: asyncpg.Connection, count: int) -> list[tuple[str, uuid.UUID, list[str]]]:
    """Providers whose lists many clients save at once, with users of their company to put on them."""
    rows = await conn.fetch("""
        SELECT u.username, u.id, (SELECT array_agg(id::text) FROM (
                   SELECT o.id FROM app_user o WHERE o.company_id = u.company_id AND NOT o.is_provider
                     AND o.status = 'active' AND o.account_type = 'standard' AND o.username NOT LIKE 'load.%'
                     AND o.username NOT LIKE 'bench.%' ORDER BY o.id LIMIT 8) x) AS pool
        FROM app_user u
        WHERE u.is_provider AND u.id NOT IN (SELECT user_id FROM bench_caller)
          AND u.company_id NOT IN (SELECT company_id FROM bench_home)
        ORDER BY u.username DESC LIMIT $1""", count)
    return [(row["username"], row["id"], row["pool"] or []) for row in rows]


# ---------------------------------------------------------------- the workload

async def mixed_client(client: httpx.AsyncClient, tally: Tally, deadline: float, readers: list[dict[str, str]],
                       contended: list[tuple[dict[str, str], uuid.UUID, list[str]]], saves: list[dict]) -> None:
    cursor: str | None = None
    bill_ids: list[str] = []
    while time.perf_counter() < deadline:
        draw = random.random()
        headers = random.choice(readers)
        if draw < 0.70:
            params = {"limit": 50} | ({"cursor": cursor} if cursor and random.random() < 0.5 else {})
            response = await request(client, tally, "dashboard", "GET", "/v1/bills", headers=headers, params=params)
            if response is not None and response.status_code == 200:
                page = response.json()
                cursor = page.get("next_cursor")
                bill_ids = [item["id"] for item in page["items"][:10]] or bill_ids
        elif draw < 0.85 and bill_ids:
            # Another caller may not see this bill: 404 is the right answer then.
            await request(client, tally, "bill", "GET", f"/v1/bills/{random.choice(bill_ids)}", (200, 404),
                          headers=headers)
        elif draw < 0.90:
            await request(client, tally, "me", "GET", "/v1/me", headers=headers)
        else:
            owner, provider_id, pool = random.choice(contended)
            await save_contended(client, tally, owner, provider_id, pool, saves)


async def save_contended(client: httpx.AsyncClient, tally: Tally, owner: dict[str, str], provider_id: uuid.UUID,
                         pool: list[str], saves: list[dict]) -> None:
    url = f"/v1/providers/{provider_id}/delegation"
    current = await request(client, tally, "list read", "GET", url, headers=owner)
    if current is None or current.status_code != 200:
        return
    base = current.json()["version"]
    chosen = sorted(random.sample(pool, k=random.randint(0, min(3, len(pool)))))
    body = {"entries": [{"user_id": user_id, "role": "financial_viewer"} for user_id in chosen], "version": base,
            "password": BENCH_PASSWORD}
    response = await request(client, tally, "list save", "PUT", url, (200, 409), headers=owner, json=body)
    if response is not None and response.status_code == 200:
        saves.append({"provider_id": provider_id, "base": base, "version": response.json()["version"],
                      "users": chosen})


async def cell_writer(client: httpx.AsyncClient, tally: Tally, cell: Cell, deadline: float) -> None:
    owner = await login(client, str(client.base_url), cell.provider)
    admin = await login(client, str(client.base_url), cell.admin)
    url = f"/v1/providers/{cell.provider_id}/delegation"
    group_entry = {"group_id": str(cell.group_id), "role": "financial_viewer"}

    async def save_list(entries: list[dict]) -> bool:
        current = await request(client, tally, "cell list read", "GET", url, headers=owner)
        body = {"entries": entries, "version": current.json()["version"], "password": BENCH_PASSWORD}
        response = await request(client, tally, "cell list save", "PUT", url, headers=owner, json=body)
        return response is not None and response.status_code == 200

    async def members(user_ids: list[str]) -> bool:
        response = await request(client, tally, "group members", "PUT", f"/v1/groups/{cell.group_id}/members",
                                 headers=admin, json={"user_ids": user_ids})
        return response is not None and response.status_code == 200

    async def status(action: str) -> bool:
        response = await request(client, tally, action, "POST", f"/v1/users/{cell.revokee_id}/{action}",
                                 headers=admin)
        return response is not None and response.status_code == 200

    await save_list([group_entry])
    n = 0
    while time.perf_counter() < deadline:
        kind = REVOCATION_KINDS[n % 3]
        cell.kind = kind
        n += 1
        # Grant (from here on a read may rightly see the bill) ...
        cell.revoked_at = None
        if kind == "list_save":
            granted = await save_list([group_entry, {"user_id": str(cell.revokee_id), "role": "financial_viewer"}])
        elif kind == "group_removal":
            granted = await members([str(cell.revokee_id)])
        else:
            granted = await members([str(cell.revokee_id)]) and await status("reactivate")
        cell.token = (await login(client, str(client.base_url), cell.revokee))["Authorization"]
        seen = await client.get(f"/v1/bills/{cell.bill_id}", headers={"Authorization": cell.token})
        cell.grants_not_seen += granted and seen.status_code != 200
        # ... and revoke: from the moment the response arrives, no read may return the bill.
        if kind == "list_save":
            revoked = await save_list([group_entry])
        elif kind == "group_removal":
            revoked = await members([])
        else:
            revoked = await status("deactivate")
        if revoked:
            cell.revoked_at = time.perf_counter()
            cell.revocations += 1
        await asyncio.sleep(0.2)  # let the readers try while revoked
        if kind == "deactivation":
            await members([])
            await status("reactivate")


async def cell_reader(client: httpx.AsyncClient, tally: Tally, cell: Cell, deadline: float) -> None:
    while time.perf_counter() < deadline:
        token = cell.token
        if token is None:
            await asyncio.sleep(0.01)
            continue
        started = time.perf_counter()
        revoked_at = cell.revoked_at
        single = random.random() < 0.5
        url = f"/v1/bills/{cell.bill_id}" if single else f"/v1/bills?limit=50&provider_id={cell.provider_id}"
        response = await request(client, tally, "cell read", "GET", url, (200, 401, 404),
                                 headers={"Authorization": token})
        if revoked_at is None or started <= revoked_at or cell.revoked_at != revoked_at or response is None:
            continue  # began before the revocation was answered, or a grant came since: may rightly see it
        cell.reads_after_revocation += 1
        if response.status_code == 200:
            body = response.json()
            leaked = single or any(item["provider_id"] == str(cell.provider_id) for item in body["items"])
            if leaked:
                cell.leaks.append({"revocation": cell.kind, "url": url,
                                   "ms_after_revocation": round((started - revoked_at) * 1000, 1)})


def lost_updates(saves: list[dict], finals: dict[uuid.UUID, dict]) -> int:
    lost = 0
    for provider_id, final in finals.items():
        mine = sorted((s for s in saves if s["provider_id"] == provider_id), key=lambda s: s["version"])
        bases = [s["base"] for s in mine]
        lost += len(bases) - len(set(bases))  # two saves accepted from one version: one of them was lost
        if mine and (final["version"] != mine[-1]["version"] or final["users"] != mine[-1]["users"]):
            lost += 1
    return lost


async def run_level(base: str, conn: asyncpg.Connection, clients: int, seconds: float) -> dict:
    connections = clients + (2 + READERS_PER_CELL) * CELLS
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        usernames = [row["username"] for row in await conn.fetch(
            "SELECT username FROM bench_caller WHERE class = ANY($1::text[])", READERS)]
        readers = [await login(client, base, username) for username in usernames]
        contended = [(await login(client, base, username), provider_id, pool)
                     for username, provider_id, pool in await contended_providers(conn, CONTENDED_LISTS)]
        cells = await make_cells(conn, CELLS)
        tally, saves = Tally(), []
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(
            *(mixed_client(client, tally, deadline, readers, contended, saves) for _ in range(clients)),
            *(cell_writer(client, tally, cell, deadline) for cell in cells),
            *(cell_reader(client, tally, cell, deadline) for cell in cells for _ in range(READERS_PER_CELL)))
        elapsed = time.perf_counter() - started
        finals = {}
        for owner, provider_id, _ in contended:
            final = (await client.get(f"/v1/providers/{provider_id}/delegation", headers=owner)).json()
            finals[provider_id] = {"version": final["version"],
                                   "users": sorted(e["user_id"] for e in final["entries"] if e["user_id"])}
    total = len(tally.latencies)
    server_errors = (sum(n for status, n in tally.statuses.items() if status >= 500)
                     + sum(tally.transport_errors.values()))
    return {
        "clients": clients, "seconds": round(elapsed, 1), "requests": total, "rps": round(total / elapsed, 1),
        "p50_ms": round(percentile(tally.latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(tally.latencies, 0.99) * 1000, 2),
        "by_operation": {operation: {"requests": len(times), "p50_ms": round(percentile(times, 0.50) * 1000, 2),
                                     "p99_ms": round(percentile(times, 0.99) * 1000, 2)}
                         for operation, times in sorted(tally.by_operation.items())},
        "server_errors": server_errors, "error_rate": round(server_errors / max(total, 1), 5),
        "unexpected_statuses": tally.unexpected, "transport_errors": tally.transport_errors,
        "statuses": dict(sorted(tally.statuses.items())),
        "list_saves": len(saves), "list_save_conflicts": tally.outcomes.get("list save 409", 0),
        "revocations": sum(c.revocations for c in cells),
        "reads_after_revocation": sum(c.reads_after_revocation for c in cells),
        "leaks": sum(len(c.leaks) for c in cells), "leak_examples": [leak for c in cells for leak in c.leaks][:10],
        "grants_not_seen": sum(c.grants_not_seen for c in cells),
        "lost_updates": lost_updates(saves, finals),
    }


async def main_async(args: argparse.Namespace) -> dict:
    url = database_url(args.database_url)
    conn = await asyncpg.connect(url)
    figures: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()},"
                                f" PostgreSQL {conn.get_server_version().major}",
                     "bills": await conn.fetchval("SELECT count(*) FROM bill"), "levels": []}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(url, port)
    try:
        await wait_ready(base)
        for clients in args.clients:
            print(f"{clients} clients for {args.seconds:g} s...", file=sys.stderr, flush=True)
            figures["levels"].append(await run_level(base, conn, clients, args.seconds))
    finally:
        server.terminate()
        server.wait(timeout=30)
        await conn.close()
    return figures


def human(figures: dict) -> str:
    lines = [f"billing-api load: {figures['bills']:,} bills; {figures['machine']}; server: uvicorn, 2 workers",
             f"{'clients':>8}{'rps':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'saves':>7}{'revoked':>9}"
             f"{'checked':>9}{'leaks':>7}{'lost':>6}"]
    for level in figures["levels"]:
        lines.append(f"{level['clients']:>8}{level['rps']:>8.0f}{level['p50_ms']:>9.1f}{level['p99_ms']:>9.1f}"
                     f"{level['server_errors']:>8}{level['list_saves']:>7}{level['revocations']:>9}"
                     f"{level['reads_after_revocation']:>9}{level['leaks']:>7}{level['lost_updates']:>6}")
        if level["unexpected_statuses"]:
            lines.append(f"{'':>8}unexpected: {level['unexpected_statuses']}")
    lines.append("per operation, p50 / p99 ms (requests), by concurrency:")
    for operation in sorted({op for level in figures["levels"] for op in level["by_operation"]}):
        cells = [level["by_operation"].get(operation) for level in figures["levels"]]
        lines.append(f"  {operation:<28}" + "".join(
            f"{c['p50_ms']:>9.1f} /{c['p99_ms']:>8.1f} ({c['requests']:>5})" if c else f"{'-':>26}" for c in cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="PostgreSQL URL; default: embedded server in bench/.data")
    parser.add_argument("--seconds", type=float, default=60, help="seconds of load per concurrency (default 60)")
    parser.add_argument("--clients", type=int, nargs="+", default=[32, 128], help="concurrencies (default 32 128)")
    args = parser.parse_args()
    figures = asyncio.run(main_async(args))
    print(json.dumps(figures, indent=2, default=str))
    print(human(figures), file=sys.stderr)
    failed = any(level["server_errors"] or level["leaks"] or level["lost_updates"] for level in figures["levels"])
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
