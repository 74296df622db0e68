"""Request size limits: bodies over `max_request_body_bytes` are a 413 problem+json before parsing,
whether the size is declared or streamed; list `limit` is capped at pagination.MAX_LIMIT."""

from __future__ import annotations

import json

import pytest

from billing_api.pagination import MAX_LIMIT
from tests.helpers import ADMIN, assert_problem, count
from tests.identity.test_users import new_user


def oversized_user(company, settings) -> bytes:
    body = new_user(company, display_name="x" * (settings.max_request_body_bytes + 1))
    return json.dumps(body).encode()


async def chunks(data: bytes, size: int = 64 * 1024):
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def test_the_default_limit_is_one_mebibyte(settings):
    assert settings.max_request_body_bytes == 1024 * 1024


async def test_a_declared_oversized_body_is_refused_unread(client, factory, session, settings):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    before = await count(session, "app_user")
    response = await client.post("/v1/users", content=oversized_user(company, settings),
                                 headers={**factory.headers(admin), "Content-Type": "application/json"})
    body = assert_problem(response, 413, "payload_too_large")
    assert str(settings.max_request_body_bytes) in body["detail"] and body["instance"] == "/v1/users"
    assert await count(session, "app_user") == before
    # Even where the route reads no body at all, and before authentication.
    big = b"x" * (settings.max_request_body_bytes + 1)
    assert_problem(await client.request("GET", "/v1/me", content=big), 413, "payload_too_large")


async def test_a_streamed_oversized_body_is_counted_and_refused(client, factory, session, settings):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    before = await count(session, "app_user")
    # A generator body goes out with Transfer-Encoding: chunked and no Content-Length.
    request = client.build_request("POST", "/v1/users", content=chunks(oversized_user(company, settings)),
                                   headers={**factory.headers(admin), "Content-Type": "application/json"})
    assert "content-length" not in request.headers
    response = await client.send(request)
    assert_problem(response, 413, "payload_too_large")
    assert await count(session, "app_user") == before

    # A body longer than its declared Content-Length is counted by what arrives, not by what it claims.
    lying = client.build_request("POST", "/v1/users", content=chunks(oversized_user(company, settings)),
                                 headers={**factory.headers(admin), "Content-Type": "application/json",
                                          "Content-Length": "100"})
    assert_problem(await client.send(lying), 413, "payload_too_large")

    # The login form too.
    form = b"username=x&password=" + b"y" * (settings.max_request_body_bytes + 1)
    streamed_form = client.build_request("POST", "/v1/auth/token", content=chunks(form),
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_problem(await client.send(streamed_form), 413, "payload_too_large")


async def test_a_body_under_the_limit_is_served(client, factory, settings):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    body = new_user(company)
    data = json.dumps(body).encode()
    request = client.build_request("POST", "/v1/users", content=chunks(data, 7),
                                   headers={**factory.headers(admin), "Content-Type": "application/json"})
    response = await client.send(request)
    assert response.status_code == 201, response.text
    login = await client.post("/v1/auth/token", data={"username": body["username"], "password": body["password"]})
    assert login.status_code == 200


def test_every_list_caps_its_limit(shared_app):
    """Every route with a `limit` query parameter declares a maximum no higher than MAX_LIMIT."""
    schema = shared_app.openapi()
    capped = []
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "limit" and parameter["in"] == "query":
                    maximum = parameter["schema"].get("maximum")
                    assert maximum is not None and maximum <= MAX_LIMIT, (path, parameter)
                    capped.append(path)
    assert "/v1/bills" in capped and "/v1/users" in capped and len(capped) >= 8


@pytest.mark.parametrize("path", ["/v1/bills", "/v1/users", "/v1/audit-events", "/v1/groups"])
async def test_a_limit_above_the_cap_is_a_422(client, factory, path):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN, provider=True)
    headers = factory.headers(admin)
    assert (await client.get(path, params={"limit": MAX_LIMIT}, headers=headers)).status_code == 200
    body = assert_problem(await client.get(path, params={"limit": MAX_LIMIT + 1}, headers=headers), 422,
                          "validation_error")
    assert body["errors"][0]["location"] == ["query", "limit"]
    for bad in (0, -1, 10**12, "ten", "1e3"):
        assert_problem(await client.get(path, params={"limit": bad}, headers=headers), 422, "validation_error")
