"""The authorization matrix: for EVERY route of the app, the status each class of caller gets.

The world is `build_route_world` (tests/authz/world.py): one clinic, child of a network, with billing
segregation ON, so that only rules 4 and 5 (and support's rule 2) reach the owner's bills there. Each row names
a route by (method, path template); its path parameters point at the world's objects (DEFAULT_TARGETS, or the
row's own `targets`) and its body is valid, so the status reflects authorization alone. A row whose callers may
act gets the route's success status; where the write meets the world's state first, the row says which status.

Adding a route is one line in ROWS. `python -m tests.authz.route_matrix` writes docs/authorization-matrix.md.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.routing import BaseRoute

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "authorization-matrix.md"

# The classes of caller, in the table's column order. `anonymous` sends no token; `deactivated_delegate`
# sends a token issued to a user who is deactivated (rule 1). The others are users of tests/authz/world.py.
CALLERS = (
    "anonymous",
    "owner",                 # the provider whose bills the targets are
    "delegate_user",         # on the owner's list by name (data entry)
    "group_delegate",        # on the owner's list through a group (financial viewer)
    "deactivated_delegate",  # on the owner's list (administrator), deactivated
    "invited_viewer",        # invited users on the owner's team, one per role preset
    "invited_entry",
    "invited_admin",
    "invited_custom",        # custom: bills:view and invoices:view
    "expired_delegate",      # on the owner's list (administrator) by an entry that has expired
    "role_biller",           # holds the data-entry permissions through a group's role, not on the list
    "other_provider",        # a provider of the same clinic, not delegated
    "admin_one",             # users:edit_others only
    "admin_both",            # users:edit_others + billing:delegation_settings
    "company_admin",         # company admin of the clinic
    "parent_admin",          # company admin of the clinic's parent company
    "support",               # the vendor's support (read-only, every company)
    "outsider",              # a user of another company
)

SHORT = {
    "anonymous": "anon", "owner": "owner", "delegate_user": "dlg user", "group_delegate": "dlg group",
    "deactivated_delegate": "deactiv.", "invited_viewer": "inv viewer", "invited_entry": "inv entry",
    "invited_admin": "inv admin", "invited_custom": "inv custom", "expired_delegate": "expired",
    "role_biller": "role biller", "other_provider": "other prov",
    "admin_one": "admin 1", "admin_both": "admin 2", "company_admin": "co admin", "parent_admin": "parent admin",
    "support": "support", "outsider": "outsider",
}

NO_TOKEN = {"anonymous", "deactivated_delegate"}  # 401 on every route that needs a caller
INVITED = {"invited_viewer", "invited_entry", "invited_admin", "invited_custom"}
# Reach the clinic (rule 3): its own people and the parent's company admin. Invited users reach no company.
CLINIC = {"owner", "delegate_user", "group_delegate", "expired_delegate", "role_biller", "other_provider",
          "admin_one", "admin_both", "company_admin", "parent_admin"}
# Users' and groups' administrators of the clinic (company admins, users:edit_others).
USER_ADMINS = {"admin_one", "admin_both", "company_admin", "parent_admin"}
COMPANY_ADMINS = {"company_admin", "parent_admin"}
# Rule 7: the provider manages their own list; holders of both permissions manage any list they reach.
LIST_MANAGERS = {"owner", "admin_both"}
# Who knows the owner as a provider (same company, support, or named on the owner's list): 403, not 404, when
# they may not manage the owner's list or team.
KNOWS_OWNER = CLINIC | INVITED | {"support"}
# Who holds each billing permission on the owner's bills, segregation on (rules 2, 4, 5).
VIEW = {"owner", "delegate_user", "group_delegate", "support"} | INVITED
SAVE = SUBMIT = DELETE = {"owner", "delegate_user", "invited_entry", "invited_admin"}
REPORTS = {"owner", "group_delegate", "invited_viewer", "invited_admin", "support"}
INVOICES = {"owner", "group_delegate", "invited_viewer", "invited_admin", "invited_custom", "support"}
PAY = {"owner", "group_delegate", "invited_viewer", "invited_admin"}
# A patient's billing data (settings, cards, documents): automation managers (company admins), and whoever may
# use the permission on a provider who bills or treats the patient (the owner, and other_provider who bills
# them too). Invited users reach no practice's patients (404), as on every patient surface.
PATIENT_VIEW = (COMPANY_ADMINS | VIEW | {"other_provider"}) - INVITED
PATIENT_SAVE = (COMPANY_ADMINS | SAVE | {"other_provider"}) - INVITED


def statuses(ok: Iterable[str] = (), status: int = 200, *, forbidden: Iterable[str] = (), others: int = 404,
             public: bool = False, **exact: int) -> dict[str, int]:
    """Expected status per caller: `ok` callers get `status`, `forbidden` ones 403, the rest `others`;
    without a valid token 401, unless the route is `public`. `exact` sets single callers."""
    ok, forbidden = set(ok), set(forbidden)
    table = {}
    for caller in CALLERS:
        if public:
            table[caller] = status
        elif caller in NO_TOKEN:
            table[caller] = 401
        elif caller in ok:
            table[caller] = status
        elif caller in forbidden:
            table[caller] = 403
        else:
            table[caller] = others
    table.update(exact)
    return table


AUTHENTICATED = set(CALLERS) - NO_TOKEN


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    expect: dict[str, int]
    # Path parameter -> name of a world object (see DEFAULT_TARGETS); strings in query, json and form may
    # name world objects as "{name}", and "{self}" is the caller's username.
    targets: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, Any] | None = None
    json: Any = None
    form: Mapping[str, str] | None = None
    # A list answers 200 to everyone: world object name -> the callers whose answer names it (its id). Also
    # what an answer shows only to some of the callers it answers 200 (the encounter's fee).
    reveals: Mapping[str, set[str]] = field(default_factory=dict)
    note: str = ""
    file: str | None = None  # for a mounted folder: the file below it to request

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path


DEFAULT_TARGETS = {
    "bill_id": "owner_bill",           # the owner's draft insured bill (in the encounter and the visit)
    "patient_id": "patient",
    "encounter_id": "encounter",
    "provider_id": "owner",
    "company_id": "clinic",
    "user_id": "staff",                # a plain user of the clinic
    "group_id": "clerks",              # the group on the owner's list
    "invitation_id": "pending_invitation",
    "payer_id": "payer",
    "facility_id": "facility",
    "payment_method_id": "card",
    "document_id": "superbill",        # a superbill of the patient's
}

LINE = {"cpt_code": "99214", "description": "Longer visit", "units": 1, "fee_cents": 9000}
AUTOMATION = {"bill_creation": "daily", "superbill_day": 5, "bills": {"enabled": True, "delay_minutes": 90},
              "superbills": {"enabled": False, "delay_minutes": 30},
              "statements": {"enabled": False, "delay_minutes": 60}, "autopay_enabled": False}
PASSWORD = "correct horse battery"  # every world user's (tests/factories.py)
NEW_PASSWORD = "a long and unusual passphrase 42"
PUBLIC = statuses(public=True)
EVERYONE = statuses(AUTHENTICATED)
# Records of the clinic (users, groups, patients, encounters...): whoever reaches it, and support (read-only).
CLINIC_RECORD = statuses(CLINIC | {"support"})
PARENT = {"company_id": "network"}

ROWS: list[Row] = [
    # Framework and health
    Row("GET", "/openapi.json", PUBLIC),
    Row("GET", "/docs", PUBLIC),
    Row("GET", "/docs/static", PUBLIC, file="swagger-ui.css",
        note="the docs page's packaged scripts and styles (a mount: one of its files is requested)"),
    Row("GET", "/healthz", PUBLIC),
    Row("GET", "/readyz", PUBLIC),
    Row("GET", "/metrics", PUBLIC, note="open unless BILLING_API_METRICS_TOKEN is set (then a bearer token)"),
    # Auth and self
    Row("POST", "/v1/auth/token", statuses(AUTHENTICATED), form={"username": "{self}", "password": PASSWORD},
        note="each caller logs in as themself with the right password (anonymous: an unknown login)"),
    Row("GET", "/v1/me", EVERYONE),
    Row("GET", "/v1/me/companies", EVERYONE),
    Row("GET", "/v1/profiles/me", EVERYONE),
    Row("PATCH", "/v1/profiles/me", EVERYONE, json={"display_name": "Renamed"}),
    Row("GET", "/v1/profiles/{user_id}", CLINIC_RECORD),
    Row("GET", "/v1/roles", EVERYONE),
    Row("GET", "/v1/events", statuses(AUTHENTICATED - {"support"}, forbidden={"support"}),
        note="each caller sees the events of the bills they may view; company events only company admins"),
    # Companies
    Row("GET", "/v1/companies", EVERYONE, reveals={"clinic": CLINIC | {"support"}}),
    Row("POST", "/v1/companies", statuses({"parent_admin"}, 201, forbidden={"support"}),
        json={"name": "New child", "parent_id": "{network}"}),
    Row("GET", "/v1/companies/{company_id}", CLINIC_RECORD),
    Row("PATCH", "/v1/companies/{company_id}", statuses(COMPANY_ADMINS, forbidden=CLINIC | {"support"}),
        json={"name": "Clinic renamed"}),
    # Users, groups, directory
    Row("POST", "/v1/users", statuses(USER_ADMINS, 201, forbidden=CLINIC | {"support"}),
        json={"company_id": "{clinic}", "email": "new.user@example.org", "username": "new.user",
              "display_name": "New User", "password": NEW_PASSWORD}),
    Row("GET", "/v1/users", EVERYONE, reveals={"staff": CLINIC | {"support"}}),
    Row("GET", "/v1/users/{user_id}", CLINIC_RECORD),
    Row("PATCH", "/v1/users/{user_id}", statuses(USER_ADMINS, forbidden=CLINIC | {"support"}),
        json={"display_name": "Renamed"}),
    Row("POST", "/v1/users/{user_id}/deactivate", statuses(USER_ADMINS, forbidden=CLINIC | {"support"})),
    Row("POST", "/v1/users/{user_id}/reactivate", statuses(USER_ADMINS, forbidden=CLINIC | {"support"})),
    Row("POST", "/v1/groups", statuses(USER_ADMINS, 201, forbidden=CLINIC | {"support"}),
        json={"company_id": "{clinic}", "name": "New group"}),
    Row("GET", "/v1/groups", EVERYONE, reveals={"clerks": CLINIC | {"support"}}),
    Row("GET", "/v1/groups/{group_id}", CLINIC_RECORD),
    Row("PATCH", "/v1/groups/{group_id}", statuses(USER_ADMINS, forbidden=CLINIC | {"support"}),
        json={"name": "Renamed clerks"}),
    Row("GET", "/v1/groups/{group_id}/members", CLINIC_RECORD),
    Row("PUT", "/v1/groups/{group_id}/members", statuses(USER_ADMINS, forbidden=CLINIC | {"support"}),
        json={"user_ids": ["{group_delegate}"]}),
    Row("GET", "/v1/directory", CLINIC_RECORD, query={"q": "Owner", "company_id": "{clinic}"},
        reveals={"owner": CLINIC | {"support"}}),
    # Billing customer assignments (child companies handed to users and groups)
    Row("GET", "/v1/users/{user_id}/billing-customer-assignments",
        statuses(USER_ADMINS, forbidden=CLINIC | {"support"}),
        note="a user's assignments (with what is removable) are the user administrators' screen"),
    Row("PUT", "/v1/users/{user_id}/billing-customer-assignments",
        statuses(USER_ADMINS, forbidden=CLINIC | {"support"}), json={"company_ids": []}),
    Row("GET", "/v1/groups/{group_id}/billing-customer-assignments", CLINIC_RECORD),
    Row("PUT", "/v1/groups/{group_id}/billing-customer-assignments",
        statuses(USER_ADMINS, forbidden=CLINIC | {"support"}), json={"company_ids": []}),
    # Payers and facilities, kept at the parent level (copy-down to the clinic)
    Row("GET", "/v1/companies/{company_id}/payers", statuses({"parent_admin", "support"}), targets=PARENT),
    Row("POST", "/v1/companies/{company_id}/payers", statuses({"parent_admin"}, 201, forbidden={"support"}),
        targets=PARENT, json={"name": "Aetna"}),
    Row("GET", "/v1/companies/{company_id}/payers/{payer_id}", statuses({"parent_admin", "support"}),
        targets=PARENT),
    Row("PATCH", "/v1/companies/{company_id}/payers/{payer_id}", statuses({"parent_admin"}, forbidden={"support"}),
        targets=PARENT, json={"name": "Blue Cross"}),
    Row("DELETE", "/v1/companies/{company_id}/payers/{payer_id}",
        statuses({"parent_admin"}, 204, forbidden={"support"}), targets=PARENT),
    Row("POST", "/v1/companies/{company_id}/payers/{payer_id}/copy",
        statuses({"parent_admin"}, forbidden={"support"}), targets=PARENT, json={"company_ids": ["{clinic}"]}),
    Row("GET", "/v1/companies/{company_id}/facilities", statuses({"parent_admin", "support"}), targets=PARENT),
    Row("POST", "/v1/companies/{company_id}/facilities", statuses({"parent_admin"}, 201, forbidden={"support"}),
        targets=PARENT, json={"name": "North Clinic"}),
    Row("GET", "/v1/companies/{company_id}/facilities/{facility_id}", statuses({"parent_admin", "support"}),
        targets=PARENT),
    Row("PATCH", "/v1/companies/{company_id}/facilities/{facility_id}",
        statuses({"parent_admin"}, forbidden={"support"}), targets=PARENT, json={"name": "South Clinic"}),
    Row("DELETE", "/v1/companies/{company_id}/facilities/{facility_id}",
        statuses({"parent_admin"}, 204, forbidden={"support"}), targets=PARENT),
    Row("POST", "/v1/companies/{company_id}/facilities/{facility_id}/copy",
        statuses({"parent_admin"}, forbidden={"support"}), targets=PARENT, json={"company_ids": ["{clinic}"]}),
    # Patients, visits, encounters (the practice's records: not bills)
    Row("POST", "/v1/patients", statuses(CLINIC, 201, forbidden={"support"}),
        json={"company_id": "{clinic}", "first_name": "New", "last_name": "Patient"}),
    Row("GET", "/v1/patients", EVERYONE, reveals={"patient": CLINIC | {"support"}}),
    Row("GET", "/v1/patients/{patient_id}", CLINIC_RECORD),
    Row("PATCH", "/v1/patients/{patient_id}", statuses(CLINIC, forbidden={"support"}), json={"first_name": "Renamed"}),
    Row("POST", "/v1/visits", statuses(CLINIC, 201, forbidden={"support"}),
        json={"patient_id": "{patient}", "provider_id": "{owner}", "scheduled_at": "2026-11-20T15:00:00Z"}),
    Row("POST", "/v1/encounters", statuses(CLINIC, 201, forbidden={"support"}),
        json={"patient_id": "{patient}", "provider_id": "{owner}", "service_date": "2026-11-20", "lines": [LINE]}),
    Row("GET", "/v1/encounters/{encounter_id}", CLINIC_RECORD, reveals={"encounter_fee": VIEW - INVITED},
        note="the encounter's clinical part to whoever sees it; its fees only to those who may view the owner's "
             "bills (null for the others)"),
    # Bills on every surface (lists filter; a bill one may not see is 404)
    Row("GET", "/v1/bills", EVERYONE, reveals={
        "owner_bill": VIEW, "other_bill": {"other_provider", "support"}, "elsewhere_bill": {"outsider", "support"}}),
    Row("POST", "/v1/bills", statuses(SAVE, 201, forbidden=VIEW),
        json={"provider_id": "{owner}", "patient_id": "{patient}", "coverage": "private",
              "service_date": "2026-11-03", "lines": [LINE]}),
    Row("GET", "/v1/bills/{bill_id}", statuses(VIEW)),
    Row("GET", "/v1/bills/{bill_id}/pdf", statuses(VIEW), note="exactly the bill's JSON read"),
    Row("PATCH", "/v1/bills/{bill_id}", statuses(SAVE, forbidden=VIEW), json={"lines": [LINE]}),
    Row("POST", "/v1/bills/{bill_id}/submit", statuses(SUBMIT, forbidden=VIEW)),
    Row("DELETE", "/v1/bills/{bill_id}", statuses(DELETE, 204, forbidden=VIEW)),
    Row("GET", "/v1/encounters/{encounter_id}/bills", CLINIC_RECORD, reveals={"owner_bill": VIEW - INVITED}),
    Row("GET", "/v1/patients/{patient_id}/bills", CLINIC_RECORD, reveals={
        "owner_bill": VIEW - INVITED, "other_bill": {"other_provider", "support"}}),
    Row("GET", "/v1/visits", EVERYONE, reveals={"visit": CLINIC | {"support"}, "owner_bill": VIEW - INVITED}),
    # What the presets gate
    Row("GET", "/v1/providers/{provider_id}/reports/billing-summary", statuses(REPORTS, forbidden=VIEW),
        query={"from": "2026-11-01", "to": "2026-11-30"}),
    Row("GET", "/v1/providers/{provider_id}/invoices", statuses(INVOICES, forbidden=VIEW),
        reveals={"submitted_bill": INVOICES}),
    Row("POST", "/v1/bills/{bill_id}/payments", statuses(PAY, 201, forbidden=VIEW),
        targets={"bill_id": "submitted_bill"}, json={"amount_cents": 1000, "method": "card"}),
    # Delegation lists, transparency, segregation
    Row("GET", "/v1/providers/{provider_id}/delegation", statuses(LIST_MANAGERS, forbidden=KNOWS_OWNER)),
    Row("PUT", "/v1/providers/{provider_id}/delegation", statuses(LIST_MANAGERS, forbidden=KNOWS_OWNER),
        json={"entries": [{"user_id": "{delegate_user}", "role": "data_entry"}], "version": 0,
              "password": PASSWORD}),
    Row("GET", "/v1/access/explain", statuses(LIST_MANAGERS | {"delegate_user"}, forbidden=CLINIC | {"support"}),
        query={"user_id": "{delegate_user}", "provider_id": "{owner}"}),
    Row("GET", "/v1/providers/{provider_id}/access", statuses(LIST_MANAGERS, forbidden=KNOWS_OWNER)),
    Row("GET", "/v1/providers/{provider_id}/access-review", statuses(LIST_MANAGERS, forbidden=KNOWS_OWNER)),
    Row("POST", "/v1/providers/{provider_id}/access-review/attestations",
        statuses(LIST_MANAGERS, 201, forbidden=KNOWS_OWNER), json={"list_version": 0, "password": PASSWORD},
        note="the world's list was never saved: version 0"),
    Row("GET", "/v1/companies/{company_id}/access-review",
        statuses(COMPANY_ADMINS | {"admin_both"}, forbidden=CLINIC | {"support"})),
    Row("GET", "/v1/companies/{company_id}/billing-segregation",
        statuses(COMPANY_ADMINS | {"admin_both"}, forbidden=CLINIC | {"support"})),
    Row("POST", "/v1/companies/{company_id}/billing-segregation",
        statuses(COMPANY_ADMINS | {"admin_both"}, 409, forbidden=CLINIC | {"support"}),
        json={"password": PASSWORD}, note="segregation is on already: those who may manage it get 409"),
    # Invited users (the owner's team)
    Row("GET", "/v1/providers/{provider_id}/team", statuses(LIST_MANAGERS, forbidden=KNOWS_OWNER)),
    Row("POST", "/v1/providers/{provider_id}/invitations",
        statuses(LIST_MANAGERS, 201, forbidden=KNOWS_OWNER),
        json={"email": "invitee@mail.example.org", "username": "invitee.one", "role": "data_entry"}),
    Row("POST", "/v1/invitations/{invitation_id}/resend", statuses(LIST_MANAGERS, forbidden=KNOWS_OWNER)),
    Row("DELETE", "/v1/invitations/{invitation_id}", statuses(LIST_MANAGERS, 204, forbidden=KNOWS_OWNER)),
    Row("POST", "/v1/invitations/accept", statuses(others=403, anonymous=200),
        json={"token": "{accept_token}", "password": NEW_PASSWORD},
        note="a newcomer's invitation: accepted signed out; a signed-in caller is the wrong account"),
    Row("PATCH", "/v1/providers/{provider_id}/team/{user_id}",
        statuses(LIST_MANAGERS, forbidden=KNOWS_OWNER), targets={"user_id": "invited_viewer"},
        json={"role": "data_entry"}),
    Row("DELETE", "/v1/providers/{provider_id}/team/{user_id}",
        statuses(LIST_MANAGERS, 204, forbidden=KNOWS_OWNER), targets={"user_id": "invited_viewer"}),
    # Billing automation
    Row("GET", "/v1/companies/{company_id}/billing-automation",
        statuses(COMPANY_ADMINS | {"support"}, forbidden=CLINIC)),
    Row("PUT", "/v1/companies/{company_id}/billing-automation",
        statuses(COMPANY_ADMINS, forbidden=CLINIC | {"support"}), json=AUTOMATION),
    Row("POST", "/v1/companies/{company_id}/billing-automation/apply-defaults",
        statuses(COMPANY_ADMINS, forbidden=CLINIC | {"support"})),
    Row("POST", "/v1/companies/{company_id}/billing-automation/runs",
        statuses(COMPANY_ADMINS, forbidden=CLINIC | {"support"}), json={"date": "2026-11-20"}),
    Row("GET", "/v1/companies/{company_id}/billing-automation/runs",
        statuses(COMPANY_ADMINS | {"support"}, forbidden=CLINIC)),
    Row("GET", "/v1/patients/{patient_id}/billing-settings", statuses(PATIENT_VIEW, forbidden=CLINIC)),
    Row("GET", "/v1/patients/{patient_id}/access-log",
        statuses(COMPANY_ADMINS | {"owner", "other_provider"}, forbidden=(PATIENT_VIEW | CLINIC) - COMPANY_ADMINS),
        note="company admins see every entry; a provider billing the patient sees the entries that showed their "
             "own bills; others who see the patient 403"),
    Row("PATCH", "/v1/patients/{patient_id}/billing-settings",
        statuses(PATIENT_SAVE, forbidden=CLINIC | {"support"}), json={"autopay_enabled": True}),
    Row("GET", "/v1/patients/{patient_id}/billing-settings/effective",
        statuses(PATIENT_VIEW, forbidden=CLINIC)),
    Row("GET", "/v1/patients/{patient_id}/payment-methods", statuses(PATIENT_VIEW, forbidden=CLINIC)),
    Row("POST", "/v1/patients/{patient_id}/payment-methods",
        statuses(PATIENT_SAVE, 201, forbidden=CLINIC | {"support"}),
        json={"token": "tok_mastercard", "brand": "mastercard", "last4": "4444", "exp_month": 1, "exp_year": 2099}),
    Row("DELETE", "/v1/patients/{patient_id}/payment-methods/{payment_method_id}",
        statuses(PATIENT_SAVE, 204, forbidden=CLINIC | {"support"})),
    Row("GET", "/v1/patients/{patient_id}/documents", statuses(PATIENT_VIEW, forbidden=CLINIC)),
    # Billing identity (what claims and superbills name)
    Row("GET", "/v1/providers/{provider_id}/billing-identity", statuses(KNOWS_OWNER),
        note="whoever knows the provider, their delegates and invited team included: it is printed on every "
             "document they prepare"),
    Row("PUT", "/v1/providers/{provider_id}/billing-identity",
        statuses({"owner"} | COMPANY_ADMINS, forbidden=KNOWS_OWNER),
        json={"npi": "1234567893", "credentials": "MD"}),
    Row("GET", "/v1/companies/{company_id}/billing-identity", CLINIC_RECORD),
    Row("PUT", "/v1/companies/{company_id}/billing-identity",
        statuses(COMPANY_ADMINS, forbidden=CLINIC | {"support"}),
        json={"legal_name": "Clinic PC", "tax_id": "12-3456789", "place_of_service": "11"}),
    Row("POST", "/v1/patients/{patient_id}/documents",
        statuses(SAVE - INVITED, 201, forbidden=(CLINIC | {"support"}) - {"other_provider"} - COMPANY_ADMINS),
        json={"kind": "superbill", "encounter_ids": ["{encounter}"]},
        note="a superbill of the owner's session: who may save the owner's bills; those who see the patient but "
             "not the owner's bills (another provider billing them, company admins) 404 on the encounter"),
    Row("GET", "/v1/patients/{patient_id}/documents/{document_id}", statuses(PATIENT_VIEW, forbidden=CLINIC)),
    Row("GET", "/v1/patients/{patient_id}/documents/{document_id}/pdf", statuses(PATIENT_VIEW, forbidden=CLINIC),
        note="the list's rules; a `bill` document's PDF is its bill's, under the bill's rules"),
    # Audit
    Row("GET", "/v1/audit-events", EVERYONE),
]

MATRIX: dict[tuple[str, str], Row] = {row.key: row for row in ROWS}


def app_routes(router, prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    """(full path template, route) of every route the app serves, through FastAPI's included routers."""
    for route in router.routes:
        if hasattr(route, "original_router"):
            yield from app_routes(route.original_router, prefix + route.include_context.prefix)
        else:
            yield prefix + route.path, route


