"""The OpenAPI contract as a product: tags with descriptions, the errors every operation can give (each with
the problem+json schema and its possible `code` values, from errors.PROBLEM_CODES) and the code table.

Errors common to many operations (401, 422, 400, 413, 429, 503) are added here by walking the operations,
not by hand on each route; a route's decorator names only the statuses its own rules give.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

from billing_api.errors import PROBLEM_CODES, PROBLEM_JSON, codes_for_status
from billing_api.schemas import INT32_MAX, UUID_TEXT_MAX_LENGTH

TAGS: list[dict[str, str]] = [
    {"name": "health", "description": "Liveness and readiness probes for load balancers and orchestrators."},
    {"name": "auth", "description": "Log in: exchange a username and password for a bearer token (JWT)."},
    {"name": "me", "description": "The caller: who they are, what they may do, which companies they reach."},
    {"name": "users", "description": "User accounts of a company: create, edit, deactivate."},
    {"name": "groups", "description": "Groups of users, with permissions and companies given to all members."},
    {"name": "directory", "description": "Find users and groups of the caller's companies by name."},
    {"name": "profiles", "description": "Personal profiles; the caller edits their own."},
    {"name": "companies", "description": "Companies and their child companies (one level deep)."},
    {"name": "patients", "description": "Patients of a company."},
    {"name": "visits", "description": "Scheduled visits, and the visits dashboard with each visit's bills."},
    {"name": "encounters", "description": "Encounters (what was done in a visit), with their service lines."},
    {"name": "bills", "description": "Bills, as every surface shows them: dashboard, patient chart, encounter. "
                                     "Each lists only the bills the caller may see."},
    {"name": "delegation", "description": "A provider's delegation list: who may see and handle their bills."},
    {"name": "access", "description": "Why a user may (or may not) see a provider's bills, and who can."},
    {"name": "segregation", "description": "Billing segregation: bills visible only through delegation lists."},
    {"name": "audit", "description": "The audit trail of access-control changes and audited reads."},
    {"name": "billing customer assignments",
     "description": "Which child companies a user or group works for (billing companies with customers)."},
    {"name": "billing identity",
     "description": "What claims and superbills name: a provider's NPI or provincial billing number and credentials, "
                    "the practice's billing name, tax id or business number, address and place of service."},
    {"name": "payers", "description": "Insurance payers of a company, copied down to child companies."},
    {"name": "facilities", "description": "Facilities of a company, copied down to child companies."},
    {"name": "team", "description": "A provider's team: role presets, invitations by email, acceptance."},
    {"name": "reports", "description": "Billing reports of a provider."},
    {"name": "invoices", "description": "Invoices of a provider and the payments recorded on bills."},
    {"name": "access log", "description": "Who saw a patient's billing data, when, from where and on whose behalf "
                                          "(the access log health-privacy law asks for)."},
    {"name": "events", "description": "The integrators' durable events feed: bills, payments, AutoPay outcomes, "
                                      "invitations and access changes, each seen by whoever may see its subject."},
    {"name": "billing automation",
     "description": "Nightly bill creation, superbills, AutoPay and document sharing; patients' settings, "
                    "payment methods and documents."},
]

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
HEALTH_TAG = "health"


def _common_statuses(operation: dict[str, Any]) -> set[int]:
    """The errors the framework, not the route's rules, can give for this operation."""
    if HEALTH_TAG in operation.get("tags", []):
        return set()
    statuses = {429, 503}
    if operation.get("security"):
        statuses.add(401)
    if operation.get("parameters") or "requestBody" in operation:
        statuses.add(422)
    if "requestBody" in operation:
        statuses |= {400, 413}
    return statuses


# Every 429 (the failure and invitation limits) and every 503 (database_unavailable) the service sends carries
# Retry-After in seconds; it sends no RateLimit-* headers, as it meters failures, not requests.
RETRY_AFTER = {"Retry-After": {
    "description": "Seconds to wait before retrying.",
    "schema": {"type": "integer", "format": "int32", "minimum": 1, "maximum": INT32_MAX},
}}


def _problem_response(status: int) -> dict[str, Any]:
    codes = codes_for_status(status)
    response = {
        "description": f"{HTTPStatus(status).phrase}. `code` is one of: " + ", ".join(f"`{c}`" for c in codes) + ".",
        "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
        "x-problem-codes": codes,
    }
    if status in (429, 503):
        response["headers"] = RETRY_AFTER
    return response


def _bound_formats(node: Any) -> None:
    """Bounds that follow from a format, on every schema of the document: a UUID's text is at most
    UUID_TEXT_MAX_LENGTH characters (the parser refuses longer text), and an integer is an int32 when its
    minimum and maximum fit one, else an int64 (a PostgreSQL bigint)."""
    if isinstance(node, list):
        for item in node:
            _bound_formats(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "string" and node.get("format") == "uuid":
        node.setdefault("maxLength", UUID_TEXT_MAX_LENGTH)
    if node.get("type") == "integer" and "format" not in node:
        low, high = node.get("minimum", node.get("exclusiveMinimum")), node.get("maximum", node.get("exclusiveMaximum"))
        fits = low is not None and high is not None and -INT32_MAX - 1 <= low and high <= INT32_MAX
        node["format"] = "int32" if fits else "int64"
    for value in node.values():
        _bound_formats(value)


def _never_null_parameters(operation: dict[str, Any]) -> None:
    """A query parameter is sent or not, never null: `anyOf: [X, null]` (pydantic's `X | None = None`) becomes X,
    as the X-Company-Id header does, so clients never send the text "null"."""
    for parameter in operation.get("parameters", []):
        schema = parameter["schema"]
        variants = schema.get("anyOf", [])
        if not parameter.get("required") and {"type": "null"} in variants and len(variants) == 2:
            (kept,) = [variant for variant in variants if variant != {"type": "null"}]
            del schema["anyOf"]
            parameter["schema"] = kept | schema


def _code_table() -> str:
    rows = [f"| `{code}` | {status} | {meaning} |" for code, (status, meaning) in PROBLEM_CODES.items()]
    return "\n\n## Problem codes\n\n| code | status | meaning |\n| --- | --- | --- |\n" + "\n".join(rows)


def document_contract(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schema["info"]["description"] += _code_table()
        for operations in schema["paths"].values():
            for operation in operations.values():
                _never_null_parameters(operation)
                responses = operation["responses"]
                errors = {int(status) for status in responses if status[0] in "45"} | _common_statuses(operation)
                for status in errors:
                    responses[str(status)] = _problem_response(status)
                operation["responses"] = dict(sorted(responses.items()))
        _bound_formats(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
