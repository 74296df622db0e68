"""What contract fuzzing (tests/e2e/test_fuzz_contract.py) found, each pinned by a direct test."""

import pytest
from pydantic import ValidationError

from billing_api.patients.schemas import ServiceLineCreate
from tests.factories import PASSWORD


async def test_a_wrong_method_names_every_method_of_the_path_in_allow(client):
    # GET and POST /v1/users are two routes; Starlette named only the first one's methods.
    response = await client.request("OPTIONS", "/v1/users")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert (await client.delete("/v1/users")).headers["allow"] == "GET, POST"
    assert (await client.put("/v1/bills/00000000-0000-0000-0000-000000000001")).headers["allow"] == \
        "DELETE, GET, PATCH"


def test_an_integral_float_is_an_integer_and_nothing_else_is():
    # JSON Schema's `integer` includes 1.0; booleans, strings and fractions stay errors (docs/stack-notes.md, trap 11).
    line = ServiceLineCreate(description="Visit", units=2.0, fee_cents=9500.0)
    assert (line.units, line.fee_cents) == (2, 9500) and isinstance(line.fee_cents, int)
    for bad in ({"fee_cents": 1.5}, {"fee_cents": True}, {"fee_cents": "9500"}, {"fee_cents": -1.0},
                {"units": 1001.0}):
        with pytest.raises(ValidationError):
            ServiceLineCreate(**{"description": "Visit", "units": 1, "fee_cents": 1} | bad)


def test_integer_bounds_stay_in_the_contract():
    fee = ServiceLineCreate.model_json_schema()["properties"]["fee_cents"]
    assert fee["type"] == "integer" and fee["minimum"] == 0 and fee["maximum"] == 10_000_000


async def test_an_empty_current_password_is_a_schema_error(client, factory):
    company = await factory.company()
    user = await factory.user(company)
    response = await client.patch("/v1/profiles/me", json={"email": "new@example.org", "current_password": ""},
                                  headers=factory.headers(user))
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"][0]["location"] == ["body", "current_password"]


async def test_an_empty_grant_type_counts_as_left_out(client, factory):
    company = await factory.company()
    user = await factory.user(company)
    for grant_type in ("", "password"):
        response = await client.post("/v1/auth/token", data={"username": user.username, "password": PASSWORD,
                                                             "grant_type": grant_type})
        assert response.status_code == 200, response.text
    response = await client.post("/v1/auth/token", data={"username": user.username, "password": PASSWORD,
                                                         "grant_type": "client_credentials"})
    assert response.status_code == 422


def test_the_active_company_header_is_never_null_in_the_contract(shared_app):
    parameters = shared_app.openapi()["paths"]["/v1/bills"]["get"]["parameters"]
    (header,) = [parameter for parameter in parameters if parameter["in"] == "header"]
    assert header["name"] == "X-Company-Id"
    # A header is sent or not; `null` in the schema made schemathesis send the text "null" (a 422).
    assert header["schema"]["type"] == "string" and header["schema"]["format"] == "uuid"
    assert "anyOf" not in header["schema"]