def route_keys(app) -> list[tuple[str, str]]:
    """(method, path template) of every route; HEAD is the GET that Starlette answers for it, and a mounted
    app (no methods of its own, say a metrics endpoint) is listed as GET."""
    keys = {(method, path) for path, route in app_routes(app)
            for method in (getattr(route, "methods", None) or {"GET"}) - {"HEAD"}}
    return sorted(keys, key=lambda key: (key[1], key[0]))


PLACEHOLDER = re.compile(r"\{(\w+)\}")


def resolve(value: Any, names: Mapping[str, str]) -> Any:
    """Replace "{name}" in strings (recursively) with the world's ids."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: names[m.group(1)], value)
    if isinstance(value, list):
        return [resolve(v, names) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, names) for k, v in value.items()}
    return value


def request_of(row: Row, names: Mapping[str, str]) -> dict[str, Any]:
    """httpx.request keyword arguments for the row, pointing at the world's objects."""
    params = {param: names[row.targets.get(param, DEFAULT_TARGETS[param])]
              for param in PLACEHOLDER.findall(row.path)}
    url = row.path.format(**params) + (f"/{row.file}" if row.file else "")
    request: dict[str, Any] = {"method": row.method, "url": url}
    for key in ("query", "json", "form"):
        value = getattr(row, key)
        if value is not None:
            request[{"query": "params", "form": "data"}.get(key, key)] = resolve(value, names)
    return request


