"""Every route of the app called as every class of caller, over HTTP through the ASGI app.

The expected statuses are the rows of tests/authz/route_matrix.py. The world is built once for the module in
one transaction; every request runs in a savepoint that is rolled back after it, so no write reaches another
row (or another caller's request).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from tests.authz import route_matrix as matrix
from tests.authz.world import ACCEPT_TOKEN, ENCOUNTER_FEE, build_route_world
from tests.factories import Factory


@dataclass
class Stage:
    connection: AsyncConnection
    sessionmaker: async_sessionmaker[AsyncSession]
    names: dict[str, str]               # world object name -> id (or value) used in paths and bodies
    usernames: dict[str, str]           # caller -> username ("{self}" in a body)
    headers: dict[str, dict[str, str]]  # caller -> request headers


@pytest.fixture(scope="module")
async def stage(engine, settings):
    async with engine.connect() as connection:
        outer = await connection.begin()
        maker = async_sessionmaker(bind=connection, join_transaction_mode="create_savepoint",
                                   expire_on_commit=False)
        async with maker() as session:
            factory = Factory(session, settings)
            world = await build_route_world(factory)
            extra = world.extra
            names = {name: str(user.id) for name, user in world.users.items()}
            names.update(
                accept_token=ACCEPT_TOKEN,
                owner_bill=str(world.insured_bill.id), submitted_bill=str(extra["submitted_bill"].id),
                other_bill=str(world.other_provider_bill.id), elsewhere_bill=str(world.elsewhere_bill.id),
                visit=str(world.visit.id),
                patient=str(world.patient.id), encounter=str(world.encounter.id),
                clinic=str(world.clinic.id), network=str(world.network.id), clerks=str(world.group_id),
                pending_invitation=str(extra["pending_invitation"].id), payer=str(extra["payer"].id),
                facility=str(extra["facility"].id), card=str(extra["card"].id),
                superbill=str(extra["superbill"].id),
                encounter_fee=f'"fee_cents":{ENCOUNTER_FEE}',  # as the encounter's line shows it
            )
            # The deactivated delegate's token carries its current token version: only the status stops it.
            headers = {caller: factory.headers(world.users[caller]) for caller in matrix.CALLERS
                       if caller != "anonymous"}
            headers["anonymous"] = {}
            usernames = {caller: world.users[caller].username for caller in headers if caller != "anonymous"}
            usernames["anonymous"] = "nobody-at-all"
            await session.commit()  # releases the builder's savepoint: the world stays in `outer`
        yield Stage(connection, maker, names, usernames, headers)
        await outer.rollback()


@pytest.fixture(scope="module")
async def http(shared_app):
    transport = httpx.ASGITransport(app=shared_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def staged(shared_app, stage):
    shared_app.state.sessionmaker = stage.sessionmaker
    yield stage
    shared_app.state.sessionmaker = None


async def call(http: httpx.AsyncClient, stage: Stage, row: matrix.Row, caller: str) -> httpx.Response:
    request = matrix.request_of(row, {**stage.names, "self": stage.usernames[caller]})
    savepoint = await stage.connection.begin_nested()
    try:
        return await http.request(**request, headers=stage.headers[caller])
    finally:
        await savepoint.rollback()


@pytest.mark.parametrize("row", matrix.ROWS, ids=[f"{row.method} {row.path}" for row in matrix.ROWS])
async def test_route_as_every_caller(http, staged, row):
    actual: dict[str, int] = {}
    wrong: list[str] = []
    for caller in matrix.CALLERS:
        response = await call(http, staged, row, caller)
        actual[caller] = response.status_code
        if response.status_code != row.expect[caller]:
            wrong.append(f"  {caller}: expected {row.expect[caller]}, got {response.status_code} "
                         f"{response.text[:200]}")
        elif response.status_code == 200:
            for name, callers in row.reveals.items():
                if (staged.names[name] in response.text) != (caller in callers):
                    wrong.append(f"  {caller}: the answer {'names' if caller not in callers else 'lacks'} {name}")
        elif response.status_code >= 400:
            # Refusals are problem+json with a stable code, like every other error.
            assert response.headers["content-type"] == "application/problem+json", (caller, response.text)
            assert response.json()["code"], (caller, response.text)
    assert not wrong, (f"{row.method} {row.path}: {len(wrong)} caller(s) disagree with the row\n"
                       + matrix.table([row], {row.key: actual}) + "\n" + "\n".join(wrong))


# Another provider of the clinic and their bill: invited users serve the owner only.
FOREIGN = {"provider_id": "other_provider", "bill_id": "other_bill"}
PROVIDER_ROWS = [row for row in matrix.ROWS if FOREIGN.keys() & set(matrix.PLACEHOLDER.findall(row.path))]


@pytest.mark.parametrize("row", PROVIDER_ROWS, ids=[f"{row.method} {row.path}" for row in PROVIDER_ROWS])
async def test_invited_users_know_no_other_provider(http, staged, row):
    """Object-level authorization the other way round: the same requests aimed at a provider whose list does
    not name them (and at that provider's bill) find nothing, whatever their role on the owner's team."""
    foreign = replace(row, targets={**row.targets, **FOREIGN})
    for caller in sorted(matrix.INVITED):
        response = await call(http, staged, foreign, caller)
        assert response.status_code == 404, (caller, foreign.method, foreign.path, response.text)


def test_every_route_has_a_row_and_every_row_a_route(shared_app):
    served = set(matrix.route_keys(shared_app))
    missing = sorted(served - matrix.MATRIX.keys(), key=lambda key: key[1])
    stale = sorted(matrix.MATRIX.keys() - served, key=lambda key: key[1])
    assert not missing, "routes with no row in tests/authz/route_matrix.py: " + ", ".join(
        f"{method} {path}" for method, path in missing)
    assert not stale, "rows in tests/authz/route_matrix.py naming no route: " + ", ".join(
        f"{method} {path}" for method, path in stale)
    assert len(matrix.ROWS) == len(matrix.MATRIX), "a route has two rows"


def test_every_row_names_every_caller_and_its_targets():
    for row in matrix.ROWS:
        assert set(row.expect) == set(matrix.CALLERS), row.key
        for param in matrix.PLACEHOLDER.findall(row.path):
            assert param in row.targets or param in matrix.DEFAULT_TARGETS, (row.key, param)


def test_the_published_matrix_is_up_to_date():
    assert matrix.DOCUMENT.exists(), "run: python -m tests.authz.route_matrix"
    assert matrix.DOCUMENT.read_text() == matrix.document(), (
        "docs/authorization-matrix.md is stale: run `python -m tests.authz.route_matrix`")
