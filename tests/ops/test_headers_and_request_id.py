"""Security headers, CORS and the request id, on every kind of answer the app gives."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator

import httpx
import pytest

from billing_api.app import create_app
from billing_api.observability.logs import JsonFormatter, RequestContext
from tests.factories import PASSWORD
from tests.helpers import assert_problem

BASE = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY",
        "cache-control": "no-store", "content-security-policy": "default-src 'none'; frame-ancestors 'none'"}


def assert_secure(response: httpx.Response) -> None:
    for name, value in BASE.items():
        assert response.headers.get(name) == value, (response.request.url, name, response.headers)
    assert response.headers["x-request-id"]


def client_for(app, base_url: str = "http://testserver") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url=base_url)


@pytest.fixture
def log_lines() -> Iterator[list[dict]]:
    """The app's log lines as `billing-api serve` writes them (JsonFormatter with the request context)."""
    lines: list[dict] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(self.format(record)))

    handler = Collect()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContext())
    target = logging.getLogger("billing_api")
    old_level = target.level
    target.addHandler(handler)
    target.setLevel(logging.INFO)
    yield lines
    target.removeHandler(handler)
    target.setLevel(old_level)


async def test_every_kind_of_answer_carries_the_security_headers(client, factory):
    company = await factory.company()
    user = await factory.user(company)
    answers = [
        await client.get("/healthz"),
        await client.get("/v1/me", headers=factory.headers(user)),
        await client.get("/v1/nothing-here"),
        await client.delete("/healthz"),
        await client.get("/v1/me"),
        await client.get(f"/v1/bills/{uuid.uuid4()}", headers=factory.headers(user)),
        await client.post("/v1/patients", content=b"{not json", headers={**factory.headers(user),
                                                                        "content-type": "application/json"}),
        await client.post("/v1/patients", json={"unexpected": 1}, headers=factory.headers(user)),
    ]
    assert [a.status_code for a in answers] == [200, 200, 404, 405, 401, 404, 400, 422]
    for answer in answers:
        assert_secure(answer)
        assert "strict-transport-security" not in answer.headers  # plain http, not production


async def test_an_unexpected_error_is_a_problem_with_the_headers_and_no_trace(settings, log_lines):
    app = create_app(settings)  # its own app: the extra route must not reach the shared one

    async def explode() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/explode", explode)
    async with client_for(app) as http:
        response = await http.get("/explode", headers={"X-Request-ID": "boom-1"})
    body = assert_problem(response, 500, "internal_error")
    assert "secret internals" not in response.text and body["request_id"] == "boom-1"
    assert_secure(response)
    assert response.headers["x-request-id"] == "boom-1"
    logged = [line for line in log_lines if line["logger"] == "billing_api"]
    assert logged and logged[0]["request_id"] == "boom-1" and "RuntimeError" in logged[0]["exception"]
    access = [line for line in log_lines if line["logger"] == "billing_api.access"]
    assert access[-1]["status"] == 500 and access[-1]["route"] == "/explode"


async def test_hsts_over_https_and_in_production(app, settings):
    async with client_for(app, "https://testserver") as http:
        assert (await http.get("/healthz")).headers["strict-transport-security"].startswith("max-age=")
    production = create_app(settings.model_copy(update={"env": "production", "metrics_token": "scrape-secret"}))
    async with client_for(production) as http:
        assert (await http.get("/healthz")).headers["strict-transport-security"].startswith("max-age=")


async def test_the_docs_page_may_load_its_own_scripts_and_styles_but_nothing_from_elsewhere(client):
    response = await client.get("/docs")
    assert response.status_code == 200
    policy = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert "'self'" in policy["script-src"] and "'self'" in policy["style-src"] and "'self'" in policy["connect-src"]
    assert "http" not in response.headers["content-security-policy"]  # no other origin
    assert response.headers["x-frame-options"] == "DENY"


