"""The OpenAPI contract: in sync with openapi/openapi.json, and complete enough to generate SDKs from."""

import ast
import json
import re
from pathlib import Path

import pytest

from billing_api.cli import openapi_document
from billing_api.errors import PROBLEM_CODES

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


# The contract as a product: what an integrator reads before writing a line of code.
COMMON_CODES = {"401": "unauthenticated", "422": "validation_error", "400": "malformed_body",
                "413": "payload_too_large", "429": "rate_limited", "503": "database_unavailable"}


def test_every_operation_is_documented_for_integrators(document, operations):
    spec = json.loads(document)
    tag_names = {tag["name"] for tag in spec["tags"] if tag.get("description")}
    for method, path, operation in operations:
        where = f"{method} {path}"
        assert operation.get("summary") and operation.get("description"), f"{where} needs a summary and a description"
        assert operation.get("tags") and set(operation["tags"]) <= tag_names, f"{where} has a tag with no description"
        body = operation.get("requestBody", {}).get("content", {})
        for media_type in body.values():
            examples = media_type.get("example") or _resolve(spec, media_type["schema"]).get("examples")
            assert examples, f"{where} has no request example"
        if path == "/healthz":  # touches nothing, so it can fail in no documented way
            continue
        errors = {status: response for status, response in operation["responses"].items() if status[0] in "45"}
        assert errors, f"{where} documents no error"
        for status, response in errors.items():
            assert response["x-problem-codes"], (where, status)
            for code in response["x-problem-codes"]:
                assert f"`{code}`" in response["description"], (where, status, code)


def test_common_errors_are_on_every_operation_they_can_happen_on(document, operations):
    for method, path, operation in operations:
        if path in HEALTH:
            continue
        expected = {"429", "503"}
        if operation.get("security"):
            expected.add("401")
        if "requestBody" in operation:
            expected |= {"400", "413", "422"}
        assert expected <= set(operation["responses"]), (method, path, expected - set(operation["responses"]))
        for status in expected:
            assert COMMON_CODES[status] in operation["responses"][status]["x-problem-codes"], (method, path, status)


def test_the_security_scheme_and_tags_are_described(document):
    spec = json.loads(document)
    (scheme,) = spec["components"]["securitySchemes"].values()
    assert "Bearer" in scheme["description"] and TOKEN in scheme["description"]
    tags = [tag["name"] for tag in spec["tags"]]
    assert len(tags) == len(set(tags))
    used = {tag for _, _, operation in _operations(spec) for tag in operation["tags"]}
    assert used == set(tags), f"tags without operations: {set(tags) - used}; undescribed: {used - set(tags)}"


def test_response_models_and_problems_have_examples(document):
    spec = json.loads(document)
    schemas = spec["components"]["schemas"]
    assert schemas["Problem"]["examples"][0]["code"] in PROBLEM_CODES
    assert schemas["TokenResponse"]["examples"] and schemas["BillRead"]["examples"]


def _operations(spec):
    return [(method, path, operation) for path, item in spec["paths"].items()
            for method, operation in item.items() if method in METHODS]


def _resolve(spec, schema):
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


# Every `code` src can raise must be in errors.PROBLEM_CODES, which the contract is generated from.
ERROR_CLASSES = {"DomainError", "NotFound", "Unauthenticated", "Forbidden", "Conflict", "Unprocessable",
                 "TooManyRequests", "PreconditionFailed", "Gone"}


def _raised_codes() -> tuple[set[str], set[str]]:
    """Literal codes, and f-string code templates (as regexes), that src passes as a `code` argument (by
    keyword, or by position to a function with a `code` parameter, such as problem_response), plus the
    class-level default codes of the error classes."""
    trees = [ast.parse(path.read_text()) for path in (ROOT / "src" / "billing_api").rglob("*.py")]
    positions = {node.name: [arg.arg for arg in node.args.args].index("code") for tree in trees
                 for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                 and "code" in [arg.arg for arg in node.args.args]}
    literal, templates = set(), set()
    for node in (node for tree in trees for node in ast.walk(tree)):
        if isinstance(node, ast.Call):
            values = [keyword.value for keyword in node.keywords if keyword.arg == "code"]
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in positions and len(node.args) > positions[name]:
                values.append(node.args[positions[name]])
            for value in values:
                if isinstance(value, ast.Constant):
                    literal.add(value.value)
                elif isinstance(value, ast.JoinedStr):
                    templates.add("".join(part.value if isinstance(part, ast.Constant) else "[a-z_]+"
                                          for part in value.values))
        if isinstance(node, ast.ClassDef) and (node.name in ERROR_CLASSES or any(
                getattr(base, "id", None) in ERROR_CLASSES for base in node.bases)):
            for statement in node.body:
                if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Tuple):
                    names = [target.id for target in statement.targets[0].elts]
                    literal.add(statement.value.elts[names.index("code")].value)
                elif isinstance(statement, ast.Assign) and getattr(statement.targets[0], "id", None) == "code":
                    literal.add(statement.value.value)
    return literal, templates


