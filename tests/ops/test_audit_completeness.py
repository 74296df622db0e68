"""Every access-control change writes exactly one audit event, in the change's own transaction.

Each change is made through HTTP with real commits. First a deferred trigger makes the transaction fail at
commit, after the audit row was written: the answer is a 500 problem and the database holds neither the change
nor the event (nothing at all changed). Then, without the fault, the same change succeeds and adds exactly one
audit event, with the right action and subject.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import text

from tests.factories import PASSWORD
from tests.helpers import assert_problem
from tests.ops.faults import changed_tables, database_state, failing_insert
from tests.ops.scene import Scene, build_scene, invitation_token, invite, save_list

Request = Callable[[httpx.AsyncClient, Scene, dict], Awaitable[httpx.Response]]


@dataclass
class Change:
    route: str
    action: str
    target: Callable[[Scene, dict], uuid.UUID]
    request: Request
    prepare: Callable[[httpx.AsyncClient, Scene], Awaitable[dict]] | None = None


async def _pending_invitation(http: httpx.AsyncClient, scene: Scene) -> dict:
    suffix = uuid.uuid4().hex[:8]
    response = await invite(http, scene, f"ops-{suffix}@mail.example.org", f"ops.{suffix}")
    assert response.status_code == 201, response.text
    return {"invitation": response.json()["id"]}


async def _staff_on_the_list(http: httpx.AsyncClient, scene: Scene) -> dict:
    response = await save_list(http, scene, [{"user_id": str(scene.staff.id), "role": "data_entry"}])
    assert response.status_code == 200, response.text
    return {}


def _provider(scene: Scene, made: dict) -> uuid.UUID:
    return scene.provider.id


def _group(scene: Scene, made: dict) -> uuid.UUID:
    return scene.group.id


def _staff(scene: Scene, made: dict) -> uuid.UUID:
    return scene.staff.id


async def _new_user(http, s, made):
    suffix = uuid.uuid4().hex[:8]
    return await http.post("/v1/users", headers=s.h(s.admin), json={
        "company_id": str(s.home.id), "email": f"new-{suffix}@example.org", "username": f"new.{suffix}",
        "display_name": "New Person", "password": "a long and unusual password 8x", "permissions": ["bills:view"]})


async def _new_group(http, s, made):
    return await http.post("/v1/groups", headers=s.h(s.admin), json={
        "company_id": str(s.home.id), "name": f"Billing {uuid.uuid4().hex[:6]}", "permissions": ["bills:view"]})


async def _accept(http, s, made):
    token = await invitation_token(s, made["invitation"])
    return await http.post("/v1/invitations/accept", json={"token": token, "password": "invited person's password"})


def _created(scene: Scene, made: dict) -> uuid.UUID:
    return uuid.UUID(made["response"]["id"])


def call(method: str, path: str, who: str, body=None) -> Request:
    """A request as the scene's `who` to `path` (formatted with the scene `s` and what was prepared, `made`)."""

    async def request(http: httpx.AsyncClient, s: Scene, made: dict) -> httpx.Response:
        return await http.request(method, path.format(s=s, made=made), headers=s.h(getattr(s, who)),
                                  json=body(s) if callable(body) else body)

    return request


def _ids(*users: str):
    return lambda s: {"user_ids": [str(getattr(s, user).id) for user in users]}


