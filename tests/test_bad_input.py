"""Bad input on every identity endpoint that takes input: a 4xx problem+json with a code, never a 500,
and nothing written (every table identity writes to is the same before and after)."""

from __future__ import annotations

import base64
import json
import uuid
from types import SimpleNamespace

import pytest

from billing_api.events.schemas import EVENT_TYPES
from billing_api.schemas import EMAIL_MAX_LENGTH, SEARCH_MAX_LENGTH, UUID_TEXT_MAX_LENGTH
from tests.factories import PASSWORD
from tests.helpers import ADMIN, assert_problem, snapshot

NUL = "a\x00b"


@pytest.fixture
async def world(factory):
    """This module's own small world (not the authz `world` of tests/authz/world.py): one company with an
    administrator (the caller, in `headers`), a target user in an existing group, and their ids for `fill`."""
    company = await factory.company("Bad Input Clinic")
    admin = await factory.user(company, account_type=ADMIN, name="Ada Admin")
    user = await factory.user(company, name="Tess Target")
    group = await factory.group(company, [user], name="Existing group")
    return SimpleNamespace(company=company, admin=admin, user=user, group=group, headers=factory.headers(admin),
                           ids={"company": str(company.id), "user": str(user.id), "group": str(group.id),
                                "admin": str(admin.id)})


def fill(value, ids):
    """Put the world's ids in place of "{company}", "{user}", ... anywhere in a body."""
    if isinstance(value, str):
        for key, id_ in ids.items():
            value = value.replace("{" + key + "}", id_)
        return value
    if isinstance(value, list):
        return [fill(item, ids) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, ids) for key, item in value.items()}
    return value


async def send(client, world, method, path, **kwargs):
    if "json" in kwargs:
        kwargs["json"] = fill(kwargs["json"], world.ids)
    headers = {**world.headers, **kwargs.pop("headers", {})}
    return await client.request(method, fill(path, world.ids), headers=headers, **kwargs)


async def refused_without_writing(client, session, world, method, path, status, code, **kwargs):
    before = await snapshot(session)
    response = await send(client, world, method, path, **kwargs)
    body = assert_problem(response, status, code)
    assert await snapshot(session) == before, "a refused request wrote something"
    return body


# The valid bodies; every bad case below breaks exactly one thing.
NEW_USER = {"company_id": "{company}", "email": "fresh@example.org", "username": "fresh.user",
            "display_name": "Fresh User", "password": "long enough password"}
NEW_GROUP = {"company_id": "{company}", "name": "Fresh group", "permissions": ["bills:view"]}
NEW_COMPANY = {"name": "Fresh child", "parent_id": "{company}", "time_zone": "UTC"}
MEMBERS = {"user_ids": ["{user}", "{admin}"]}

