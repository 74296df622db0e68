"""Rule 3 (reach) against every bill surface: a child company reached through a role, directly, or as a company
administrator of its parent; a role taken away (membership or the role's assignment); a company of another tree
(never); rule 6 applying in reached companies while segregation is off there, and not when it is on. Then the
active company (X-Company-Id) on each surface."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from billing_api.authz.decisions import authorize
from billing_api.authz.permissions import Permission
from billing_api.authz.repository import reached_companies, users_reaching
from billing_api.models import (
    Bill,
    BillLine,
    Company,
    Coverage,
    Encounter,
    GroupCompanyAssignment,
    Patient,
    User,
    UserCompanyAssignment,
    UserKind,
    Visit,
)
from tests.factories import Factory
from tests.helpers import ADMIN, SUPPORT, assert_problem

CALLERS = [
    "medic",          # the provider whose bills these are (home: North)
    "north_staff",    # a plain user of North itself (home company)
    "role_user",      # West user in a group (role) that selects North
    "direct_user",    # West user with North assigned directly
    "parent_admin",   # company administrator of West
    "south_role",     # West user whose role selects South only
    "unassigned",     # West user with no assignment
    "far_admin",      # company administrator of another tree
    "far_smuggled",   # user of another tree with an assignment row naming North (written behind the API's back)
    "support",
]

# Who sees North's bills, by North's segregation state.
SEES = {
    False: {"medic", "north_staff", "role_user", "direct_user", "parent_admin", "support"},
    True: {"medic", "support"},
}
# Who reaches North (its patients, encounters and visits), whatever the segregation.
REACHES_NORTH = {"medic", "north_staff", "role_user", "direct_user", "parent_admin"}


@dataclass
class Tree:
    west: Company
    north: Company
    south: Company
    far: Company
    far_child: Company
    users: dict[str, User]
    role_group_id: uuid.UUID
    patient: Patient
    encounter: Encounter
    visit: Visit
    north_bill: Bill
    west_bill: Bill
    south_bill: Bill
    far_bill: Bill


async def _bill(factory: Factory, company: Company, provider: User, patient: Patient, *,
                encounter: Encounter | None = None, visit: Visit | None = None) -> Bill:
    bill = Bill(id=uuid.uuid4(), company_id=company.id, provider_id=provider.id, patient_id=patient.id,
                encounter_id=encounter.id if encounter else None, visit_id=visit.id if visit else None,
                coverage=Coverage.insured, service_date=date(2026, 11, 2), total_cents=5000, balance_cents=5000)
    factory.session.add(bill)
    await factory.session.flush()
    factory.session.add(BillLine(id=uuid.uuid4(), bill_id=bill.id, position=0, code_system="hcpcs", code="A0427",
                                 description="ALS emergency transport", units=1, fee_cents=5000))
    await factory.session.flush()
    return bill


async def _patient(factory: Factory, company: Company) -> Patient:
    patient = Patient(id=uuid.uuid4(), company_id=company.id, first_name="Pat", last_name=company.name)
    factory.session.add(patient)
    await factory.session.flush()
    return patient


async def build_tree(factory: Factory, *, segregated: bool = False) -> Tree:
    """The `tree` world: West EMS Transport with two children (North, South) and Far Transport with one, a user
    for every caller of `CALLERS`, North's patient, visit, encounter and bill, and a bill in each other company.

    The same company tree as the EMS world (tests/support/ems.py), kept apart on purpose: these tests assert exactly
    which companies each caller reaches and sees bills in (West, North and South), and the EMS world's two more
    children, its users and its names would change those answers."""
    session = factory.session
    west = await factory.company("West EMS Transport")
    north = await factory.company("West EMS North", parent=west)
    south = await factory.company("West EMS South", parent=west)
    far = await factory.company("Far Transport")
    far_child = await factory.company("Far Child", parent=far)
    u: dict[str, User] = {}
    u["medic"] = await factory.user(north, name="North Medic", provider=True)
    u["north_staff"] = await factory.user(north, name="North Staff")
    for name in ("role_user", "direct_user", "south_role", "unassigned"):
        u[name] = await factory.user(west, name=name)
    u["parent_admin"] = await factory.user(west, name="parent_admin", account_type=ADMIN)
    u["far_admin"] = await factory.user(far, name="far_admin", account_type=ADMIN)
    u["far_smuggled"] = await factory.user(far, name="far_smuggled")
    u["support"] = await factory.user(await factory.company("Vendor"), name="support", account_type=SUPPORT)
    west_provider = await factory.user(west, name="West Medic", provider=True)
    south_provider = await factory.user(south, name="South Medic", provider=True)
    far_provider = await factory.user(far_child, name="Far Medic", provider=True)

    north_role = await factory.group(west, [u["role_user"]], name="North billers", permissions=["bills:save"])
    south_role = await factory.group(west, [u["south_role"]], name="South billers")
    session.add_all([
        GroupCompanyAssignment(group_id=north_role.id, company_id=north.id),
        GroupCompanyAssignment(group_id=south_role.id, company_id=south.id),
        UserCompanyAssignment(user_id=u["direct_user"].id, company_id=north.id),
        # Not a child of the user's home company: grants nothing, whoever wrote it.
        UserCompanyAssignment(user_id=u["far_smuggled"].id, company_id=north.id),
    ])
    await session.flush()

    patient = await _patient(factory, north)
    visit = Visit(id=uuid.uuid4(), company_id=north.id, patient_id=patient.id, provider_id=u["medic"].id,
                  scheduled_at=datetime(2026, 11, 2, 15, tzinfo=UTC))
    session.add(visit)
    await session.flush()
    encounter = Encounter(id=uuid.uuid4(), company_id=north.id, patient_id=patient.id, provider_id=u["medic"].id,
                          visit_id=visit.id, service_date=date(2026, 11, 2))
    session.add(encounter)
    await session.flush()
    north_bill = await _bill(factory, north, u["medic"], patient, encounter=encounter, visit=visit)
    west_bill = await _bill(factory, west, west_provider, await _patient(factory, west))
    south_bill = await _bill(factory, south, south_provider, await _patient(factory, south))
    far_bill = await _bill(factory, far_child, far_provider, await _patient(factory, far_child))
    if segregated:
        north.billing_segregation_enabled_at = datetime.now(UTC)
        await session.flush()
    return Tree(west, north, south, far, far_child, u, north_role.id, patient, encounter, visit, north_bill,
                west_bill, south_bill, far_bill)


def ids(page) -> set[str]:
    return {item["id"] for item in page["items"]}


async def surfaces(client, tree: Tree, headers: dict) -> dict:
    return {
        "dashboard": await client.get("/v1/bills", headers=headers),
        "single": await client.get(f"/v1/bills/{tree.north_bill.id}", headers=headers),
        "encounter": await client.get(f"/v1/encounters/{tree.encounter.id}/bills", headers=headers),
        "chart": await client.get(f"/v1/patients/{tree.patient.id}/bills", headers=headers),
        "visits": await client.get("/v1/visits", headers=headers),
    }


def assert_sees_north(tree: Tree, responses: dict, sees: bool, reaches: bool) -> None:
    bill = str(tree.north_bill.id)
    assert responses["dashboard"].status_code == 200
    assert (bill in ids(responses["dashboard"].json())) is sees
    assert responses["single"].status_code == (200 if sees else 404)
    if not reaches:  # North's records themselves do not exist for the caller
        assert_problem(responses["encounter"], 404, "encounter_not_found")
        assert_problem(responses["chart"], 404, "patient_not_found")
        assert str(tree.visit.id) not in ids(responses["visits"].json())
        return
    assert [b["id"] for b in responses["encounter"].json()] == ([bill] if sees else [])
    assert ids(responses["chart"].json()) == ({bill} if sees else set())
    visit = next(v for v in responses["visits"].json()["items"] if v["id"] == str(tree.visit.id))
    assert [b["id"] for b in visit["bills"]] == ([bill] if sees else [])


@pytest.mark.parametrize("segregated", [pytest.param(False, id="segregation-off"),
                                        pytest.param(True, id="segregation-on")])
@pytest.mark.parametrize("caller", CALLERS)
async def test_reach_on_every_bill_surface(client, factory, session, caller, segregated):
    tree = await build_tree(factory, segregated=segregated)
    user = tree.users[caller]
    responses = await surfaces(client, tree, factory.headers(user))
    sees = caller in SEES[segregated]
    assert_sees_north(tree, responses, sees, caller in REACHES_NORTH or caller == "support")
    # The decision (explainable) and the scope (in the SQL) agree.
    decision = await authorize(session, user.id, Permission.BILLS_VIEW, tree.users["medic"].id, tree.north.id)
    assert decision.allowed is sees
    # Never a bill of another tree (support excepted), never a sibling child the caller does not reach.
    dashboard = ids(responses["dashboard"].json())
    assert (str(tree.far_bill.id) in dashboard) is (caller in ("support", "far_admin"))
    assert (str(tree.south_bill.id) in dashboard) is (caller in ("south_role", "parent_admin", "support"))


@pytest.mark.parametrize("caller", ["role_user", "direct_user", "parent_admin"])
async def test_role_permissions_apply_in_reached_children_while_segregation_is_off(client, factory, caller):
    tree = await build_tree(factory)
    headers = factory.headers(tree.users[caller])
    edit = await client.patch(f"/v1/bills/{tree.north_bill.id}", headers=headers, json={"coverage": "private"})
    # Only the North billers' role holds bills:save; the others may look but not change.
    if caller == "role_user":
        assert edit.status_code == 200, edit.text
    else:
        assert_problem(edit, 403, "permission_denied")


async def test_a_role_taken_away_ends_access_on_the_next_request(client, factory):
    tree = await build_tree(factory)
    admin, role_user = factory.headers(tree.users["parent_admin"]), factory.headers(tree.users["role_user"])
    single = f"/v1/bills/{tree.north_bill.id}"
    assert (await client.get(single, headers=role_user)).status_code == 200

    # The user leaves the group (role).
    left = await client.put(f"/v1/groups/{tree.role_group_id}/members", headers=admin, json={"user_ids": []})
    assert left.status_code == 200, left.text
    assert_sees_north(tree, await surfaces(client, tree, role_user), sees=False, reaches=False)
    rejoined = await client.put(f"/v1/groups/{tree.role_group_id}/members", headers=admin,
                                json={"user_ids": [str(tree.users["role_user"].id)]})
    assert rejoined.status_code == 200
    assert (await client.get(single, headers=role_user)).status_code == 200

    # The role no longer selects the company.
    role = f"/v1/groups/{tree.role_group_id}/billing-customer-assignments"
    cleared = await client.put(role, headers=admin, json={"company_ids": []})
    assert cleared.status_code == 200 and not any(i["assigned"] for i in cleared.json()["items"])
    assert_sees_north(tree, await surfaces(client, tree, role_user), sees=False, reaches=False)
    assert [c["id"] for c in (await client.get("/v1/me/companies", headers=role_user)).json()["items"]] == [
        str(tree.west.id)]


async def test_a_direct_assignment_taken_away_ends_access_on_the_next_request(client, factory):
    tree = await build_tree(factory)
    admin, direct = factory.headers(tree.users["parent_admin"]), factory.headers(tree.users["direct_user"])
    assert (await client.get(f"/v1/bills/{tree.north_bill.id}", headers=direct)).status_code == 200
    path = f"/v1/users/{tree.users['direct_user'].id}/billing-customer-assignments"
    saved = await client.put(path, headers=admin, json={"company_ids": []})
    assert saved.status_code == 200, saved.text
    assert_sees_north(tree, await surfaces(client, tree, direct), sees=False, reaches=False)


async def test_a_company_admin_demoted_loses_the_children(client, factory, session):
    tree = await build_tree(factory)
    admin = tree.users["parent_admin"]
    other_admin = await factory.user(tree.west, account_type=ADMIN)
    demoted = await client.patch(f"/v1/users/{admin.id}", headers=factory.headers(other_admin),
                                 json={"account_type": "standard"})
    assert demoted.status_code == 200, demoted.text
    assert_sees_north(tree, await surfaces(client, tree, factory.headers(admin)), sees=False, reaches=False)


async def test_reach_and_its_inverse_agree(session, factory):
    """users_reaching(c) is exactly the users whose reached_companies holds c (the access list and the
    segregation preview read the former, the bill scope the latter)."""
    tree = await build_tree(factory)
    invited = await factory.user(tree.west, name="invited", kind=UserKind.invited)
    session.add(UserCompanyAssignment(user_id=invited.id, company_id=tree.north.id))
    await session.flush()
    companies = [tree.west, tree.north, tree.south, tree.far, tree.far_child]
    users = [*tree.users.values(), invited]
    reached = {user.id: set((await session.execute(reached_companies(user.id))).scalars()) for user in users}
    assert reached[tree.users["role_user"].id] == {tree.west.id, tree.north.id}
    assert reached[tree.users["parent_admin"].id] == {tree.west.id, tree.north.id, tree.south.id}
    assert reached[tree.users["far_smuggled"].id] == {tree.far.id}
    assert reached[invited.id] == {tree.west.id, tree.north.id}
    for company in companies:
        for members_only in (False, True):
            reaching = set((await session.execute(users_reaching(company.id, members_only=members_only)))
                           .scalars())
            expected = {user.id for user in users if company.id in reached[user.id]
                        and (not members_only or user.kind == UserKind.member)}
            assert reaching & {user.id for user in users} == expected, (company.name, members_only)


async def test_the_access_list_names_everyone_reach_lets_in(client, factory):
    tree = await build_tree(factory)
    medic = tree.users["medic"]
    page = await client.get(f"/v1/providers/{medic.id}/access", headers=factory.headers(medic),
                            params={"limit": 200})
    assert page.status_code == 200, page.text
    listed = {item["user_id"]: {r["rule"] for r in item["reasons"]} for item in page.json()["items"]}
    for caller in ("north_staff", "role_user", "direct_user", "parent_admin"):
        assert listed.get(str(tree.users[caller].id)) == {"company_wide"}, caller
    for caller in ("south_role", "unassigned", "far_admin", "far_smuggled"):
        assert str(tree.users[caller].id) not in listed, caller


# The active company


async def test_the_active_company_filters_every_surface(client, factory):
    tree = await build_tree(factory)
    admin = factory.headers(tree.users["parent_admin"])
    everything = ids((await client.get("/v1/bills", headers=admin)).json())
    assert {str(tree.west_bill.id), str(tree.north_bill.id), str(tree.south_bill.id)} <= everything

    north = {**admin, "X-Company-Id": str(tree.north.id)}
    west = {**admin, "X-Company-Id": str(tree.west.id)}
    assert ids((await client.get("/v1/bills", headers=north)).json()) == {str(tree.north_bill.id)}
    assert ids((await client.get("/v1/bills", headers=west)).json()) == {str(tree.west_bill.id)}
    in_north = await surfaces(client, tree, north)
    assert_sees_north(tree, in_north, sees=True, reaches=True)
    assert {v["company_id"] for v in in_north["visits"].json()["items"]} == {str(tree.north.id)}
    # A record of another company than the active one is not found on the surfaces that name one.
    in_west = await surfaces(client, tree, west)
    assert_problem(in_west["encounter"], 404, "encounter_not_found")
    assert_problem(in_west["chart"], 404, "patient_not_found")
    assert str(tree.visit.id) not in ids(in_west["visits"].json())
    # Patients.
    assert {p["company_id"] for p in (await client.get("/v1/patients", headers=north)).json()["items"]} == {
        str(tree.north.id)}
    assert (await client.get("/v1/patients", headers=north, params={"company_id": str(tree.west.id)})).json()[
        "items"] == []

    # The context switcher marks the active company.
    switcher = (await client.get("/v1/me/companies", headers=north)).json()
    assert switcher["active_company_id"] == str(tree.north.id)
    assert [(c["id"], c["is_active"]) for c in switcher["items"]] == [
        (str(tree.west.id), False), (str(tree.north.id), True), (str(tree.south.id), False)]
    assert (await client.get("/v1/me/companies", headers=admin)).json()["active_company_id"] is None


@pytest.mark.parametrize("path", ["/v1/bills", "/v1/visits", "/v1/patients", "/v1/me/companies",
                                  "/v1/patients/{patient}/bills", "/v1/encounters/{encounter}/bills"])
async def test_naming_a_company_not_reached_is_not_found(client, factory, path):
    tree = await build_tree(factory)
    path = path.format(patient=tree.patient.id, encounter=tree.encounter.id)
    role_user = factory.headers(tree.users["role_user"])
    for company_id in (tree.south.id, tree.far.id, tree.far_child.id, uuid.uuid4()):
        problem = assert_problem(await client.get(path, headers={**role_user, "X-Company-Id": str(company_id)}),
                                 404, "active_company_not_found")
        assert problem["header"] == "X-Company-Id"
    for malformed in ("north", "12", "", str(tree.north.id) + "0"):
        response = await client.get(path, headers={**role_user, "X-Company-Id": malformed})
        problem = assert_problem(response, 422, "validation_error")
        assert problem["errors"][0]["location"] == ["header", "X-Company-Id"]
    assert (await client.get(path, headers={**role_user, "X-Company-Id": str(tree.north.id)})).status_code == 200


async def test_an_invited_user_naming_their_home_company_lists_none_of_its_visits_or_patients(client, factory):
    """Invited users work through the list entries that name them, never by reach: naming their home company
    as the active one (the header's check admits it) narrows nothing into view."""
    tree = await build_tree(factory)
    invited = await factory.user(tree.north, name="invited", kind=UserKind.invited)
    headers = {**factory.headers(invited), "X-Company-Id": str(tree.north.id)}
    for path in ("/v1/visits", "/v1/patients"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 200 and response.json()["items"] == [], path
        assert (await client.get(path, headers=factory.headers(invited))).json()["items"] == [], path


async def test_support_may_name_any_company(client, factory):
    tree = await build_tree(factory)
    support = {**factory.headers(tree.users["support"]), "X-Company-Id": str(tree.far_child.id)}
    assert ids((await client.get("/v1/bills", headers=support)).json()) == {str(tree.far_bill.id)}
    assert_problem(await client.get("/v1/bills", headers={**support, "X-Company-Id": str(uuid.uuid4())}), 404,
                   "active_company_not_found")


async def test_reach_reads_the_tree_not_stale_rows(session, factory):
    """An assignment row whose company is no longer a child of the home company grants nothing."""
    tree = await build_tree(factory)
    role_user = tree.users["role_user"]
    north = (await session.execute(select(Company).where(Company.id == tree.north.id))).scalar_one()
    north.parent_id = None
    await session.flush()
    assert set((await session.execute(reached_companies(role_user.id))).scalars()) == {tree.west.id}
    assert set((await session.execute(reached_companies(tree.users["direct_user"].id))).scalars()) == {
        tree.west.id}


async def test_assignment_changes_hold_on_the_next_committed_request(live):
    """On real commits: a role's child taken away, then a direct one, each ends access on the next request."""
    http, factory = live
    tree = await build_tree(factory)
    await factory.session.commit()
    admin = factory.headers(tree.users["parent_admin"])
    single = f"/v1/bills/{tree.north_bill.id}"
    for caller, revoke in (
        ("role_user", (f"/v1/groups/{tree.role_group_id}/billing-customer-assignments", {"company_ids": []})),
        ("direct_user", (f"/v1/users/{tree.users['direct_user'].id}/billing-customer-assignments",
                         {"company_ids": []})),
    ):
        headers = factory.headers(tree.users[caller])
        assert (await http.get(single, headers=headers)).status_code == 200
        assert (await http.put(revoke[0], headers=admin, json=revoke[1])).status_code == 200
        assert_problem(await http.get(single, headers=headers), 404, "bill_not_found")
        assert str(tree.north_bill.id) not in ids((await http.get("/v1/bills", headers=headers)).json())