def table(rows: Iterable[Row], actual: Mapping[tuple[str, str], Mapping[str, int]] | None = None) -> str:
    """A Markdown table: one line per route, one column per caller. With `actual`, a cell that differs
    reads `expected≠actual` and is marked."""
    header = "| route | " + " | ".join(SHORT[c] for c in CALLERS) + " |"
    lines = [header, "|" + " --- |" * (len(CALLERS) + 1)]
    for row in rows:
        cells = []
        for caller in CALLERS:
            expected = row.expect[caller]
            got = (actual or {}).get(row.key, {}).get(caller, expected)
            cells.append(str(expected) if got == expected else f"**{expected}≠{got}**")
        lines.append(f"| `{row.method} {row.path}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def document() -> str:
    legend = "\n".join(f"- **{SHORT[c]}**: `{c}`" for c in CALLERS)
    reveals = "\n".join(
        f"- `{row.method} {row.path}`: " + "; ".join(
            f"{name}: " + ", ".join(SHORT[c] for c in CALLERS if c in callers) for name, callers in row.reveals.items())
        for row in ROWS if row.reveals)
    notes = "\n".join(f"- `{row.method} {row.path}`: {row.note}." for row in ROWS if row.note)
    return f"""# Authorization matrix

Generated from `tests/authz/route_matrix.py` by `python -m tests.authz.route_matrix`; do not edit by hand.
`tests/authz/test_route_matrix.py` calls every route of the app as every class of caller through the ASGI app
and checks each status below, and fails if a route has no row here (or a row has no route).

The world (`tests/authz/world.py`, `build_route_world`): a clinic (child of a network) with billing
segregation **on**; targets are the owner's bill, patient, encounter, list, team and invitation, the clinic,
a plain clinic user, the group on the owner's list, and payers and facilities of the parent company. Bodies
are valid, so a status tells who may act: 2xx done, 401 no valid token, 403 seen but not permitted, 404 not
visible to that caller (existence is not revealed). Lists answer 200 and filter what they return.

Callers:
{legend}

{table(ROWS)}

What lists (answering 200 to everyone) show, and what an answer shows only to some of its callers (the
encounter's fee), checked by the same test: the callers whose answer names each of the world's objects; nobody
else's answer does.

{reveals}

Notes:
{notes}
"""


if __name__ == "__main__":
    DOCUMENT.parent.mkdir(exist_ok=True)
    DOCUMENT.write_text(document())
    sys.stdout.write(f"wrote {DOCUMENT.relative_to(ROOT)} ({len(ROWS)} routes x {len(CALLERS)} callers)\n")