async def test_the_docs_page_assets_may_be_kept_by_browsers_and_nothing_else(client):
    asset = await client.get("/docs/static/swagger-ui.css")
    assert asset.status_code == 200 and "cache-control" not in asset.headers
    assert asset.headers["x-content-type-options"] == "nosniff"
    for path in ("/docs", "/healthz", "/static/swagger-ui.css", "/v1/bills"):
        assert (await client.get(path)).headers["cache-control"] == "no-store", path


async def test_the_request_id_is_taken_sanitised_or_made_and_returned_everywhere(client):
    given = await client.get("/v1/nothing-here", headers={"X-Request-ID": "abc-123.def"})
    assert given.headers["x-request-id"] == "abc-123.def" and given.json()["request_id"] == "abc-123.def"
    dirty = await client.get("/healthz", headers={"X-Request-ID": 'a"b<script>\tc' + "x" * 500})
    assert dirty.headers["x-request-id"] == ("abscriptc" + "x" * 500)[:64]
    made = [(await client.get("/healthz")).headers["x-request-id"] for _ in range(2)]
    assert all(len(value) == 32 for value in made) and made[0] != made[1]
    only_junk = await client.get("/healthz", headers={"X-Request-ID": "<>\"'"})
    assert len(only_junk.headers["x-request-id"]) == 32


async def test_one_json_access_line_per_request_with_the_route_template_and_the_user(client, factory, log_lines):
    company = await factory.company()
    user = await factory.user(company)
    bill_id = uuid.uuid4()
    response = await client.get(f"/v1/bills/{bill_id}", headers={**factory.headers(user), "X-Request-ID": "r-42"})
    assert response.status_code == 404
    access = [line for line in log_lines if line["logger"] == "billing_api.access"]
    assert len(access) == 1
    line = access[0]
    assert {"time", "level", "logger", "message", "request_id", "method", "route", "status", "duration_ms",
            "user_id"} <= line.keys()
    assert (line["request_id"], line["method"], line["route"], line["status"], line["user_id"]) == (
        "r-42", "GET", "/v1/bills/{bill_id}", 404, str(user.id))
    assert str(bill_id) not in json.dumps(line) and line["duration_ms"] >= 0


async def test_logs_never_carry_passwords_or_tokens(client, factory, log_lines):
    company = await factory.company()
    user = await factory.user(company)
    login = await client.post("/v1/auth/token", data={"username": user.username, "password": PASSWORD})
    assert login.status_code == 200
    token = login.json()["access_token"]
    await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    await client.post("/v1/auth/token", data={"username": user.username, "password": "wrong " + PASSWORD})
    written = json.dumps(log_lines)
    assert len([line for line in log_lines if line["logger"] == "billing_api.access"]) == 3
    assert PASSWORD not in written and token not in written and user.password_hash not in written


CORS_ORIGIN = "https://app.clinic.example"


@pytest.fixture
async def cors_client(settings):
    app = create_app(settings.model_copy(update={"cors_origins": [CORS_ORIGIN]}))
    async with client_for(app) as http:
        yield http


def preflight(origin: str) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization,content-type"}


async def test_cors_answers_only_the_configured_origins(cors_client):
    listed = await cors_client.options("/v1/me", headers=preflight(CORS_ORIGIN))
    assert listed.status_code == 200 and listed.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert "PUT" in listed.headers["access-control-allow-methods"]
    assert listed.headers["x-request-id"] and listed.headers["x-content-type-options"] == "nosniff"
    unlisted = await cors_client.options("/v1/me", headers=preflight("https://evil.example"))
    assert unlisted.status_code == 400 and "access-control-allow-origin" not in unlisted.headers

    simple = await cors_client.get("/healthz", headers={"Origin": CORS_ORIGIN})
    assert simple.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
    other = await cors_client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers


async def test_without_configured_origins_no_origin_is_allowed(client):
    response = await client.options("/v1/me", headers=preflight(CORS_ORIGIN))
    assert "access-control-allow-origin" not in response.headers
    simple = await client.get("/healthz", headers={"Origin": CORS_ORIGIN})
    assert "access-control-allow-origin" not in simple.headers