CHANGES = {
    "delegation list save": Change(
        "PUT /v1/providers/{provider_id}/delegation", "delegation.list_saved", _provider,
        lambda http, s, made: save_list(http, s, [{"user_id": str(s.staff.id), "role": "financial_viewer"},
                                                  {"group_id": str(s.group.id)}])),
    "access review attested": Change(
        "POST /v1/providers/{provider_id}/access-review/attestations", "access_review.attested", _provider,
        call("POST", "/v1/providers/{s.provider.id}/access-review/attestations", "provider",
             {"list_version": 0, "password": PASSWORD})),
    "segregation on": Change(
        "POST /v1/companies/{company_id}/billing-segregation", "segregation.enabled", lambda s, made: s.home.id,
        call("POST", "/v1/companies/{s.home.id}/billing-segregation", "admin",
             {"password": PASSWORD, "acknowledge_empty_lists": True})),
    "group members set (add and remove)": Change(
        "PUT /v1/groups/{group_id}/members", "group.members_set", _group,
        call("PUT", "/v1/groups/{s.group.id}/members", "admin", _ids("staff2"))),
    "group role change": Change(
        "PATCH /v1/groups/{group_id}", "group.updated", _group,
        call("PATCH", "/v1/groups/{s.group.id}", "admin", {"permissions": ["bills:view", "bills:save"]})),
    "group created with a role": Change("POST /v1/groups", "group.created", _created, _new_group),
    "user created": Change("POST /v1/users", "user.created", _created, _new_user),
    "user deactivated": Change(
        "POST /v1/users/{user_id}/deactivate", "user.deactivated", _staff,
        call("POST", "/v1/users/{s.staff.id}/deactivate", "admin")),
    "user reactivated": Change(
        "POST /v1/users/{user_id}/reactivate", "user.reactivated", lambda s, made: s.inactive.id,
        call("POST", "/v1/users/{s.inactive.id}/reactivate", "admin")),
    "user permissions": Change(
        "PATCH /v1/users/{user_id}", "user.updated", _staff,
        call("PATCH", "/v1/users/{s.staff.id}", "admin", {"permissions": ["users:edit_others"]})),
    "company admin granted": Change(
        "PATCH /v1/users/{user_id}", "user.updated", _staff,
        call("PATCH", "/v1/users/{s.staff.id}", "admin", {"account_type": "company_admin"})),
    "invitation created": Change(
        "POST /v1/providers/{provider_id}/invitations", "invitation.created", _provider,
        lambda http, s, made: invite(http, s, f"inv-{uuid.uuid4().hex[:8]}@mail.example.org",
                                     f"inv.{uuid.uuid4().hex[:8]}")),
    "invitation resent": Change(
        "POST /v1/invitations/{invitation_id}/resend", "invitation.resent", _provider,
        call("POST", "/v1/invitations/{made[invitation]}/resend", "provider"), _pending_invitation),
    "invitation revoked": Change(
        "DELETE /v1/invitations/{invitation_id}", "invitation.cancelled", _provider,
        call("DELETE", "/v1/invitations/{made[invitation]}", "provider"), _pending_invitation),
    "invitation accepted": Change(
        "POST /v1/invitations/accept", "invitation.accepted", _provider, _accept, _pending_invitation),
    "team member role changed": Change(
        "PATCH /v1/providers/{provider_id}/team/{user_id}", "team.member_updated", _provider,
        call("PATCH", "/v1/providers/{s.provider.id}/team/{s.staff.id}", "provider", {"role": "financial_viewer"}),
        _staff_on_the_list),
    "team member revoked": Change(
        "DELETE /v1/providers/{provider_id}/team/{user_id}", "team.member_revoked", _provider,
        call("DELETE", "/v1/providers/{s.provider.id}/team/{s.staff.id}", "provider"), _staff_on_the_list),
    "group billing-customer assignments": Change(
        "PUT /v1/groups/{group_id}/billing-customer-assignments", "group.billing_customer_assignments_set", _group,
        call("PUT", "/v1/groups/{s.group.id}/billing-customer-assignments", "admin",
             lambda s: {"company_ids": [str(s.children[0].id)]})),
    "user billing-customer assignments": Change(
        "PUT /v1/users/{user_id}/billing-customer-assignments", "user.billing_customer_assignments_set", _staff,
        call("PUT", "/v1/users/{s.staff.id}/billing-customer-assignments", "admin",
             lambda s: {"company_ids": [str(s.children[1].id)]})),
    # The parent's company admins reach a child from its creation; moving a company changes who reaches it.
    "child company created": Change(
        "POST /v1/companies", "company.created", _created,
        call("POST", "/v1/companies", "admin", lambda s: {"name": f"Child {uuid.uuid4().hex[:6]}",
                                                          "parent_id": str(s.home.id)})),
    "child company detached": Change(
        "PATCH /v1/companies/{company_id}", "company.updated", lambda s, made: s.children[2].id,
        call("PATCH", "/v1/companies/{s.children[2].id}", "admin", {"parent_id": None})),
}

