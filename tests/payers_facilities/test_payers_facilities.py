"""Payers and facilities: who may read and change them at the parent level and at a child level, the copy-down
(idempotent, all or nothing, also under concurrency), unique names, deletes, audit."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from billing_api.models import GroupCompanyAssignment
from tests.helpers import ADMIN, SUPPORT, assert_problem, count
from tests.support.ems import build_ems, snapshot

KINDS = [pytest.param(("payers", "payer", "payers:manage", {"payer_code": "00123"}), id="payers"),
         pytest.param(("facilities", "facility", "facilities:manage", {"npi": "1234567893"}), id="facilities")]

CALLERS = [
    "betty",          # company administrator of the parent
    "barney",         # standard, Biller role (holds payers:manage and facilities:manage), reaches North
    "west_manager",   # parent user holding both permissions directly, reaches no child
    "north_manager",  # North user holding both permissions
    "north_plain",    # North user without them
    "north_admin",    # company administrator of North
    "support",
    "far_admin",      # company administrator of another tree
]

PARENT_WRITERS = {"betty"}
NORTH_WRITERS = {"betty", "barney", "north_manager", "north_admin"}
PARENT_READERS = {"betty", "barney", "west_manager", "support"}
NORTH_READERS = {"betty", "barney", "north_manager", "north_plain", "north_admin", "support"}


@pytest.fixture
async def ems(factory):
    """The EMS world plus one user for every caller of `CALLERS` (in `users`), and the Biller role selecting North."""
    world = await build_ems(factory)
    manage = ["facilities:manage", "payers:manage"]
    world.users = {
        "betty": world.betty,
        "barney": world.barney,
        "west_manager": await factory.user(world.west, permissions=manage),
        "north_manager": await factory.user(world.north, permissions=manage),
        "north_plain": await factory.user(world.north),
        "north_admin": await factory.user(world.north, account_type=ADMIN),
        "support": await factory.user(await factory.company("Vendor"), account_type=SUPPORT),
        "far_admin": await factory.user(world.far, account_type=ADMIN),
    }
    factory.session.add(GroupCompanyAssignment(group_id=world.biller.id, company_id=world.north.id))
    await factory.session.flush()
    return world


def expected(caller: str, readers: set[str], writers: set[str]) -> int:
    if caller not in readers:
        return 404
    return 0 if caller in writers else 403


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("level", ["parent", "child"])
@pytest.mark.parametrize("caller", CALLERS)
async def test_who_may_read_and_change(client, factory, session, ems, caller, level, kind):
    plural, noun, permission, extra = kind
    company = ems.west if level == "parent" else ems.north
    readers, writers = (PARENT_READERS, PARENT_WRITERS) if level == "parent" else (NORTH_READERS, NORTH_WRITERS)
    headers = factory.headers(ems.users[caller])
    base = f"/v1/companies/{company.id}/{plural}"
    admin = factory.headers(ems.betty)
    existing = (await client.post(base, headers=admin, json={"name": "Existing", **extra})).json()
    outcome = expected(caller, readers, writers)

    listed = await client.get(base, headers=headers)
    got = await client.get(f"{base}/{existing['id']}", headers=headers)
    if outcome == 404:
        assert_problem(listed, 404, "company_not_found")
        assert_problem(got, 404, "company_not_found")
    else:
        assert listed.status_code == 200 and [r["id"] for r in listed.json()["items"]] == [existing["id"]]
        assert got.status_code == 200 and got.json() == existing

    before = await snapshot(session)
    created = await client.post(base, headers=headers, json={"name": "New one", **extra})
    edited = await client.patch(f"{base}/{existing['id']}", headers=headers, json={"name": "Renamed"})
    deleted = await client.delete(f"{base}/{existing['id']}", headers=headers)
    if outcome == 0:
        assert created.status_code == 201, created.text
        assert created.json()["company_id"] == str(company.id) and created.json()["copied_from_id"] is None
        assert edited.status_code == 200 and edited.json()["name"] == "Renamed"
        assert deleted.status_code == 204
        assert await count(session, noun, "company_id = :c", c=company.id) == 1
        if level == "parent":  # parent-level changes are audited
            for action in ("created", "updated", "deleted"):
                assert await count(session, "audit_event", "action = :a", a=f"{noun}.{action}") >= 1
        return
    code = {404: "company_not_found", 403: None}[outcome]
    for response in (created, edited, deleted):
        problem = assert_problem(response, outcome, code)
        if outcome == 403:
            if caller == "support":
                assert problem["code"] == "support_read_only"
            elif level == "parent":
                assert problem["code"] == "company_admin_required"
            else:
                assert problem["code"] == "permission_denied" and problem["permission"] == permission
    assert await snapshot(session) == before


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("caller", CALLERS)
async def test_who_may_copy_down(client, factory, session, ems, caller, kind):
    plural, noun, _, extra = kind
    admin = factory.headers(ems.betty)
    source = (await client.post(f"/v1/companies/{ems.west.id}/{plural}", headers=admin,
                                json={"name": "Shared", **extra})).json()
    before = await snapshot(session)
    response = await client.post(f"/v1/companies/{ems.west.id}/{plural}/{source['id']}/copy",
                                 headers=factory.headers(ems.users[caller]),
                                 json={"company_ids": [str(ems.north.id)]})
    outcome = expected(caller, PARENT_READERS, PARENT_WRITERS)
    if outcome == 0:
        assert response.status_code == 200, response.text
        copy = response.json()["items"][0]
        got = (await client.get(f"/v1/companies/{ems.north.id}/{plural}/{copy['id']}", headers=admin)).json()
        assert got["copied_from_id"] == source["id"] and got["name"] == "Shared"
        assert all(got[field] == value for field, value in extra.items())
        return
    assert_problem(response, outcome)
    assert await snapshot(session) == before


@pytest.mark.parametrize("kind", KINDS)
async def test_copying_is_all_or_nothing(client, factory, session, ems, kind):
    plural, noun, _, extra = kind
    admin = factory.headers(ems.betty)
    base = f"/v1/companies/{ems.west.id}/{plural}"
    source = (await client.post(base, headers=admin, json={"name": "Shared", **extra})).json()
    copy = f"{base}/{source['id']}/copy"
    # A child holding another record of the same name (not a copy) refuses the whole copy.
    await client.post(f"/v1/companies/{ems.south.id}/{plural}", headers=admin, json={"name": "SHARED"})
    before = await snapshot(session)
    clash = assert_problem(await client.post(copy, headers=admin, json={
        "company_ids": [str(ems.north.id), str(ems.south.id), str(ems.east.id)]}), 409, f"{noun}_name_taken")
    assert clash["company_id"] == str(ems.south.id)
    # Any company that is not a child of the source's company refuses it too.
    for outsider in (ems.far_child.id, ems.far.id, ems.west.id, uuid.uuid4()):
        problem = assert_problem(await client.post(copy, headers=admin, json={
            "company_ids": [str(ems.north.id), str(outsider)]}), 422, "company_not_a_child")
        assert problem["company_id"] == str(outsider)
    assert_problem(await client.post(copy, headers=admin, json={
        "company_ids": [str(ems.north.id), str(ems.north.id)]}), 422, "duplicate_company")
    assert await snapshot(session) == before

    # A child-level record has no children to go to.
    child_record = (await client.post(f"/v1/companies/{ems.north.id}/{plural}", headers=admin,
                                      json={"name": "North only"})).json()
    assert_problem(await client.post(f"/v1/companies/{ems.north.id}/{plural}/{child_record['id']}/copy",
                                     headers=admin, json={"company_ids": [str(ems.east.id)]}),
                   422, "company_not_a_child")
    # A record named under another company's path is not found.
    assert_problem(await client.post(f"/v1/companies/{ems.north.id}/{plural}/{source['id']}/copy", headers=admin,
                                     json={"company_ids": [str(ems.east.id)]}), 404, f"{noun}_not_found")


@pytest.mark.parametrize("kind", KINDS)
async def test_deleting_the_source_keeps_the_copies(client, factory, session, ems, kind):
    plural, noun, _, extra = kind
    admin = factory.headers(ems.betty)
    base = f"/v1/companies/{ems.west.id}/{plural}"
    source = (await client.post(base, headers=admin, json={"name": "Shared", **extra})).json()
    copied = (await client.post(f"{base}/{source['id']}/copy", headers=admin,
                                json={"company_ids": [str(ems.north.id)]})).json()["items"][0]
    assert (await client.delete(f"{base}/{source['id']}", headers=admin)).status_code == 204
    kept = await client.get(f"/v1/companies/{ems.north.id}/{plural}/{copied['id']}", headers=admin)
    assert kept.status_code == 200 and kept.json()["copied_from_id"] is None
    assert_problem(await client.get(f"{base}/{source['id']}", headers=admin), 404, f"{noun}_not_found")
    assert_problem(await client.delete(f"{base}/{source['id']}", headers=admin), 404, f"{noun}_not_found")


@pytest.mark.parametrize("kind", KINDS)
async def test_names_are_unique_per_company(client, factory, session, ems, kind):
    plural, noun, _, _ = kind
    admin = factory.headers(ems.betty)
    base = f"/v1/companies/{ems.west.id}/{plural}"
    first = (await client.post(base, headers=admin, json={"name": "Medicare"})).json()
    other = (await client.post(base, headers=admin, json={"name": "Medicaid"})).json()
    before = await snapshot(session)
    problem = assert_problem(await client.post(base, headers=admin, json={"name": "  MEDICARE "}), 409,
                             f"{noun}_name_taken")
    assert problem["field"] == "name"
    assert_problem(await client.patch(f"{base}/{other['id']}", headers=admin, json={"name": "medicare"}), 409,
                   f"{noun}_name_taken")
    assert await snapshot(session) == before
    # The same name in another company, and renaming a record to its own name, are fine.
    assert (await client.post(f"/v1/companies/{ems.north.id}/{plural}", headers=admin,
                              json={"name": "Medicare"})).status_code == 201
    assert (await client.patch(f"{base}/{first['id']}", headers=admin, json={"name": "Medicare"})).status_code == 200


async def test_optional_fields_are_cleared_with_null(client, factory, ems):
    admin = factory.headers(ems.betty)
    base = f"/v1/companies/{ems.west.id}/payers"
    payer = (await client.post(base, headers=admin, json={"name": "P", "payer_code": "X1", "address": "1 Rd"})).json()
    cleared = await client.patch(f"{base}/{payer['id']}", headers=admin, json={"payer_code": None})
    assert cleared.status_code == 200 and cleared.json()["payer_code"] is None and cleared.json()["address"] == "1 Rd"
    assert_problem(await client.patch(f"{base}/{payer['id']}", headers=admin, json={"name": None}), 422,
                   "field_required")


async def test_lists_page(client, factory, ems):
    admin = factory.headers(ems.betty)
    base = f"/v1/companies/{ems.west.id}/facilities"
    for n in range(5):
        assert (await client.post(base, headers=admin, json={"name": f"Station {n}"})).status_code == 201
    seen, cursor = [], None
    while True:
        page = (await client.get(base, headers=admin, params={"limit": 2, **({"cursor": cursor} if cursor else {})}))
        seen += [item["name"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"Station {n}" for n in range(5)]


async def test_concurrent_copies_never_duplicate(live):
    """Two copies of one payer at once (real commits): one copies, the other finds it there."""
    http, factory = live
    ems = await build_ems(factory)
    await factory.session.commit()
    admin = factory.headers(ems.betty)
    source = (await http.post(f"/v1/companies/{ems.west.id}/payers", headers=admin, json={"name": "Shared"})).json()
    copy = f"/v1/companies/{ems.west.id}/payers/{source['id']}/copy"
    body = {"company_ids": [str(ems.north.id), str(ems.south.id)]}
    first, second = await asyncio.gather(http.post(copy, headers=admin, json=body),
                                         http.post(copy, headers=admin, json=body))
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    statuses = sorted(item["status"] for response in (first, second) for item in response.json()["items"])
    assert statuses == ["already_present", "already_present", "copied", "copied"]
    for child in (ems.north, ems.south):
        listed = (await http.get(f"/v1/companies/{child.id}/payers", headers=admin)).json()["items"]
        assert [p["copied_from_id"] for p in listed] == [source["id"]]
