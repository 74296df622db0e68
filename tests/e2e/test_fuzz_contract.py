"""Contract fuzzing: schemathesis sends generated requests (valid and invalid) to a running service with the
demo data, as several callers, and every response must be one the contract documents: its status code, media
type, body schema and headers. No 500 ever.

CI runs the examples and fuzzing phases with a few examples per operation and caller (FUZZ_EXAMPLES, default
below); bench/fuzz.py runs many more, the coverage phase (FUZZ_COVERAGE=1) and the stateful one
(FUZZ_STATEFUL_STEPS).
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.specs.openapi.checks import positive_data_acceptance, unsupported_method

from billing_api.demo import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
STATEFUL_STEPS = int(os.environ.get("FUZZ_STATEFUL_STEPS", "0"))
COVERAGE = os.environ.get("FUZZ_COVERAGE", "0") == "1"

# One caller of each kind the authorization rules tell apart (docs/concepts.md): a company administrator, a provider
# (owner of bills), a delegate through the clerks' group, a billing user of a child company, the vendor's
# support user, and nobody.
CALLERS = {
    "anonymous": None,
    "company_admin": "clinic.admin",
    "provider": "dr.lovelace",
    "delegate": "clara.clerk",
    "child_company_biller": "barney",
    "support": "support",
}

load_all_checks()


def positive_data_acceptance_beyond_business_rules(ctx, response, case):
    """positive_data_acceptance, except for a 422 whose `code` names a rule the schema cannot state: across
    fields (`invalid_date_range`, `current_password_required`), about data (`invalid_cursor`: only cursors the
    API issued), or `invalid_value` (PostgreSQL text cannot hold a NUL character, which a pattern on every
    string of the contract would be needed to exclude). The contract documents each such 422 with its code.
    A 422 `validation_error` (the schema's own rules) still fails the check."""
    if response.status_code == 422 and response.json().get("code") != "validation_error":
        return None
    return positive_data_acceptance(ctx, response, case)



CHECK_FUNCTIONS = [check for check in CHECKS.get_all() if check is not positive_data_acceptance]
CHECK_FUNCTIONS.append(positive_data_acceptance_beyond_business_rules)

# The checked-in contract, which tests/test_openapi.py keeps equal to what the service serves. (Loading it
# from the running service through `schemathesis.pytest.from_fixture` fails under pytest 9: schemathesis
# 4.32 reads `Function._nodeid`, which pytest 9 no longer has.)
contract = schemathesis.openapi.from_path(ROOT / "openapi" / "openapi.json")
contract.config.generation.update(max_examples=EXAMPLES, deterministic=True)
# The coverage phase (boundary values and every way to break each parameter) sends hundreds of requests per
# operation; the long pass runs it, CI keeps to the examples and the fuzzing phase.
contract.config.phases.coverage.enabled = COVERAGE

# `DELETE /v1/invitations/accept` reaches `DELETE /v1/invitations/{invitation_id}` with the id "accept", a 422
# `validation_error` (tests/team/test_invitation_failures.py wants that for every malformed id), where
# unsupported_method expects the 405 of the literal path, which takes POST only. Starlette matches the
# templated route fully before it would answer 405 for the literal one.
TEMPLATED_TWINS = {"POST /v1/invitations/accept"}


@pytest.fixture(scope="session")
async def fuzz_service(start_live_service):
    """A service of its own: fuzzing changes and breaks demo data (passwords, deactivations, lockouts) that
    the walk-throughs and SDK journeys rely on, and its failed logins from loopback would otherwise trip the
    per-address login limit for every later test."""
    return await start_live_service({"BILLING_API_ADDRESS_MAX_FAILURES": "1000000"})


@pytest.fixture(scope="session")
def bearer_headers(fuzz_service) -> dict[str, dict[str, str]]:
    headers: dict[str, dict[str, str]] = {}
    for caller, username in CALLERS.items():
        if username is None:
            headers[caller] = {}
            continue
        answer = httpx.post(f"{fuzz_service.base_url}/v1/auth/token",
                            data={"username": username, "password": DEMO_PASSWORD}, timeout=30)
        assert answer.status_code == 200, answer.text
        headers[caller] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    return headers


# Values valid only beyond what a JSON schema can say, so a made-up one is rightly a clear 422
# `validation_error` (tests/test_bad_input.py sends unknown zones): a `time_zone` must name a zone of the server's
# IANA database (which differs between tzdata releases), and an email's domain must not be a special-use one
# (RFC 6761: `.test`, `.invalid`, `localhost`...). Positive cases get a real one; negative cases still send
# whatever they generate.
REAL_VALUES = {"time_zone": "America/Toronto", "email": "fuzz@clinic.example", "notice_email": "fuzz@clinic.example"}


def _with_real_values(value):
    if isinstance(value, dict):
        return {key: REAL_VALUES[key] if key in REAL_VALUES and isinstance(item, str) else _with_real_values(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_with_real_values(item) for item in value]
    return value


def keep_positive_cases_valid_beyond_the_schema(case) -> None:
    if case.meta is not None and case.meta.generation.mode is GenerationMode.POSITIVE:
        case.body = _with_real_values(case.body)


@pytest.mark.parametrize("caller", list(CALLERS))
@contract.parametrize()
def test_every_response_is_in_the_contract(case, caller, fuzz_service, bearer_headers):
    keep_positive_cases_valid_beyond_the_schema(case)
    excluded = [unsupported_method] if case.operation.label in TEMPLATED_TWINS else []
    case.call_and_validate(base_url=fuzz_service.base_url, headers=bearer_headers[caller], checks=CHECK_FUNCTIONS,
                           excluded_checks=excluded, timeout=30)


@pytest.mark.skipif(STATEFUL_STEPS == 0, reason="the long pass (bench/fuzz.py) runs the stateful phase")
def test_call_sequences_stay_in_the_contract(fuzz_service, bearer_headers):
    """Sequences of calls, each feeding ids from earlier responses into the next request (links that
    schemathesis infers from the schemas), as a company administrator, who reaches the most operations."""
    headers = bearer_headers["company_admin"]
    answered: list[int] = []

    class Workflow(contract.as_state_machine()):
        def before_call(self, case) -> None:
            keep_positive_cases_valid_beyond_the_schema(case)

        def after_call(self, response, case) -> None:
            answered.append(response.status_code)

        def get_call_kwargs(self, case) -> dict:
            return {"base_url": fuzz_service.base_url, "headers": headers, "timeout": 30}

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            case.validate_response(response, checks=CHECK_FUNCTIONS, headers=headers,
                                   transport_kwargs={"base_url": fuzz_service.base_url, **kwargs})

    Workflow.run(settings=hypothesis.settings(max_examples=EXAMPLES, stateful_step_count=STATEFUL_STEPS,
                                              deadline=None, suppress_health_check=list(hypothesis.HealthCheck)))
    assert any(200 <= status < 300 for status in answered), "no call of any sequence succeeded"