def test_every_code_raised_in_src_is_in_the_registry():
    literal, templates = _raised_codes()
    assert {"bill_not_found", "not_found", "gone", "database_unavailable", "account_deactivated"} <= literal
    assert literal - set(PROBLEM_CODES) == set(), "add these codes to errors.PROBLEM_CODES"
    for template in templates:
        assert any(re.fullmatch(template, code) for code in PROBLEM_CODES), f"no code in the registry fits {template}"
    for code, (status, meaning) in PROBLEM_CODES.items():
        assert 400 <= status < 600 and meaning, code


def test_the_code_table_is_in_the_api_description(document):
    description = json.loads(document)["info"]["description"]
    for code, (status, _) in PROBLEM_CODES.items():
        assert f"| `{code}` | {status} |" in description


# What a client sends is bounded (docs/integrators.md): every string a parameter or a request body takes has a
# maxLength (or is an enum or a const), every array a maxItems, every integer a format, a minimum and a maximum.
# `make lint-contract` checks the same with Spectral's OWASP ruleset; this runs without Node, so a new route
# cannot forget a bound.
def _unbounded(spec, schema, where, seen=()):
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return []
        return _unbounded(spec, spec["components"]["schemas"][name], f"{where} ({name})", (*seen, name))
    found = []
    kind = schema.get("type")
    if kind == "string" and not {"maxLength", "enum", "const"} & set(schema):
        found.append(f"{where}: string without maxLength")
    if kind == "array" and "maxItems" not in schema:
        found.append(f"{where}: array without maxItems")
    if kind == "integer" and not (schema.get("format") in ("int32", "int64")
                                  and {"minimum", "exclusiveMinimum"} & set(schema)
                                  and {"maximum", "exclusiveMaximum"} & set(schema)):
        found.append(f"{where}: integer without a format, a minimum and a maximum")
    for name, child in schema.get("properties", {}).items():
        found += _unbounded(spec, child, f"{where}.{name}", seen)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found += _unbounded(spec, schema[key], f"{where}[]", seen)
    for key in ("anyOf", "oneOf", "allOf"):
        for child in schema.get(key, []):
            found += _unbounded(spec, child, where, seen)
    return found


def test_every_input_is_bounded(document, operations):
    spec = json.loads(document)
    found = []
    for method, path, operation in operations:
        for parameter in operation.get("parameters", []):
            found += _unbounded(spec, parameter["schema"], f"{method} {path} {parameter['in']} {parameter['name']}")
        for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
            found += _unbounded(spec, content["schema"], f"{method} {path} {media_type}")
    assert found == [], "\n".join(found)


def test_the_walk_finds_unbounded_inputs():
    # The check above must be able to fail: each kind of gap it looks for, it finds.
    spec = {"components": {"schemas": {"Body": {"type": "object", "properties": {
        "name": {"type": "string"}, "ids": {"type": "array", "items": {"type": "string", "maxLength": 45}},
        "count": {"type": "integer", "minimum": 0, "maximum": 9}, "ok": {"anyOf": [{"type": "string"}]}}}}}}
    found = _unbounded(spec, {"$ref": "#/components/schemas/Body"}, "body")
    assert found == ["body (Body).name: string without maxLength", "body (Body).ids: array without maxItems",
                     "body (Body).count: integer without a format, a minimum and a maximum",
                     "body (Body).ok: string without maxLength"]


def test_rate_limited_and_unavailable_answers_declare_retry_after(operations):
    for method, path, operation in operations:
        for status in ("429", "503"):
            if status in operation["responses"]:
                header = operation["responses"][status]["headers"]["Retry-After"]
                assert header["schema"]["type"] == "integer" and header["schema"]["minimum"] == 1, (method, path)


def test_the_bearer_scheme_states_its_jwt_practice(document):
    (scheme,) = json.loads(document)["components"]["securitySchemes"].values()
    for fact in ("RFC8725", "HS256", "`exp`", "`iat`", "BILLING_API_TOKEN_LIFETIME_MINUTES", "no refresh token"):
        assert fact in scheme["description"], fact