# Writes that change no one's access (bills, patients, records, settings, a caller's own profile, logging in).
NOT_ACCESS_CONTROL = {
    "POST /v1/auth/token", "PATCH /v1/profiles/me", "POST /v1/patients", "POST /v1/visits", "POST /v1/encounters",
    "POST /v1/bills", "PATCH /v1/bills/{bill_id}", "DELETE /v1/bills/{bill_id}", "POST /v1/bills/{bill_id}/submit",
    "POST /v1/bills/{bill_id}/payments", "POST /v1/companies/{company_id}/payers",
    "PATCH /v1/companies/{company_id}/payers/{payer_id}", "DELETE /v1/companies/{company_id}/payers/{payer_id}",
    "POST /v1/companies/{company_id}/payers/{payer_id}/copy", "POST /v1/companies/{company_id}/facilities",
    "PATCH /v1/companies/{company_id}/facilities/{facility_id}",
    "DELETE /v1/companies/{company_id}/facilities/{facility_id}",
    "POST /v1/companies/{company_id}/facilities/{facility_id}/copy",
    "PUT /v1/companies/{company_id}/billing-automation",
    "POST /v1/companies/{company_id}/billing-automation/apply-defaults",
    "POST /v1/companies/{company_id}/billing-automation/runs", "PATCH /v1/patients/{patient_id}/billing-settings",
    "POST /v1/patients/{patient_id}/payment-methods",
    "DELETE /v1/patients/{patient_id}/payment-methods/{payment_method_id}",
    "PUT /v1/providers/{provider_id}/billing-identity", "PUT /v1/companies/{company_id}/billing-identity",
    "PATCH /v1/patients/{patient_id}",
    "POST /v1/patients/{patient_id}/documents",
}


async def audit_rows(live_engine) -> list[tuple]:
    async with live_engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(
            "SELECT id, action, target_type, target_id FROM audit_event"))]


@pytest.mark.parametrize("name", list(CHANGES))
async def test_an_access_control_change_and_its_one_audit_event_commit_or_roll_back_together(live, live_engine, name):
    http, factory = live
    change = CHANGES[name]
    scene = await build_scene(factory)
    made = await change.prepare(http, scene) if change.prepare else {}

    before = await database_state(live_engine)
    async with failing_insert(live_engine, "audit_event", at_commit=True):
        failed = await change.request(http, scene, made)
    assert_problem(failed, 500, "internal_error")
    assert changed_tables(before, await database_state(live_engine)) == set()  # neither the change nor its event

    events_before = set(await audit_rows(live_engine))
    done = await change.request(http, scene, made)
    assert done.is_success, done.text
    made["response"] = done.json() if done.content else None
    new = set(await audit_rows(live_engine)) - events_before
    assert len(new) == 1, new
    (_, action, _, target_id), = new
    assert (action, target_id) == (change.action, change.target(scene, made))


def test_every_write_route_is_either_in_the_table_or_known_to_change_no_access(shared_app):
    """A new route that writes must be added to CHANGES (with its audit event) or to NOT_ACCESS_CONTROL."""
    writes = {f"{method.upper()} {path}" for path, operations in shared_app.openapi()["paths"].items()
              for method in operations if method != "get"}
    assert {change.route for change in CHANGES.values()} == writes - NOT_ACCESS_CONTROL
    assert NOT_ACCESS_CONTROL <= writes
