"""The EMS seed's story (ems-billing-customer-assignments.txt), played out exactly through the API.

West EMS Transport is the parent of four child companies. Barney is a standard user with the Biller role, which
selects two of the children: his context switcher shows those two. He can be given a third child directly, but the
role's children cannot be taken from him in his user account. He cannot create or copy payers or facilities at
the parent level, whatever his role holds. Betty is a company administrator: she sees all four children, none can
be unchecked, and she creates a payer at the parent level and copies it down to chosen children.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from billing_api.demo import DEMO_PASSWORD, load_demo
from billing_api.models import Company
from tests.helpers import assert_problem, count
from tests.support.ems import build_ems, snapshot


def ids(*companies) -> list[str]:
    return [str(company.id) for company in companies]


async def switcher(client, headers, **kwargs) -> list[str]:
    response = await client.get("/v1/me/companies", headers=headers, **kwargs)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def by_company(assignments: dict) -> dict[str, dict]:
    return {item["company_id"]: item for item in assignments["items"]}


async def test_the_seed_story(client, factory, session):
    ems = await build_ems(factory)
    betty, barney = factory.headers(ems.betty), factory.headers(ems.barney)
    role = f"/v1/groups/{ems.biller.id}/billing-customer-assignments"
    barneys = f"/v1/users/{ems.barney.id}/billing-customer-assignments"

    # Before the role selects anything, Barney reaches his home company only.
    assert await switcher(client, barney) == ids(ems.west)

    # User Groups > Biller: "Billing Customer assignments" has only two children selected.
    selected = await client.put(role, headers=betty, json={"company_ids": ids(ems.north, ems.south)})
    assert selected.status_code == 200, selected.text
    assert [(i["company_name"], i["assigned"]) for i in selected.json()["items"]] == [
        ("West EMS East", False), ("West EMS Mountain", False), ("West EMS North", True), ("West EMS South", True)]
    assert (await client.get(role, headers=barney)).json() == selected.json()

    # Barney's context switcher: his home company and exactly the two children of the Biller role.
    assert await switcher(client, barney) == ids(ems.west, ems.north, ems.south)
    me = (await client.get("/v1/me", headers=barney)).json()
    assert [c["id"] for c in me["reachable_companies"]] == ids(ems.west, ems.north, ems.south)

    # His user account: the role's children are checked and cannot be unchecked; the others are free.
    own = (await client.get(barneys, headers=barney)).json()
    assert own["company_id"] == str(ems.west.id)
    items = by_company(own)
    assert list(items) == ids(*ems.children)
    for child in (ems.north, ems.south):
        assert items[str(child.id)]["reached"] is True and items[str(child.id)]["removable"] is False
        assert items[str(child.id)]["sources"] == [
            {"type": "role", "group_id": str(ems.biller.id), "group_name": "Biller"}]
    for child in (ems.east, ems.mountain):
        assert items[str(child.id)] | {"company_name": None} == {
            "company_id": str(child.id), "company_name": None, "reached": False, "sources": [], "removable": True}

    # A third child can be added to him directly (by Betty; Barney cannot change his own account).
    assert_problem(await client.put(barneys, headers=barney, json={"company_ids": ids(ems.north, ems.south,
                                                                                      ems.east)}),
                   403, "users_edit_forbidden")
    added = await client.put(barneys, headers=betty, json={"company_ids": ids(ems.north, ems.south, ems.east)})
    assert added.status_code == 200, added.text
    east = by_company(added.json())[str(ems.east.id)]
    assert east["reached"] is True and east["sources"] == [{"type": "direct", "group_id": None,
                                                            "group_name": None}]
    assert east["removable"] is True
    assert await switcher(client, barney) == ids(ems.west, ems.east, ems.north, ems.south)

    # ... but a child the role gives cannot be removed: 422 naming the company and the role, nothing changed.
    before = await snapshot(session)
    refused = assert_problem(await client.put(barneys, headers=betty,
                                              json={"company_ids": ids(ems.south, ems.east)}),
                             422, "assignment_given_by_role")
    assert refused["company_id"] == str(ems.north.id) and refused["company_name"] == "West EMS North"
    assert refused["group_id"] == str(ems.biller.id) and refused["group_name"] == "Biller"
    assert "West EMS North" in refused["detail"] and "Biller" in refused["detail"]
    assert await snapshot(session) == before
    assert (await client.get(barneys, headers=barney)).json() == added.json()
    # Leaving the direct one out is fine: he picks freely among what no role gives.
    dropped = await client.put(barneys, headers=betty, json={"company_ids": ids(ems.north, ems.south)})
    assert dropped.status_code == 200 and by_company(dropped.json())[str(ems.east.id)]["reached"] is False
    assert await switcher(client, barney) == ids(ems.west, ems.north, ems.south)

    # Barney cannot create payers or facilities at the parent level, nor copy them down, although his role
    # holds payers:manage and facilities:manage. He does his job in each of his two children.
    for kind in ("payers", "facilities"):
        assert_problem(await client.post(f"/v1/companies/{ems.west.id}/{kind}", headers=barney,
                                         json={"name": "Barney's own"}), 403, "company_admin_required")
        in_child = await client.post(f"/v1/companies/{ems.north.id}/{kind}", headers=barney,
                                     json={"name": f"North {kind}"})
        assert in_child.status_code == 201, in_child.text
    assert await count(session, "payer", "company_id = :c", c=ems.west.id) == 0

    # Betty, a company administrator: the context switcher shows all four children...
    assert await switcher(client, betty) == ids(ems.west, *ems.children)
    bettys = f"/v1/users/{ems.betty.id}/billing-customer-assignments"
    for item in (await client.get(bettys, headers=betty)).json()["items"]:
        assert item["reached"] is True and item["removable"] is False
        assert {"type": "company_admin", "group_id": None, "group_name": None} in item["sources"]
    # ... and none can be unchecked.
    before = await snapshot(session)
    unchecked = assert_problem(await client.put(bettys, headers=betty,
                                                json={"company_ids": ids(ems.north, ems.south, ems.east)}),
                               422, "assignment_given_by_company_admin")
    assert unchecked["company_id"] == str(ems.mountain.id)
    assert await snapshot(session) == before
    assert (await client.put(bettys, headers=betty, json={"company_ids": ids(*ems.children)})).status_code == 200

    # Betty creates a payer at the parent level and copies it down to chosen children.
    payer = await client.post(f"/v1/companies/{ems.west.id}/payers", headers=betty,
                              json={"name": "Medicare Part B", "payer_code": "04412"})
    assert payer.status_code == 201, payer.text
    payer_id = payer.json()["id"]
    copy = f"/v1/companies/{ems.west.id}/payers/{payer_id}/copy"
    first = await client.post(copy, headers=betty, json={"company_ids": ids(ems.north, ems.south)})
    assert first.status_code == 200, first.text
    assert [(i["company_id"], i["status"]) for i in first.json()["items"]] == [
        (str(ems.north.id), "copied"), (str(ems.south.id), "copied")]
    # Idempotent: a second copy reports the children that have it, and duplicates nothing.
    second = await client.post(copy, headers=betty, json={"company_ids": ids(ems.north, ems.south, ems.east)})
    assert second.status_code == 200, second.text
    assert [(i["company_id"], i["status"]) for i in second.json()["items"]] == [
        (str(ems.north.id), "already_present"), (str(ems.south.id), "already_present"), (str(ems.east.id), "copied")]
    assert [i["id"] for i in second.json()["items"][:2]] == [i["id"] for i in first.json()["items"]]
    for child in (ems.north, ems.south, ems.east):
        assert await count(session, "payer", "company_id = :c AND copied_from_id = :p", c=child.id,
                           p=payer.json()["id"]) == 1
    assert await count(session, "payer", "company_id = :c", c=ems.mountain.id) == 0
    # Barney works with the copy in his children.
    north_payers = (await client.get(f"/v1/companies/{ems.north.id}/payers", headers=barney)).json()["items"]
    copied = next(p for p in north_payers if p["name"] == "Medicare Part B")
    assert copied["copied_from_id"] == payer_id and copied["payer_code"] == "04412"
    # ... but cannot copy the parent's payer himself.
    assert_problem(await client.post(copy, headers=barney, json={"company_ids": ids(ems.mountain)}), 403,
                   "company_admin_required")

    # The same for facilities.
    facility = await client.post(f"/v1/companies/{ems.west.id}/facilities", headers=betty,
                                 json={"name": "Station 1", "npi": "1234567893"})
    assert facility.status_code == 201, facility.text
    facility_copy = f"/v1/companies/{ems.west.id}/facilities/{facility.json()['id']}/copy"
    assert_problem(await client.post(facility_copy, headers=barney, json={"company_ids": ids(ems.north)}), 403,
                   "company_admin_required")
    copied = await client.post(facility_copy, headers=betty, json={"company_ids": ids(ems.north)})
    assert [i["status"] for i in copied.json()["items"]] == ["copied"]

    # Every change is in the audit trail.
    for action, target in (("group.billing_customer_assignments_set", ems.biller.id),
                           ("user.billing_customer_assignments_set", ems.barney.id),
                           ("payer.created", payer_id), ("payer.copied", payer_id),
                           ("facility.created", facility.json()["id"]), ("facility.copied", facility.json()["id"])):
        assert await count(session, "audit_event", "action = :a AND target_id = :t", a=action, t=target) >= 1, action
    # (Betty's save changed nothing, so it recorded nothing.)
    assert await count(session, "audit_event", "action = 'user.billing_customer_assignments_set' AND target_id = :t",
                       t=ems.betty.id) == 0


async def test_the_demo_data_tells_the_same_story(client, session, settings):
    await load_demo(session, settings)
    await load_demo(session, settings)  # idempotent

    async def login(username):
        token = await client.post("/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD})
        assert token.status_code == 200, token.text
        return {"Authorization": f"Bearer {token.json()['access_token']}"}

    names = {c.id: c.name for c in (await session.execute(select(Company))).scalars()}
    barney, betty = await login("barney"), await login("betty")
    assert [names[uuid.UUID(i)] for i in await switcher(client, barney)] == [
        "West EMS Transport", "West EMS North", "West EMS South"]
    assert [names[uuid.UUID(i)] for i in await switcher(client, betty)] == [
        "West EMS Transport", "West EMS East", "West EMS Mountain", "West EMS North", "West EMS South"]
    west = next(i for i, n in names.items() if n == "West EMS Transport")
    payers = (await client.get(f"/v1/companies/{west}/payers", headers=betty)).json()["items"]
    assert {"Medicare Part B", "Colorado Medicaid"} <= {p["name"] for p in payers}
    # Barney's dashboard shows the bills of his two children, never those of the other two.
    bills = (await client.get("/v1/bills", headers=barney)).json()["items"]
    assert bills and {names[uuid.UUID(b["company_id"])] for b in bills} == {
        "West EMS North", "West EMS South"}
    betty_bills = (await client.get("/v1/bills", headers=betty)).json()["items"]
    assert {names[uuid.UUID(b["company_id"])] for b in betty_bills} == {
        "West EMS North", "West EMS South", "West EMS East", "West EMS Mountain"}
