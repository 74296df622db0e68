"""Domain errors and their RFC 9457 problem+json form, each with a stable `code`."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from billing_api.observability import context

logger = logging.getLogger("billing_api")

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """An error a client can act on. `code` is stable: clients and SDKs branch on it."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        audit_events: list[Any] | None = None,
        commit: bool = False,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        if status:
            self.status = status
        self.extra = extra or {}
        self.headers = headers
        # Written and committed after the request's rollback (see db.get_session).
        self.audit_events = audit_events or []
        # The refusal is itself the request's change (a counted failed password, say): the request's
        # transaction commits, with the audit events, instead of rolling back. Only for errors raised
        # before the request has written anything else.
        self.commit = commit


class NotFound(DomainError):
    status, code, title = 404, "not_found", "Not found"


class Unauthenticated(DomainError):
    status, code, title = 401, "unauthenticated", "Unauthenticated"

    def __init__(self, detail: str = "Missing or invalid credentials.", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(DomainError):
    status, code, title = 403, "forbidden", "Forbidden"


class Conflict(DomainError):
    status, code, title = 409, "conflict", "Conflict"


class Unprocessable(DomainError):
    status, code, title = 422, "unprocessable", "Unprocessable content"


class TooManyRequests(DomainError):
    status, code, title = 429, "rate_limited", "Too many requests"


class PreconditionFailed(DomainError):
    status, code, title = 412, "precondition_failed", "Precondition failed"


class DatabaseUnavailable(DomainError):
    status, code, title = 503, "database_unavailable", "Service unavailable"

    def __init__(self, detail: str = "The database does not answer; try again shortly.", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": "5"})
        super().__init__(detail, **kwargs)


# Every `code` the service can answer with, its status and what it means. The contract is generated from this
# table (contract.py lists each status's codes on every error response), and tests/test_openapi.py fails
# when src raises a code missing here, so the documentation cannot drift from the code.
PROBLEM_CODES: dict[str, tuple[int, str]] = {
    # Common to many operations (contract.COMMON_PROBLEMS adds them where they apply).
    "malformed_body": (400, "The body is not valid JSON or not a form."),
    "bad_request": (400, "The request cannot be served as sent."),
    "unauthenticated": (401, "No bearer token, or one that is malformed, expired or forged."),
    "token_revoked": (401, "The token's user was deactivated or logged out everywhere; log in again."),
    "invalid_credentials": (401, "Wrong username or password (also for unknown and deactivated users)."),
    "invitation_login_required": (401, "The invited email already has an account: log in, then accept."),
    "forbidden": (403, "The caller sees the resource but may not do this."),
    "not_found": (404, "No such resource, or one the caller may not see."),
    "method_not_allowed": (405, "The path does not take this method."),
    "not_acceptable": (406, "No representation matches the Accept header."),
    "conflict": (409, "The change conflicts with data written at the same time; nothing was saved."),
    "gone": (410, "The resource existed and is no longer usable."),
    "precondition_failed": (412, "The resource changed since the version the request names."),
    "payload_too_large": (413, "The body is larger than the service accepts."),
    "unsupported_media_type": (415, "The body's media type is not one the operation takes."),
    "validation_error": (422, "The request does not match the schema; `errors` lists each problem."),
    "invalid_value": (422, "A value cannot be stored (a NUL character, say)."),
    "unprocessable": (422, "The request is well formed but breaks a rule."),
    "rate_limited": (429, "Too many requests; retry after the `Retry-After` seconds."),
    "headers_too_large": (431, "The request has more header fields, or longer headers, than the service accepts."),
    "internal_error": (500, "An unexpected error (never expected; reported)."),
    "database_unavailable": (503, "The database does not answer; retry later."),
    # Authentication and password confirmation.
    "mobile_not_available_for_invited_users": (403, "Invited users sign in on the web only."),
    "password_confirmation_failed": (403, "The password confirming a sensitive change is wrong."),
    "password_confirmation_locked": (429, "Too many wrong passwords on the account; retry after `Retry-After`."),
    "login_locked": (429, "Too many failed logins for the account or from the address; retry after `Retry-After`."),
    "password_too_short": (422, "A new password needs at least 12 characters."),
    "password_too_common": (422, "The new password is on the list of common passwords, or a variation of one."),
    "password_same_as_login": (422, "The new password is the username or the email."),
    "current_password_required": (422, "Changing the email or password needs `current_password`."),
    # Companies and the active company.
    "active_company_not_found": (404, "`X-Company-Id` names no company the caller reaches."),
    "company_not_found": (404, "No such company, or one the caller does not reach."),
    "patient_not_found": (404, "No such patient, or one the caller does not reach."),
    "encounter_not_found": (404, "No such encounter, or one the caller does not reach."),
    "visit_not_found": (404, "No such visit, or one the caller does not reach."),
    "company_admin_required": (403, "Only a company administrator may do this."),
    "support_read_only": (403, "Support users read; they never change data."),
    "company_cycle": (422, "The move would put a company under its own child."),
    "company_depth_exceeded": (422, "Companies nest one level deep (parent and children)."),
    "company_not_a_child": (422, "The company named is not a child of this company."),
    "duplicate_company": (422, "The same company is named twice."),
    # Users, groups, profiles.
    "user_not_found": (404, "No such user, or one the caller may not see."),
    "group_not_found": (404, "No such group, or one the caller may not see."),
    "users_edit_forbidden": (403, "Needs `users:edit_others` (or a company administrator)."),
    "groups_edit_forbidden": (403, "Needs `groups:edit` (or a company administrator)."),
    "account_type_forbidden": (403, "Only a company administrator may create or change administrators."),
    "permission_grant_forbidden": (403, "Permissions the caller does not hold cannot be granted."),
    "assignment_grant_forbidden": (403, "Companies the caller does not reach cannot be given."),
    "group_on_delegation_list": (403, "Members join a group named on delegation lists only by someone who manages "
                                      "those lists."),
    "username_taken": (409, "The username is in use."),
    "email_taken": (409, "The email is in use."),
    "group_name_taken": (409, "The company has a group of that name."),
    "cannot_change_own_status": (409, "Users cannot deactivate or reactivate themselves."),
    "billing_number_required": (422, "A provider needs a billing number."),
    "duplicate_member": (422, "The same user is named twice."),
    "member_not_in_company": (422, "Group members must belong to the group's company."),
    "field_required": (422, "A field that may be left out was set to null."),
    "assignment_given_by_role": (422, "The company comes with the user's role; it cannot be removed here."),
    "assignment_given_by_company_admin": (422, "Company administrators reach every company already."),
    "invalid_cursor": (422, "The `cursor` is not one this list returned."),
    # Patients, visits, encounters, bills.
    "provider_not_found": (404, "No such provider, or one the caller may not see."),
    "provider_invalid": (422, "The user named is not an active provider of the company."),
    "visit_mismatch": (422, "The visit belongs to another patient, provider or encounter."),
    "encounter_mismatch": (422, "The encounter belongs to another patient or provider."),
    "cpt_code_required": (422, "Every service line needs a code (only imported encounters' lines may lack one)."),
    "service_code_incomplete": (422, "A service line has `code` without `code_system`, or the reverse."),
    "cpt_code_and_code": (422, "A service line gives both the deprecated `cpt_code` and `code`."),
    "service_code_invalid": (422, "A service line's code does not follow its system's rule (`rule` says it)."),
    "code_system_not_used": (422, "The company does not bill in this code system (`allowed` lists its systems)."),
    "modifiers_not_allowed": (422, "Modifiers are for CPT and HCPCS codes only."),
    "diagnosis_pointer_invalid": (422, "A line points to no diagnosis of the bill or encounter, or to one twice."),
    "diagnosis_code_invalid": (422, "A diagnosis code does not follow its system's rule (`rule` says it)."),
    "duplicate_diagnosis": (422, "The same diagnosis is given twice."),
    "service_date_required": (422, "`service_date` is required without an encounter or visit."),
    "bill_lines_required": (422, "A bill needs at least one service line."),
    "bill_not_found": (404, "No such bill, or one the caller may not see."),
    "bill_not_draft": (409, "Only draft bills can be edited, submitted or deleted."),
    "permission_denied": (403, "The caller sees the provider's bills but lacks the permission for this."),
    # Delegation, segregation, access.
    "delegation_manage_forbidden": (403, "Only the provider or a delegation manager changes the list."),
    "delegation_list_stale": (409, "The list changed since it was read; read it again (`version`)."),
    "access_review_stale": (409, "The delegation list changed since the review was read; read it again."),
    "access_review_forbidden": (403, "Only company administrators and list managers see the company's review."),
    "delegation_entry_invalid": (422, "An entry names no user or group of the company, or both."),
    "segregation_manage_forbidden": (403, "Only a company administrator enables billing segregation."),
    "segregation_already_enabled": (409, "Billing segregation is already on."),
    "segregation_not_ready": (409, "Some providers have empty delegation lists; see `not_ready`."),
    # Team and invitations.
    "team_manage_forbidden": (403, "Only the provider, or a user with both team permissions, manages the team."),
    "team_member_not_found": (404, "The user is not on the provider's team."),
    "invitation_not_found": (404, "No such invitation, or the link is mistyped or replaced."),
    "invitation_wrong_account": (403, "The invitation is for another account, or creates a new one."),
    "invitation_not_pending": (409, "The invitation is no longer pending."),
    "invitation_already_accepted": (409, "The invitation was accepted already."),
    "invitation_pending": (409, "The email has a pending invitation from this provider."),
    "invitation_cancelled": (410, "The invitation was cancelled."),
    "invitation_expired": (410, "The invitation expired; ask for a new email."),
    "invitation_resend_limited": (429, "Too many resends of this invitation; retry later."),
    "invitation_send_limited": (429, "Too many new invitations from this provider this hour; retry later."),
    "already_on_team": (409, "The user is on the provider's team already."),
    "account_deactivated": (409, "On acceptance: the invited email's account is deactivated."),
    "account_not_invitable": (409, "On acceptance: the invited email's account cannot join a provider's team."),
    "cannot_invite_self": (422, "A provider cannot invite themself."),
    "username_required": (422, "On acceptance: a new account needs a `username` (none was suggested)."),
    "password_required": (422, "A new account needs a password."),
    "new_account_fields_not_expected": (422, "An existing account accepts with the token alone."),
    "permissions_with_preset": (422, "Permissions are chosen only with role `custom`."),
    "custom_permissions_required": (422, "A custom role needs at least one permission."),
    "permission_not_delegable": (422, "The permission cannot be given to a team member."),
    # Payers and facilities.
    "payer_not_found": (404, "No such payer in the company."),
    "facility_not_found": (404, "No such facility in the company."),
    "payer_name_taken": (409, "The company has a payer of that name."),
    "facility_name_taken": (409, "The company has a facility of that name."),
    "payer_in_use": (409, "Bills or patients name this payer; it can no longer be deleted."),
    "payer_required": (422, "An insured bill names its payer (given, or the patient's payer of record)."),
    "payer_not_allowed": (422, "A private bill is paid by the patient and names no payer."),
    "payer_not_in_company": (422, "The payer is not one of the company's own (a parent's payer: name its copy)."),
    "payer_not_copied_down": (422, "The parent company's payer was not copied down to this company: copy it first."),
    # Billing identity.
    "billing_identity_edit_forbidden": (403, "Only the provider and company administrators change a provider's "
                                             "billing identity."),
    "npi_format": (422, "An NPI is ten digits."),
    "npi_check_digit": (422, "The NPI's last digit is not its check digit (Luhn over 80840 and the first nine)."),
    "province_required": (422, "A provincial billing number needs its province."),
    "provincial_billing_number_required": (422, "A province needs the billing number it names."),
    "provincial_billing_number_format": (422, "The billing number is not of its province's shape (ON six digits, "
                                              "AB nine digits, BC five characters)."),
    "taxonomy_code_format": (422, "A taxonomy code is three digits, six letters or digits, and X."),
    "tax_id_format": (422, "A US EIN is nine digits, 12-3456789."),
    "tax_id_prefix": (422, "The EIN starts with a prefix the IRS assigns to no one."),
    "business_number_format": (422, "A business number is nine digits, optionally a program account (RT0001)."),
    "business_number_check_digit": (422, "The business number's ninth digit is not its check digit."),
    "business_number_program": (422, "The program account is not RC, RM, RP, RR, RT or RZ with a reference from "
                                     "0001."),
    "phone_format": (422, "A phone number is 10 to 15 digits with the usual separators."),
    "place_of_service_format": (422, "A place of service is a two-digit CMS code."),
    "place_of_service_unknown": (422, "The two digits are not a code of the CMS place-of-service code set."),
    # Reports, invoices, payments.
    "invalid_date_range": (422, "`date_from` is after `date_to`."),
    "bill_not_payable": (409, "Payments are recorded on submitted bills only."),
    "bill_changed": (409, "The bill changed while the payment was recorded; nothing was saved."),
    "payment_exceeds_balance": (422, "The payment is more than the bill's balance."),
    # Billing automation.
    "automation_manage_required": (403, "Needs a company administrator or `billing:automation_manage`."),
    "patient_billing_forbidden": (403, "The caller may not change this patient's billing settings."),
    "payment_method_not_found": (404, "No such payment method for the patient."),
    "document_not_found": (404, "No such billing document for the patient."),
    "automation_not_configured": (422, "The company has no billing automation settings yet."),
    "run_date_in_future": (422, "A run cannot be for a date that has not started in the company's time zone."),
    # Superbills and statements made by hand.
    "document_exists_for_period": (409, "The patient has a document of that kind for the month (made by hand or "
                                        "by the nightly run); `existing_id` names it."),
    "period_or_encounters_required": (422, "Send a period or, for a superbill, `encounter_ids`: one of them."),
    "period_incomplete": (422, "A period needs both `period_start` and `period_end`."),
    "period_end_before_start": (422, "`period_end` is before `period_start`."),
    "period_not_a_month": (422, "A document's period is one calendar month, from its first day to its last."),
    "period_not_ended": (422, "The month has not ended yet in the company's time zone."),
    "encounters_for_superbill_only": (422, "Only a superbill lists chosen sessions; a statement takes a period."),
    "encounter_repeated": (422, "The same encounter is listed twice."),
    "encounters_span_months": (422, "The chosen sessions are in more than one month; make one superbill per month."),
    "encounter_not_billable": (422, "The encounter has no service line with a CPT code."),
    "no_billable_sessions": (422, "The patient has no session with a CPT code in the month."),
    "nothing_owed": (422, "The patient owes nothing for services up to the end of the month: no statement."),
    "access_log_forbidden": (403, "The patient's access log is for company administrators and the patient's "
                                  "providers."),
    # Integrators.
    "idempotency_key_reused": (422, "The `Idempotency-Key` was used for another request (method, path or body)."),
    "idempotency_key_in_progress": (409, "A request with this `Idempotency-Key` is still running; retry shortly."),
    "events_not_for_support": (403, "Support accounts do not read the events feed (their reads are audited per "
                                    "provider on the bill surfaces)."),
}


def codes_for_status(status: int) -> list[str]:
    return [code for code, (code_status, _) in PROBLEM_CODES.items() if code_status == status]


class Problem(BaseModel):
    """RFC 9457 problem details. `code` is stable (the table of codes is in the API description); `detail` is
    for people. Validation errors add `errors`, a list of `{location, message, type}`."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "about:blank", "title": "Not Found", "status": 404, "detail": "No such bill.",
        "code": "bill_not_found", "instance": "/v1/bills/0b4f6c1e-8d5a-4e0b-9a57-3c2d1f0e9b7a"}]})

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    code: str
    instance: str | None = None
    request_id: str | None = None


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.url.path,
    }
    request_id = context.request_id()
    if request_id:  # the same id as the X-Request-ID header and the log lines: support can find the request
        body["request_id"] = request_id
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors():
        errors.append(
            {
                "location": [str(part) for part in error.get("loc", ())],
                "message": error.get("msg", ""),
                "type": error.get("type", ""),
            }
        )
    return errors


_HTTP_CODES = {
    400: "malformed_body",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _allowed_methods(request: Request) -> str | None:
    """Every method the contract gives the path (RFC 9110 15.5.6): Starlette names only those of the first
    route whose path matched, though a path's GET and POST are often two routes. A literal path takes
    precedence over a templated one, as in OpenAPI."""
    path = request.scope["path"]
    templates = sorted(request.app.openapi()["paths"].items(), key=lambda item: item[0].count("{"))
    for template, operations in templates:
        # Paths hold only letters, digits, "/", "-" and "_" besides their {parameters}.
        if re.fullmatch(re.sub(r"\{[^/]+\}", "[^/]+", template), path):
            return ", ".join(sorted(method.upper() for method in operations))
    return None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return problem_response(
            request, exc.status, exc.code, exc.detail, title=exc.title, extra=exc.extra, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        if any(error["type"] == "json_invalid" for error in errors):
            return problem_response(
                request, 400, "malformed_body", "The request body is not valid JSON.", extra={"errors": errors}
            )
        return problem_response(
            request, 422, "validation_error", "The request does not match the schema.", extra={"errors": errors}
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = getattr(exc, "headers", None)
        allowed = _allowed_methods(request) if exc.status_code == 405 else None
        if allowed:
            headers = {**(headers or {}), "Allow": allowed}
        return problem_response(request, exc.status_code, code, detail, headers=headers)

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        # SQLSTATE class 22 (data exception) is a value the database cannot store or compare, such as a
        # NUL character in a string: the client's input, not our failure. The request has rolled back.
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or ""
        if str(sqlstate).startswith("22"):
            return problem_response(
                request, 422, "invalid_value", "A value in the request cannot be stored (a NUL character, say)."
            )
        logger.exception("database error on %s %s", request.method, request.url.path)
        return problem_response(request, 500, "internal_error", "An unexpected error occurred.")

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(request, 500, "internal_error", "An unexpected error occurred.")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the problem+json errors a route's own rules can give (contract.py adds
    the common ones, the media type and the codes)."""
    return {
        status: {"model": Problem, "description": HTTPStatus(status).phrase, "content": {PROBLEM_JSON: {}}}
        for status in statuses
    }