ENDPOINTS = {
    "create_user": ("POST", "/v1/users", NEW_USER),
    "update_user": ("PATCH", "/v1/users/{user}", {"display_name": "Renamed"}),
    "create_group": ("POST", "/v1/groups", NEW_GROUP),
    "update_group": ("PATCH", "/v1/groups/{group}", {"name": "Renamed group"}),
    "set_members": ("PUT", "/v1/groups/{group}/members", MEMBERS),
    "create_company": ("POST", "/v1/companies", NEW_COMPANY),
    "update_company": ("PATCH", "/v1/companies/{company}", {"name": "Renamed company"}),
    "update_profile": ("PATCH", "/v1/profiles/me", {"display_name": "Renamed me"}),
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
async def test_the_valid_body_of_each_endpoint_is_accepted(client, world, endpoint):
    # The control: the bad cases below differ from these in one field only.
    method, path, body = ENDPOINTS[endpoint]
    response = await send(client, world, method, path, json=body)
    assert response.status_code in (200, 201), response.text


def with_(endpoint, **changes):
    method, path, body = ENDPOINTS[endpoint]
    return method, path, {**body, **changes}


def case(endpoint, case_id, body=None, code="validation_error", status=422, **changes):
    method, path, valid = ENDPOINTS[endpoint]
    payload = body if body is not None else {**valid, **changes}
    return pytest.param(method, path, payload, status, code, id=f"{endpoint}-{case_id}")


BAD_BODIES = [
    # POST /v1/users
    case("create_user", "unknown-field", role="admin"),
    case("create_user", "bool-as-string", is_provider="true"),
    case("create_user", "bool-as-number", is_provider=1),
    case("create_user", "uuid-false", company_id=False),
    case("create_user", "uuid-numeric-string", company_id="12"),
    case("create_user", "uuid-number", company_id=12),
    case("create_user", "email-number", email=12),
    case("create_user", "email-malformed", email="not-an-email"),
    case("create_user", "username-number", username=12),
    case("create_user", "username-with-space", username="has space"),
    case("create_user", "display-name-list", display_name=["Fresh"]),
    case("create_user", "display-name-blank", display_name="   "),
    case("create_user", "display-name-too-long", display_name="x" * 201),
    case("create_user", "password-number", password=12345678901234),
    case("create_user", "password-too-short", password="short", code="password_too_short"),
    case("create_user", "permissions-string", permissions="bills:view"),
    case("create_user", "permissions-unknown", permissions=["bills:fly"]),
    case("create_user", "permissions-number", permissions=[1]),
    case("create_user", "account-type-unknown", account_type="root"),
    case("create_user", "account-type-null", account_type=None),
    case("create_user", "billing-number-object", billing_number={"n": 1}),
    case("create_user", "missing-field", body={k: v for k, v in NEW_USER.items() if k != "email"}),
    case("create_user", "list-body", body=[NEW_USER]),
    case("create_user", "string-body", body="fresh.user"),
    case("create_user", "nul-character", display_name=NUL, code="invalid_value"),
    # PATCH /v1/users/{id}
    case("update_user", "unknown-field", nickname="x"),
    case("update_user", "bool-as-string", is_provider="true"),
    case("update_user", "bool-as-number", is_provider=1),
    case("update_user", "email-number", email=5),
    case("update_user", "permissions-object", permissions={"bills:view": True}),
    case("update_user", "display-name-number", display_name=5),
    case("update_user", "list-body", body=[{"display_name": "x"}]),
    case("update_user", "username-null", body={"username": None}, code="field_required"),
    case("update_user", "account-type-null", body={"account_type": None}, code="field_required"),
    case("update_user", "nul-character", display_name=NUL, code="invalid_value"),
    # POST /v1/groups
    case("create_group", "unknown-field", members=[]),
    case("create_group", "name-number", name=5),
    case("create_group", "name-list", name=["x"]),
    case("create_group", "name-empty", name=""),
    case("create_group", "uuid-false", company_id=False),
    case("create_group", "uuid-numeric-string", company_id="12"),
    case("create_group", "permissions-string", permissions="bills:view"),
    case("create_group", "permissions-bool", permissions=[True]),
    case("create_group", "list-body", body=[NEW_GROUP]),
    case("create_group", "nul-character", name=NUL, code="invalid_value"),
    # PATCH /v1/groups/{id}
    case("update_group", "unknown-field", colour="red"),
    case("update_group", "name-number", name=5),
    case("update_group", "permissions-object", permissions={}),
    case("update_group", "name-null", body={"name": None}, code="field_required"),
    case("update_group", "permissions-null", body={"permissions": None}, code="field_required"),
    case("update_group", "list-body", body=[{"name": "x"}]),
    # PUT /v1/groups/{id}/members
    case("set_members", "unknown-field", replace=True),
    case("set_members", "ids-string", user_ids="{user}"),
    case("set_members", "ids-number", user_ids=[1]),
    case("set_members", "ids-false", user_ids=[False]),
    case("set_members", "ids-numeric-string", user_ids=["12"]),
    case("set_members", "ids-object", user_ids={"id": "{user}"}),
    case("set_members", "ids-null", user_ids=None),
    case("set_members", "missing-field", body={}),
    case("set_members", "list-body", body=["{user}"]),
    case("set_members", "duplicates", user_ids=["{user}", "{user}"], code="duplicate_member"),
    case("set_members", "unknown-user", user_ids=[str(uuid.UUID(int=7))], code="member_not_in_company"),
    # POST /v1/companies
    case("create_company", "unknown-field", billing_segregation_enabled=True),
    case("create_company", "name-number", name=5),
    case("create_company", "name-empty", name=""),
    case("create_company", "uuid-false", parent_id=False),
    case("create_company", "uuid-numeric-string", parent_id="12"),
    case("create_company", "time-zone-number", time_zone=5),
    case("create_company", "time-zone-unknown", time_zone="Mars/Olympus"),
    case("create_company", "missing-parent", body={"name": "Orphan"}),
    case("create_company", "list-body", body=[NEW_COMPANY]),
    case("create_company", "nul-character", name=NUL, code="invalid_value"),
    # PATCH /v1/companies/{id}
    case("update_company", "unknown-field", billing_segregation_enabled=True),
    case("update_company", "own-parent", parent_id="{company}", code="company_cycle"),
    case("update_company", "parent-false", parent_id=False),
    case("update_company", "name-number", name=5),
    case("update_company", "time-zone-number", time_zone=0),
    case("update_company", "time-zone-unknown", time_zone="Nowhere/Land"),
    case("update_company", "name-null", body={"name": None}, code="field_required"),
    case("update_company", "time-zone-null", body={"time_zone": None}, code="field_required"),
    case("update_company", "list-body", body=[{"name": "x"}]),
    # PATCH /v1/profiles/me
    case("update_profile", "unknown-field", password="x"),
    case("update_profile", "display-name-number", display_name=5),
    case("update_profile", "display-name-bool", display_name=True),
    case("update_profile", "email-number", email=5),
    case("update_profile", "email-malformed", email="nope", current_password=PASSWORD),
    case("update_profile", "new-password-number", new_password=12345678901, current_password=PASSWORD),
    case("update_profile", "current-password-bool", new_password="long enough password", current_password=True),
    case("update_profile", "list-body", body=[{"display_name": "x"}]),
    case("update_profile", "nul-character", display_name=NUL, code="invalid_value"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), BAD_BODIES)
async def test_bad_bodies_are_refused_without_writing(client, session, world, method, path, body, status, code):
    problem = await refused_without_writing(client, session, world, method, path, status, code, json=body)
    if code == "validation_error":
        assert problem["errors"] and all(error["location"][0] == "body" for error in problem["errors"])


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize(("raw", "status", "code"), [
    pytest.param(b'{"name": ', 400, "malformed_body", id="truncated-json"),
    pytest.param(b"{'name': 'single quotes'}", 400, "malformed_body", id="not-json"),
    pytest.param(b'{"name": "x"} trailing', 400, "malformed_body", id="trailing-garbage"),
    pytest.param(b'{"display_name": ' + b"1" * 5000 + b"}", 400, "malformed_body", id="huge-number"),
    pytest.param(b"[" * 5000 + b"]" * 5000, 400, "malformed_body", id="too-deep"),
    pytest.param(b'{"name": "\xff\xfe"}', 400, "malformed_body", id="not-utf8"),
    pytest.param(b"", 422, "validation_error", id="empty-body"),
    pytest.param(b"null", 422, "validation_error", id="null-body"),
])
async def test_malformed_and_empty_bodies(client, session, world, endpoint, raw, status, code):
    method, path, _ = ENDPOINTS[endpoint]
    await refused_without_writing(client, session, world, method, path, status, code, content=raw,
                                  headers={"Content-Type": "application/json"})


async def test_a_form_body_on_a_json_endpoint_is_refused(client, session, world):
    await refused_without_writing(client, session, world, "POST", "/v1/users", 422, "validation_error",
                                  data=fill(NEW_USER, world.ids))


# Unique fields, compared case-insensitively: 409 and nothing written.
DUPLICATES = [
    pytest.param("POST", "/v1/users", lambda w: {**NEW_USER, "username": w.user.username.upper()},
                 "username_taken", id="create-user-username"),
    pytest.param("POST", "/v1/users", lambda w: {**NEW_USER, "email": w.user.email.upper()},
                 "email_taken", id="create-user-email"),
    pytest.param("POST", "/v1/users", lambda w: {**NEW_USER, "username": w.user.email},
                 "username_taken", id="create-user-username-is-anothers-email"),
    pytest.param("PATCH", "/v1/users/{admin}", lambda w: {"username": w.user.username.title()},
                 "username_taken", id="update-user-username"),
    pytest.param("PATCH", "/v1/users/{admin}", lambda w: {"email": w.user.email.upper()},
                 "email_taken", id="update-user-email"),
    pytest.param("POST", "/v1/groups", lambda w: {**NEW_GROUP, "name": "EXISTING GROUP"},
                 "group_name_taken", id="create-group-name"),
    pytest.param("PATCH", "/v1/groups/{group}", lambda w: {"name": "existing group"}, None, id="same-group-name"),
    pytest.param("PATCH", "/v1/profiles/me", lambda w: {"email": w.user.email.upper(), "current_password": PASSWORD},
                 "email_taken", id="update-profile-email"),
]


@pytest.mark.parametrize(("method", "path", "body", "code"), DUPLICATES)
async def test_duplicates_of_unique_fields(client, session, factory, world, method, path, body, code):
    if code is None:  # renaming a group to its own name (another case) is no clash
        response = await send(client, world, method, path, json=body(world))
        assert response.status_code == 200, response.text
        other = await factory.group(world.company, name="Second group")
        await refused_without_writing(client, session, world, method, f"/v1/groups/{other.id}", 409,
                                      "group_name_taken", json=body(world))
        return
    problem = await refused_without_writing(client, session, world, method, path, 409, code, json=body(world))
    assert problem["field"] in ("username", "email", "name")


# POST /v1/auth/token: an OAuth2 password form.
TOKEN_CASES = [
    pytest.param({"json": {"username": "x", "password": "y"}}, 422, "validation_error", id="json-instead-of-form"),
    pytest.param({"data": {"username": "x"}}, 422, "validation_error", id="missing-password"),
    pytest.param({"data": {"password": "y"}}, 422, "validation_error", id="missing-username"),
    pytest.param({"data": {"username": "", "password": "y"}}, 422, "validation_error", id="empty-username"),
    pytest.param({"data": {"username": "x", "password": "y" * 257}}, 422, "validation_error", id="long-password"),
    pytest.param({"data": {"username": "x", "password": "y", "client": "desktop"}}, 422, "validation_error",
                 id="unknown-client"),
    pytest.param({"data": {"username": "x", "password": "y", "grant_type": "client_credentials"}}, 422,
                 "validation_error", id="other-grant-type"),
    pytest.param({"content": b""}, 422, "validation_error", id="empty-body"),
    pytest.param({"content": b"--x\r\ngarbage", "headers": {"Content-Type": "multipart/form-data; boundary=x"}},
                 422, "validation_error", id="broken-multipart"),
    pytest.param({"data": {"username": NUL, "password": "y"}}, 422, "invalid_value", id="nul-character"),
]


@pytest.mark.parametrize(("kwargs", "status", "code"), TOKEN_CASES)
async def test_bad_token_requests(client, session, world, kwargs, status, code):
    before = await snapshot(session)
    response = await client.post("/v1/auth/token", **kwargs)
    assert_problem(response, status, code)
    assert await snapshot(session) == before


async def test_token_endpoint_ignores_unrecognised_oauth2_parameters(client, world):
    # RFC 6749 §3.2: the token endpoint MUST ignore unrecognised parameters (the docs page's Authorize
    # button sends scope, client_id and client_secret), so unknown form fields are not an error here.
    response = await client.post("/v1/auth/token", data={
        "grant_type": "password", "username": world.user.username, "password": PASSWORD,
        "scope": "", "client_id": "", "client_secret": "", "something_else": "1"})
    assert response.status_code == 200, response.text


def cursor_of(payload) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


BAD_QUERIES = [
    pytest.param("/v1/users", {"limit": 0}, "validation_error", id="limit-zero"),
    pytest.param("/v1/users", {"limit": 201}, "validation_error", id="limit-too-big"),
    pytest.param("/v1/users", {"limit": -1}, "validation_error", id="limit-negative"),
    pytest.param("/v1/users", {"limit": "abc"}, "validation_error", id="limit-text"),
    pytest.param("/v1/users", {"limit": "true"}, "validation_error", id="limit-bool"),
    pytest.param("/v1/users", {"limit": "1.5"}, "validation_error", id="limit-fraction"),
    pytest.param("/v1/users", {"limit": "99999999999999999999999"}, "validation_error", id="limit-huge"),
    pytest.param("/v1/users", {"status": "sleeping"}, "validation_error", id="status-unknown"),
    pytest.param("/v1/users", {"status": "true"}, "validation_error", id="status-bool"),
    pytest.param("/v1/users", {"company_id": "false"}, "validation_error", id="company-false"),
    pytest.param("/v1/users", {"company_id": "12"}, "validation_error", id="company-number"),
    pytest.param("/v1/users", {"q": ""}, "validation_error", id="q-empty"),
    pytest.param("/v1/users", {"q": "x" * 101}, "validation_error", id="q-too-long"),
    pytest.param("/v1/users", {"q": NUL}, "invalid_value", id="q-nul"),
    pytest.param("/v1/users", {"cursor": "garbage"}, "invalid_cursor", id="cursor-garbage"),
    pytest.param("/v1/users", {"cursor": "!!!"}, "invalid_cursor", id="cursor-not-base64"),
    pytest.param("/v1/users", {"cursor": cursor_of([])}, "invalid_cursor", id="cursor-empty-list"),
    pytest.param("/v1/users", {"cursor": cursor_of({"a": 1})}, "invalid_cursor", id="cursor-object"),
    pytest.param("/v1/users", {"cursor": cursor_of(["2024-01-01T00:00:00+00:00", "x", "y"])}, "invalid_cursor",
                 id="cursor-three-parts"),
    pytest.param("/v1/users", {"cursor": cursor_of(["yesterday", str(uuid.uuid4())])}, "invalid_cursor",
                 id="cursor-bad-date"),
    pytest.param("/v1/users", {"cursor": cursor_of(["2024-01-01T00:00:00+00:00", "nope"])}, "invalid_cursor",
                 id="cursor-bad-id"),
    pytest.param("/v1/users", {"cursor": cursor_of([1, 2])}, "invalid_cursor", id="cursor-numbers"),
    pytest.param("/v1/users", {"cursor": cursor_of(["2024-01-01T00:00:00", str(uuid.uuid4())])}, "invalid_cursor",
                 id="cursor-naive-time"),
    pytest.param("/v1/users", {"cursor": "x" * 501}, "validation_error", id="cursor-too-long"),
    pytest.param("/v1/groups", {"limit": "false"}, "validation_error", id="groups-limit-bool"),
    pytest.param("/v1/groups", {"cursor": "garbage"}, "invalid_cursor", id="groups-cursor"),
    pytest.param("/v1/groups", {"company_id": "nope"}, "validation_error", id="groups-company"),
    pytest.param("/v1/directory", {}, "validation_error", id="directory-no-q"),
    pytest.param("/v1/directory", {"q": ""}, "validation_error", id="directory-empty-q"),
    pytest.param("/v1/directory", {"q": "a", "limit": 0}, "validation_error", id="directory-limit-zero"),
    pytest.param("/v1/directory", {"q": "a", "limit": 51}, "validation_error", id="directory-limit-big"),
    pytest.param("/v1/directory", {"q": "a", "company_id": "1"}, "validation_error", id="directory-company"),
    pytest.param("/v1/directory", {"q": NUL}, "invalid_value", id="directory-q-nul"),
]


@pytest.mark.parametrize(("path", "params", "code"), BAD_QUERIES)
async def test_bad_query_parameters(client, session, world, path, params, code):
    await refused_without_writing(client, session, world, "GET", path, 422, code, params=params)


async def test_far_future_cursor_is_an_empty_page_not_an_error(client, world):
    far = cursor_of(["9999-12-31T23:59:59.999999+00:00", str(uuid.UUID(int=2**128 - 1))])
    response = await client.get("/v1/users", params={"cursor": far}, headers=world.headers)
    assert response.status_code == 200 and response.json() == {"items": [], "next_cursor": None}


BAD_PATH_IDS = [
    ("GET", "/v1/users/not-a-uuid"),
    ("PATCH", "/v1/users/12"),
    ("POST", "/v1/users/false/deactivate"),
    ("POST", "/v1/users/true/reactivate"),
    ("GET", "/v1/groups/1"),
    ("PATCH", "/v1/groups/abc"),
    ("GET", "/v1/groups/abc/members"),
    ("PUT", "/v1/groups/abc/members"),
    ("GET", "/v1/companies/abc"),
    ("PATCH", "/v1/companies/0"),
    ("GET", "/v1/profiles/true"),
]


@pytest.mark.parametrize(("method", "path"), BAD_PATH_IDS, ids=[f"{m}-{p}" for m, p in BAD_PATH_IDS])
async def test_path_ids_that_are_not_uuids(client, session, world, method, path):
    body = {"json": {"name": "x"}} if method in ("PATCH", "PUT") else {}
    problem = await refused_without_writing(client, session, world, method, path, 422, "validation_error", **body)
    assert any(error["location"][0] == "path" for error in problem["errors"])


def long_email(length: int) -> str:
    """An address of `length` characters whose parts are each within their own limits (64, 63 a label)."""
    domain_length = length - 65
    labels = ["b" * 63] * ((domain_length - 4) // 64)
    labels.append("c" * (domain_length - 4 - 64 * len(labels)))
    return "a" * 64 + "@" + ".".join(labels) + ".org"


# Over-long inputs (the bounds in billing_api.schemas, shown in the contract): 422 problem+json, nothing written.
OVER_LONG = [
    pytest.param("PATCH", "/v1/users/{user}", {"json": {"display_name": "x" * 201}}, id="name"),
    pytest.param("PATCH", "/v1/users/{user}", {"json": {"email": long_email(EMAIL_MAX_LENGTH + 1)}}, id="email"),
    pytest.param("GET", "/v1/directory", {"params": {"q": "x" * (SEARCH_MAX_LENGTH + 1)}}, id="search-term"),
    pytest.param("GET", "/v1/events", {"params": {"type": ["bill.created"] * (len(EVENT_TYPES) + 1)}},
                 id="list-over-its-max-items"),
    pytest.param("GET", "/v1/bills", {"params": {"service_date_from": "2026-11-20T00:00:00"}}, id="date-as-datetime"),
    pytest.param("GET", "/v1/visits", {"params": {"scheduled_from": "2026-11-20T00:00:00." + "0" * 30 + "Z"}},
                 id="datetime-digits"),
    pytest.param("GET", "/v1/users/urn:uuid:{user}0", {}, id="uuid-text-46"),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), OVER_LONG)
async def test_over_long_inputs_are_refused(client, session, world, method, path, kwargs):
    problem = await refused_without_writing(client, session, world, method, path, 422, "validation_error", **kwargs)
    assert problem["errors"], problem


async def test_inputs_at_their_bounds_are_accepted(client, world):
    # The other side of each bound above: the longest text of each kind still passes.
    assert len(long_email(EMAIL_MAX_LENGTH)) == EMAIL_MAX_LENGTH
    for method, path, kwargs in [
        ("PATCH", "/v1/users/{user}", {"json": {"display_name": "x" * 200, "email": long_email(EMAIL_MAX_LENGTH)}}),
        ("GET", "/v1/directory", {"params": {"q": "x" * SEARCH_MAX_LENGTH}}),
        ("GET", "/v1/events", {"params": {"type": list(EVENT_TYPES)}}),
        ("GET", "/v1/bills", {"params": {"service_date_from": "2026-11-20"}}),
        ("GET", "/v1/visits", {"params": {"scheduled_from": "2026-11-20T00:00:00.000000000+05:30"}}),
        # The longest text the UUID parser takes (UUID_TEXT_MAX_LENGTH, what the contract shows).
        ("GET", "/v1/users/urn:uuid:{user}", {}),
    ]:
        response = await send(client, world, method, path, **kwargs)
        assert response.status_code == 200, (path, response.text)
    assert len("urn:uuid:" + world.ids["user"]) == UUID_TEXT_MAX_LENGTH
