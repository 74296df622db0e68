"""The OpenAPI contract: in sync with openapi/openapi.json, and complete enough to generate SDKs from."""

import json
from pathlib import Path

import pytest

from billing_api.cli import openapi_document

ROOT = Path(__file__).resolve().parents[1]
HEALTH = {"/healthz", "/readyz"}
TOKEN = "/v1/auth/token"
METHODS = {"get", "put", "post", "patch", "delete"}


@pytest.fixture(scope="module")
def document() -> str:
    return openapi_document()


@pytest.fixture(scope="module")
def operations(document):
    spec = json.loads(document)
    return [(method, path, operation) for path, item in spec["paths"].items()
            for method, operation in item.items() if method in METHODS]


def test_checked_in_contract_is_up_to_date(document):
    checked_in = (ROOT / "openapi" / "openapi.json").read_text()
    assert document == checked_in, "openapi/openapi.json is stale: run `billing-api openapi` and commit it"


def test_every_operation_has_a_unique_readable_id_and_a_tag(operations):
    ids = [operation.get("operationId") for _, _, operation in operations]
    assert all(ids), [f"{m} {p}" for m, p, o in operations if not o.get("operationId")]
    assert len(ids) == len(set(ids))
    for method, path, operation in operations:
        assert operation["operationId"].isidentifier(), (method, path)
        assert operation.get("tags"), f"{method} {path} has no tag"
        assert operation.get("summary") or operation.get("description"), f"{method} {path} is undocumented"


def test_every_operation_but_health_and_login_needs_the_bearer_token(document, operations):
    spec = json.loads(document)
    schemes = spec["components"]["securitySchemes"]
    (name,) = schemes
    assert schemes[name]["type"] == "oauth2" and schemes[name]["flows"]["password"]["tokenUrl"] == TOKEN
    for method, path, operation in operations:
        if path in HEALTH or path == TOKEN:
            assert not operation.get("security"), f"{method} {path} should be public"
            continue
        assert {name: []} in operation.get("security", []), f"{method} {path} does not document the bearer token"
        assert "401" in operation["responses"], f"{method} {path} does not document 401"


def test_error_responses_are_documented_as_problem_json(document, operations):
    spec = json.loads(document)
    assert {"type", "title", "status", "code"} <= set(spec["components"]["schemas"]["Problem"]["properties"])
    for method, path, operation in operations:
        if path in HEALTH:
            continue
        errors = {status: response for status, response in operation["responses"].items() if status[0] in "45"}
        assert errors, f"{method} {path} documents no error"
        for status, response in errors.items():
            assert set(response["content"]) == {"application/problem+json"}, (method, path, status)
            assert response["content"]["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"}
