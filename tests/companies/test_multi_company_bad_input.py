"""Bad input on the multi-company endpoints and the company tree: cycles, a child given children, unknown
companies, companies outside the tree, copying to a non-child, duplicates, wrong types, unknown fields, malformed
JSON. Each is a 4xx problem+json with a code, and nothing is written."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from billing_api.models import GroupCompanyAssignment, UserCompanyAssignment, UserStatus
from tests.helpers import ADMIN, SUPPORT, assert_problem, count
from tests.support.ems import build_ems, snapshot

NUL = "a\x00b"


@pytest.fixture
async def ems(factory, client):
    """The EMS world plus Betty's headers, a payer and a facility at the parent level (made over HTTP), and every id
    a path or body names (`ids`, filled in by `fill`)."""
    world = await build_ems(factory)
    world.headers = factory.headers(world.betty)
    payer = await client.post(f"/v1/companies/{world.west.id}/payers", headers=world.headers, json={"name": "P"})
    facility = await client.post(f"/v1/companies/{world.west.id}/facilities", headers=world.headers,
                                 json={"name": "F"})
    world.ids = {"west": str(world.west.id), "north": str(world.north.id), "south": str(world.south.id),
                 "east": str(world.east.id), "far": str(world.far.id), "far_child": str(world.far_child.id),
                 "group": str(world.biller.id), "barney": str(world.barney.id), "betty": str(world.betty.id),
                 "payer": payer.json()["id"], "facility": facility.json()["id"], "unknown": str(uuid.UUID(int=7))}
    return world


def fill(value, ids):
    if isinstance(value, str):
        for key, id_ in ids.items():
            value = value.replace("{" + key + "}", id_)
        return value
    if isinstance(value, list):
        return [fill(item, ids) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, ids) for key, item in value.items()}
    return value


async def refused(client, session, ems, method, path, status, code, **kwargs):
    if "json" in kwargs:
        kwargs["json"] = fill(kwargs["json"], ems.ids)
    headers = {**ems.headers, **kwargs.pop("headers", {})}
    before = await snapshot(session)
    response = await client.request(method, fill(path, ems.ids), headers=headers, **kwargs)
    problem = assert_problem(response, status, code)
    assert await snapshot(session) == before, "a refused request wrote something"
    return problem


ENDPOINTS = {
    "group_assignments": ("PUT", "/v1/groups/{group}/billing-customer-assignments", {"company_ids": ["{north}"]}),
    "user_assignments": ("PUT", "/v1/users/{barney}/billing-customer-assignments", {"company_ids": ["{north}"]}),
    "create_payer": ("POST", "/v1/companies/{west}/payers", {"name": "New payer", "payer_code": "A-1"}),
    "update_payer": ("PATCH", "/v1/companies/{west}/payers/{payer}", {"name": "Renamed"}),
    "copy_payer": ("POST", "/v1/companies/{west}/payers/{payer}/copy", {"company_ids": ["{north}"]}),
    "create_facility": ("POST", "/v1/companies/{west}/facilities", {"name": "New facility", "npi": "1234567893"}),
    "update_facility": ("PATCH", "/v1/companies/{west}/facilities/{facility}", {"name": "Renamed"}),
    "copy_facility": ("POST", "/v1/companies/{west}/facilities/{facility}/copy", {"company_ids": ["{north}"]}),
    "update_company": ("PATCH", "/v1/companies/{north}", {"parent_id": "{west}"}),
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
async def test_the_valid_body_of_each_endpoint_is_accepted(client, ems, endpoint):
    method, path, body = ENDPOINTS[endpoint]
    response = await client.request(method, fill(path, ems.ids), headers=ems.headers, json=fill(body, ems.ids))
    assert response.status_code in (200, 201), response.text


def case(endpoint, case_id, body=None, code="validation_error", status=422, **changes):
    method, path, valid = ENDPOINTS[endpoint]
    payload = body if body is not None else {**valid, **changes}
    return pytest.param(method, path, payload, status, code, id=f"{endpoint}-{case_id}")


ID_LISTS = ["group_assignments", "user_assignments", "copy_payer", "copy_facility"]

BAD_BODIES = [
    *(c for endpoint in ID_LISTS for c in (
        case(endpoint, "unknown-company", company_ids=["{unknown}"], code="company_not_a_child"),
        case(endpoint, "other-tree", company_ids=["{far_child}"], code="company_not_a_child"),
        case(endpoint, "other-parent", company_ids=["{far}"], code="company_not_a_child"),
        case(endpoint, "the-parent-itself", company_ids=["{west}"], code="company_not_a_child"),
        case(endpoint, "one-bad-among-good", company_ids=["{north}", "{far_child}"], code="company_not_a_child"),
        case(endpoint, "duplicates", company_ids=["{north}", "{north}"], code="duplicate_company"),
        case(endpoint, "ids-string", company_ids="{north}"),
        case(endpoint, "ids-number", company_ids=[1]),
        case(endpoint, "ids-false", company_ids=[False]),
        case(endpoint, "ids-numeric-string", company_ids=["12"]),
        case(endpoint, "ids-object", company_ids={"id": "{north}"}),
        case(endpoint, "ids-null", company_ids=None),
        case(endpoint, "ids-nested", company_ids=[["{north}"]]),
        case(endpoint, "missing-field", body={}),
        case(endpoint, "unknown-field", replace=True),
        case(endpoint, "list-body", body=["{north}"]),
        case(endpoint, "string-body", body="{north}"),
    )),
    case("copy_payer", "empty-list", company_ids=[]),
    case("copy_facility", "empty-list", company_ids=[]),
    case("create_payer", "name-number", name=5),
    case("create_payer", "name-empty", name=" "),
    case("create_payer", "name-too-long", name="x" * 201),
    case("create_payer", "name-missing", body={"payer_code": "A"}),
    case("create_payer", "code-with-space", payer_code="A 1"),
    case("create_payer", "code-number", payer_code=12),
    case("create_payer", "address-list", address=["1 Rd"]),
    case("create_payer", "unknown-field", copied_from_id="{payer}"),
    case("create_payer", "company-field", company_id="{north}"),
    case("create_payer", "nul-character", name=NUL, code="invalid_value"),
    case("create_payer", "duplicate-name", name="p", status=409, code="payer_name_taken"),
    case("update_payer", "name-null", body={"name": None}, code="field_required"),
    case("update_payer", "name-bool", name=True),
    case("update_payer", "unknown-field", level="parent"),
    case("update_payer", "list-body", body=[{"name": "x"}]),
    case("create_facility", "npi-short", npi="123"),
    case("create_facility", "npi-letters", npi="12345678AB"),
    case("create_facility", "npi-number", npi=1234567893),
    case("create_facility", "name-object", name={"n": 1}),
    case("create_facility", "unknown-field", payer_code="A"),
    case("create_facility", "duplicate-name", name="F", status=409, code="facility_name_taken"),
    case("update_facility", "name-null", body={"name": None}, code="field_required"),
    case("update_facility", "npi-short", npi="1"),
    # The company tree.
    case("update_company", "own-parent", body={"parent_id": "{north}"}, code="company_cycle"),
    case("update_company", "child-as-parent", body={"parent_id": "{south}"}, code="company_depth_exceeded"),
    case("update_company", "unknown-parent", body={"parent_id": "{unknown}"}, status=404, code="company_not_found"),
    case("update_company", "other-tree-parent", body={"parent_id": "{far}"}, status=404, code="company_not_found"),
    case("update_company", "parent-number", body={"parent_id": 5}),
    case("update_company", "parent-string", body={"parent_id": "west"}),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), BAD_BODIES)
async def test_bad_bodies_are_refused_without_writing(client, session, ems, method, path, body, status, code):
    problem = await refused(client, session, ems, method, path, status, code, json=body)
    if code == "validation_error":
        assert problem["errors"] and all(error["location"][0] == "body" for error in problem["errors"])
    if code in ("company_not_a_child", "duplicate_company"):
        assert uuid.UUID(problem["company_id"])  # names the company


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize(("raw", "status", "code"), [
    pytest.param(b'{"company_ids": [', 400, "malformed_body", id="truncated-json"),
    pytest.param(b"{'name': 'single quotes'}", 400, "malformed_body", id="not-json"),
    pytest.param(b'{"name": "x"} trailing', 400, "malformed_body", id="trailing-garbage"),
    pytest.param(b'{"name": "\xff\xfe"}', 400, "malformed_body", id="not-utf8"),
    pytest.param(b"", 422, "validation_error", id="empty-body"),
    pytest.param(b"null", 422, "validation_error", id="null-body"),
])
async def test_malformed_and_empty_bodies(client, session, ems, endpoint, raw, status, code):
    method, path, _ = ENDPOINTS[endpoint]
    await refused(client, session, ems, method, path, status, code, content=raw,
                  headers={"Content-Type": "application/json"})


BAD_PATHS = [
    ("GET", "/v1/groups/abc/billing-customer-assignments"),
    ("PUT", "/v1/groups/1/billing-customer-assignments"),
    ("GET", "/v1/users/false/billing-customer-assignments"),
    ("PUT", "/v1/users/abc/billing-customer-assignments"),
    ("GET", "/v1/companies/abc/payers"),
    ("POST", "/v1/companies/abc/payers"),
    ("GET", "/v1/companies/{west}/payers/abc"),
    ("PATCH", "/v1/companies/{west}/payers/1"),
    ("DELETE", "/v1/companies/{west}/payers/true"),
    ("POST", "/v1/companies/{west}/payers/abc/copy"),
    ("GET", "/v1/companies/abc/facilities"),
    ("DELETE", "/v1/companies/{west}/facilities/abc"),
    ("POST", "/v1/companies/{west}/facilities/abc/copy"),
]


@pytest.mark.parametrize(("method", "path"), BAD_PATHS, ids=[f"{m}-{p}" for m, p in BAD_PATHS])
async def test_path_ids_that_are_not_uuids(client, session, ems, method, path):
    body = {"json": {"name": "x"}} if method in ("PATCH", "PUT", "POST") else {}
    problem = await refused(client, session, ems, method, path, 422, "validation_error", **body)
    assert any(error["location"][0] == "path" for error in problem["errors"])


IDS = {"company_ids": ["{north}"]}
NAME = {"name": "x"}
UNKNOWN_TARGETS = [
    pytest.param("GET", "/v1/groups/{unknown}/billing-customer-assignments", None, "group_not_found", id="group-get"),
    pytest.param("PUT", "/v1/groups/{unknown}/billing-customer-assignments", IDS, "group_not_found", id="group-put"),
    pytest.param("GET", "/v1/users/{unknown}/billing-customer-assignments", None, "user_not_found", id="user-get"),
    pytest.param("PUT", "/v1/users/{unknown}/billing-customer-assignments", IDS, "user_not_found", id="user-put"),
    pytest.param("GET", "/v1/companies/{unknown}/payers", None, "company_not_found", id="payers-company"),
    pytest.param("POST", "/v1/companies/{far}/payers", NAME, "company_not_found", id="payers-other-tree"),
    pytest.param("PATCH", "/v1/companies/{west}/payers/{unknown}", NAME, "payer_not_found", id="payer-unknown"),
    pytest.param("PATCH", "/v1/companies/{north}/payers/{payer}", NAME, "payer_not_found", id="payer-wrong-company"),
    pytest.param("DELETE", "/v1/companies/{west}/facilities/{unknown}", None, "facility_not_found", id="facility"),
    pytest.param("POST", "/v1/companies/{west}/facilities/{payer}/copy", IDS, "facility_not_found",
                 id="payer-as-facility"),
]


@pytest.mark.parametrize(("method", "path", "body", "code"), UNKNOWN_TARGETS)
async def test_unknown_targets_are_not_found(client, session, ems, method, path, body, code):
    await refused(client, session, ems, method, path, 404, code, **({"json": body} if body else {}))


# The company tree, beyond single bad fields.


async def test_a_parent_cannot_go_under_its_own_child(client, session, ems):
    problem = await refused(client, session, ems, "PATCH", "/v1/companies/{west}", 422, "company_cycle",
                            json={"parent_id": "{north}"})
    assert problem["field"] == "parent_id"


async def test_a_child_cannot_be_given_children(client, session, factory, ems):
    await refused(client, session, ems, "POST", "/v1/companies", 422, "company_depth_exceeded",
                  json={"name": "Grandchild", "parent_id": "{north}"})
    await refused(client, session, ems, "PATCH", "/v1/companies/{east}", 422, "company_depth_exceeded",
                  json={"parent_id": "{north}"})


async def test_the_database_keeps_two_levels_whoever_writes(session, ems):
    """The trigger behind the service: every other path (CLI, scripts, races) meets it."""
    for statement, params in (
        ("UPDATE company SET parent_id = :child WHERE id = :other", {"child": ems.north.id, "other": ems.east.id}),
        ("UPDATE company SET parent_id = :child WHERE id = :parent", {"child": ems.north.id, "parent": ems.west.id}),
        ("UPDATE company SET parent_id = :other WHERE id = :parent", {"other": ems.far.id, "parent": ems.west.id}),
        ("INSERT INTO company (id, name, parent_id) VALUES (gen_random_uuid(), 'x', :child)",
         {"child": ems.north.id}),
        ("UPDATE company SET parent_id = id WHERE id = :parent", {"parent": ems.west.id}),
    ):
        nested = await session.begin_nested()
        with pytest.raises(IntegrityError):
            await session.execute(text(statement), params)
        await nested.rollback()
    assert await count(session, "company", "parent_id = :p", p=ems.west.id) == 4


async def test_detaching_a_child_drops_its_assignments(client, session, factory, ems):
    session.add_all([GroupCompanyAssignment(group_id=ems.biller.id, company_id=ems.north.id),
                     UserCompanyAssignment(user_id=ems.barney.id, company_id=ems.east.id)])
    await session.flush()
    barney = factory.headers(ems.barney)
    assert len((await client.get("/v1/me/companies", headers=barney)).json()["items"]) == 3
    # Only a company administrator of the current parent may move a child; the child's own admin may not.
    north_admin = await factory.user(ems.north, account_type=ADMIN)
    assert_problem(await client.patch(f"/v1/companies/{ems.north.id}", headers=factory.headers(north_admin),
                                      json={"parent_id": None}), 403, "company_admin_required")
    assert_problem(await client.patch(f"/v1/companies/{ems.north.id}", headers=barney, json={"parent_id": None}),
                   403, "company_admin_required")

    detached = await client.patch(f"/v1/companies/{ems.north.id}", headers=ems.headers, json={"parent_id": None})
    assert detached.status_code == 200, detached.text
    assert detached.json()["parent_id"] is None
    assert await count(session, "group_company_assignment", "company_id = :c", c=ems.north.id) == 0
    assert await count(session, "user_company_assignment", "company_id = :c", c=ems.east.id) == 1
    assert [c["id"] for c in (await client.get("/v1/me/companies", headers=barney)).json()["items"]] == [
        str(ems.west.id), str(ems.east.id)]
    # Betty reaches it no more, so she cannot bring it back either.
    assert_problem(await client.patch(f"/v1/companies/{ems.north.id}", headers=ems.headers,
                                      json={"parent_id": str(ems.west.id)}), 404, "company_not_found")
    # North's own admin can attach it under... only a parent they administer: none.
    assert_problem(await client.patch(f"/v1/companies/{ems.north.id}", headers=factory.headers(north_admin),
                                      json={"parent_id": str(ems.west.id)}), 404, "company_not_found")
    assert await count(session, "audit_event", "action = 'company.updated' AND target_id = :c", c=ems.north.id) == 1


async def test_sending_the_current_parent_changes_nothing(client, session, ems):
    response = await client.patch(f"/v1/companies/{ems.north.id}", headers=ems.headers,
                                  json={"parent_id": str(ems.west.id)})
    assert response.status_code == 200 and response.json()["parent_id"] == str(ems.west.id)


# Who may manage assignments.


async def test_who_may_read_and_set_assignments(client, session, factory, ems):
    editor = await factory.user(ems.west, permissions=["users:edit_others"])
    plain = await factory.user(ems.west)
    outsider = await factory.user(ems.far, account_type=ADMIN)
    path = f"/v1/users/{ems.barney.id}/billing-customer-assignments"
    group = f"/v1/groups/{ems.biller.id}/billing-customer-assignments"
    body = {"company_ids": [str(ems.north.id)]}
    # Reading: the user themselves, and administrators of users; not other plain users.
    assert (await client.get(path, headers=factory.headers(ems.barney))).status_code == 200
    assert (await client.get(path, headers=factory.headers(editor))).status_code == 200
    assert_problem(await client.get(path, headers=factory.headers(plain)), 403, "users_edit_forbidden")
    assert_problem(await client.get(path, headers=factory.headers(outsider)), 404, "user_not_found")
    # Writing: an editor may only hand out companies they reach themselves.
    before = await snapshot(session)
    problem = assert_problem(await client.put(path, headers=factory.headers(editor), json=body), 403,
                             "assignment_grant_forbidden")
    assert problem["company_id"] == str(ems.north.id)
    assert_problem(await client.put(group, headers=factory.headers(editor), json=body), 403,
                   "assignment_grant_forbidden")
    assert_problem(await client.put(group, headers=factory.headers(plain), json=body), 403, "groups_edit_forbidden")
    assert_problem(await client.put(group, headers=factory.headers(outsider), json=body), 404, "group_not_found")
    assert_problem(await client.put(path, headers=factory.headers(plain), json=body), 403, "users_edit_forbidden")
    assert await snapshot(session) == before
    # ... nor add members to a group (even one with no permissions) that gives companies they do not reach.
    dispatchers = await factory.group(ems.west, name="Dispatchers")
    await client.put(f"/v1/groups/{dispatchers.id}/billing-customer-assignments", headers=ems.headers, json=body)
    before = await snapshot(session)
    assert_problem(await client.put(f"/v1/groups/{dispatchers.id}/members", headers=factory.headers(editor),
                                    json={"user_ids": [str(plain.id)]}), 403, "assignment_grant_forbidden")
    assert await snapshot(session) == before
    # Once the editor reaches North (directly, given by Betty), they may pass it on.
    await client.put(f"/v1/users/{editor.id}/billing-customer-assignments", headers=ems.headers, json=body)
    assert (await client.put(path, headers=factory.headers(editor), json=body)).status_code == 200
    # Support looks at groups (read-only oversight) but neither reads users' assignments nor changes any.
    support = await factory.user(await factory.company("Vendor"), account_type=SUPPORT)
    assert (await client.get(group, headers=factory.headers(support))).status_code == 200
    assert_problem(await client.get(path, headers=factory.headers(support)), 403, "users_edit_forbidden")
    assert_problem(await client.put(path, headers=factory.headers(support), json=body), 403, "users_edit_forbidden")
    assert_problem(await client.put(group, headers=factory.headers(support), json=body), 403,
                   "groups_edit_forbidden")
    # A deactivated administrator has nothing.
    gone = await factory.user(ems.west, account_type=ADMIN, status=UserStatus.deactivated)
    for method in ("GET", "PUT"):
        for target in (path, group):
            response = await client.request(method, target, headers=factory.headers(gone),
                                            **({"json": body} if method == "PUT" else {}))
            assert_problem(response, 401, "token_revoked")
    # A company administrator's assignments are changed by company administrators only.
    assert_problem(await client.put(f"/v1/users/{ems.betty.id}/billing-customer-assignments",
                                    headers=factory.headers(editor),
                                    json={"company_ids": [str(c.id) for c in ems.children]}),
                   403, "users_edit_forbidden")


async def test_a_user_with_no_role_picks_freely(client, factory, ems):
    free = await factory.user(ems.west)
    path = f"/v1/users/{free.id}/billing-customer-assignments"
    for chosen in ([ems.north, ems.mountain], [ems.south], [], [ems.east, ems.north, ems.south, ems.mountain]):
        saved = await client.put(path, headers=ems.headers, json={"company_ids": [str(c.id) for c in chosen]})
        assert saved.status_code == 200, saved.text
        reached = {i["company_id"] for i in saved.json()["items"] if i["reached"]}
        assert reached == {str(c.id) for c in chosen}
        assert all(i["removable"] for i in saved.json()["items"])


async def test_a_user_of_a_company_without_children_has_nothing_to_assign(client, factory, ems):
    north_user = await factory.user(ems.north)
    path = f"/v1/users/{north_user.id}/billing-customer-assignments"
    assert (await client.get(path, headers=ems.headers)).json()["items"] == []
    problem = assert_problem(await client.put(path, headers=ems.headers, json={"company_ids": [str(ems.south.id)]}),
                             422, "company_not_a_child")
    assert problem["company_id"] == str(ems.south.id) and problem["parent_id"] == str(ems.north.id)
