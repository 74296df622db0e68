"""Invited users, over HTTP: invite, the email arrives on a real SMTP server, accept with the
link's token, log in, do exactly what the role allows, be revoked and refused on the next request; one account
serving two providers of two companies with two independent roles."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from billing_api.models import AuditEvent, User, UserKind
from tests.helpers import assert_problem
from tests.support import smtp
from tests.team.flows import accept, bearer, invite, join, login, unique_email, unique_username

ACTIONS = ["view", "create", "save", "submit", "delete", "reports", "invoices", "pay", "invite", "team"]

# What each preset may do (docs/concepts.md, role presets); everything else is refused with 403.
ALLOWED = {
    "financial_viewer": {"view", "reports", "invoices", "pay"},
    "data_entry": {"view", "create", "save", "submit", "delete"},
    "administrator": {"view", "create", "save", "submit", "delete", "reports", "invoices", "pay"},
    "custom": {"view", "invoices"},
}
CUSTOM = ["bills:view", "invoices:view"]


async def act(client, headers, practice, action: str):
    """One action on Dr Ada's billing; returns the response."""
    p = practice
    if action == "view":
        return await client.get(f"/v1/bills/{p.draft_a.id}", headers=headers)
    if action == "create":
        return await client.post("/v1/bills", headers=headers, json={
            "provider_id": str(p.dr_a.id), "patient_id": str(p.patient_a.id), "coverage": "private",
            "service_date": "2026-11-05",
            "lines": [{"cpt_code": "99214", "description": "Visit", "units": 1, "fee_cents": 9000}]})
    if action == "save":
        return await client.patch(f"/v1/bills/{p.draft_a.id}", headers=headers, json={"service_date": "2026-11-03"})
    if action == "submit":
        return await client.post(f"/v1/bills/{p.draft_a.id}/submit", headers=headers)
    if action == "delete":
        return await client.delete(f"/v1/bills/{p.spare_draft_a.id}", headers=headers)
    if action == "reports":
        return await client.get(f"/v1/providers/{p.dr_a.id}/reports/billing-summary", headers=headers,
                                params={"from": "2026-11-01", "to": "2026-11-30"})
    if action == "invoices":
        return await client.get(f"/v1/providers/{p.dr_a.id}/invoices", headers=headers)
    if action == "pay":
        return await client.post(f"/v1/bills/{p.submitted_a.id}/payments", headers=headers,
                                 json={"amount_cents": 2500, "method": "card"})
    if action == "invite":
        return await invite(client, headers, p.dr_a.id, email=unique_email("second"), username=unique_username())
    if action == "team":
        return await client.get(f"/v1/providers/{p.dr_a.id}/team", headers=headers)
    raise AssertionError(action)


@pytest.mark.parametrize("role", list(ALLOWED))
async def test_each_preset_from_invitation_to_revocation(client, factory, session, practice, deliver, collector,
                                                         role):
    owner = factory.headers(practice.dr_a)
    email, username = unique_email(), unique_username()
    permissions = CUSTOM if role == "custom" else None
    extra = {"permissions": permissions} if permissions else {}

    created = await invite(client, owner, practice.dr_a.id, email=email, username=username, role=role,
                           display_name="Ivy Invited", **extra)
    assert created.status_code == 201, created.text
    invitation = created.json()
    assert invitation["state"] == "pending" and "reuses_existing_account" not in invitation
    assert invitation["username"] == username and invitation["display_name"] == "Ivy Invited"
    assert invitation["delivery"] == {"status": "queued", "attempts": 0, "last_attempt_at": None, "error": None,
                                      "sent_at": None}
    assert invitation["role"] == role

    # The email goes out over SMTP, carrying the accept link in both bodies.
    assert await deliver() == 1
    (message,) = collector.wait_for(email)
    text, html = smtp.bodies(message)
    assert "Dr Ada" in message["Subject"] and "Dr Ada" in text
    token = smtp.token_of(message)
    assert text.count(token) == 1 and "https://billing.example.org/invitations/accept?token=" in text
    team = (await client.get(f"/v1/providers/{practice.dr_a.id}/team", headers=owner)).json()
    (pending,) = team["invitations"]
    assert pending["delivery"]["status"] == "sent" and pending["delivery"]["attempts"] == 1
    assert pending["delivery"]["sent_at"] and pending["delivery"]["error"] is None

    accepted = await accept(client, token)
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["account_created"] is True and body["username"] == username and body["role"] == role
    user = await session.get(User, __import__("uuid").UUID(body["user_id"]))
    assert user.kind == UserKind.invited and user.company_id == practice.clinic.id
    assert user.display_name == "Ivy Invited" and user.email == email

    # Web only: the mobile app is refused to invited users, once the password is right.
    assert_problem(await login(client, username, kind="mobile"), 403, "mobile_not_available_for_invited_users")
    assert_problem(await login(client, username, password="wrong password!", kind="mobile"), 401,
                   "invalid_credentials")
    headers = await bearer(client, username)

    # Exactly what the role allows, and nothing of the practice beyond Dr Ada's bills.
    dashboard = (await client.get("/v1/bills", headers=headers)).json()
    assert {b["provider_id"] for b in dashboard["items"]} == {str(practice.dr_a.id)}
    assert_problem(await client.get(f"/v1/bills/{practice.other_bill.id}", headers=headers), 404)
    for action in ACTIONS:
        response = await act(client, headers, practice, action)
        if action in ALLOWED[role]:
            assert response.status_code in (200, 201, 204), (action, response.text)
        elif action in ("invite", "team"):
            assert_problem(response, 403, "team_manage_forbidden")
        else:
            assert_problem(response, 403)

    team = (await client.get(f"/v1/providers/{practice.dr_a.id}/team", headers=owner)).json()
    assert team["invitations"] == []
    (member,) = [m for m in team["members"] if m["user_id"] == body["user_id"]]
    assert member["source"] == "invitation" and member["role"] == role and member["kind"] == "invited"
    assert member["invitation_id"] == invitation["id"]
    assert member["permissions"] == sorted(permissions or member["permissions"])

    # Revoked: refused on the very next request; the account itself stays.
    revoked = await client.delete(f"/v1/providers/{practice.dr_a.id}/team/{body['user_id']}", headers=owner)
    assert revoked.status_code == 204, revoked.text
    assert_problem(await client.get(f"/v1/bills/{practice.draft_a.id}", headers=headers), 404, "bill_not_found")
    assert (await client.get("/v1/bills", headers=headers)).json()["items"] == []
    assert_problem(await act(client, headers, practice, "reports"), 404, "provider_not_found")
    assert (await login(client, username)).status_code == 200


async def test_one_account_two_providers_of_two_companies(client, factory, session, practice, deliver, collector):
    first = await join(client, deliver, collector, factory.headers(practice.dr_a), practice.dr_a.id,
                       role="data_entry")
    # Dr Bea, of another company, invites the same address: her answer does not say that it has an account.
    response = await invite(client, factory.headers(practice.dr_b), practice.dr_b.id, email=first.email.upper(),
                            role="financial_viewer")
    assert response.status_code == 201, response.text
    second = response.json()
    assert "reuses_existing_account" not in second and second["username"] is None
    assert first.username not in response.text
    await deliver()
    first_mail, message = collector.wait_for(first.email, count=2)
    assert "Dr Bea" in message["Subject"] and "Dr Ada" in first_mail["Subject"]
    text, _ = smtp.bodies(message)
    assert "If you already have an account with this email address, sign in with it" in text
    token = smtp.token_of(message)

    # The existing account accepts signed in, with the token alone.
    assert_problem(await accept(client, token, password=None), 401, "invitation_login_required")
    accepted = await accept(client, token, password=None, headers=first.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["account_created"] is False and accepted.json()["user_id"] == first.user_id
    assert (await session.execute(select(User).where(User.email.ilike(first.email)))).scalars().all().__len__() == 1

    h = first.headers
    dashboard = (await client.get("/v1/bills", headers=h)).json()
    assert {b["provider_id"] for b in dashboard["items"]} == {str(practice.dr_a.id), str(practice.dr_b.id)}
    # Two independent roles: data entry for Dr Ada, financial viewer for Dr Bea.
    edit_a = await client.patch(f"/v1/bills/{practice.draft_a.id}", headers=h, json={"service_date": "2026-11-04"})
    assert edit_a.status_code == 200, edit_a.text
    assert_problem(await client.patch(f"/v1/bills/{practice.draft_b.id}", headers=h,
                                      json={"service_date": "2026-11-04"}), 403, "permission_denied")
    report = {"from": "2026-11-01", "to": "2026-11-30"}
    assert (await client.get(f"/v1/providers/{practice.dr_b.id}/reports/billing-summary", headers=h,
                             params=report)).status_code == 200
    assert_problem(await client.get(f"/v1/providers/{practice.dr_a.id}/reports/billing-summary", headers=h,
                                    params=report), 403, "permission_denied")
    paid = await client.post(f"/v1/bills/{practice.submitted_b.id}/payments", headers=h,
                             json={"amount_cents": 100, "method": "cash"})
    assert paid.status_code == 201, paid.text

    # Revoking one leaves the other intact.
    revoked = await client.delete(f"/v1/providers/{practice.dr_a.id}/team/{first.user_id}",
                                  headers=factory.headers(practice.dr_a))
    assert revoked.status_code == 204
    assert_problem(await client.get(f"/v1/bills/{practice.draft_a.id}", headers=h), 404)
    assert (await client.get(f"/v1/bills/{practice.draft_b.id}", headers=h)).status_code == 200
    assert (await client.get(f"/v1/providers/{practice.dr_b.id}/reports/billing-summary", headers=h,
                             params=report)).status_code == 200
    dashboard = (await client.get("/v1/bills", headers=h)).json()
    assert {b["provider_id"] for b in dashboard["items"]} == {str(practice.dr_b.id)}


async def test_role_change_holds_on_the_next_request(client, factory, practice, deliver, collector):
    owner = factory.headers(practice.dr_a)
    joined = await join(client, deliver, collector, owner, practice.dr_a.id, role="data_entry")
    report = {"from": "2026-11-01", "to": "2026-11-30"}
    url = f"/v1/providers/{practice.dr_a.id}/reports/billing-summary"
    assert_problem(await client.get(url, headers=joined.headers, params=report), 403)

    changed = await client.patch(f"/v1/providers/{practice.dr_a.id}/team/{joined.user_id}", headers=owner,
                                 json={"role": "financial_viewer"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["role"] == "financial_viewer"
    assert changed.json()["permissions"] == ["bills:view", "invoices:pay", "invoices:view", "reports:generate"]
    assert (await client.get(url, headers=joined.headers, params=report)).status_code == 200
    assert_problem(await client.patch(f"/v1/bills/{practice.draft_a.id}", headers=joined.headers,
                                      json={"service_date": "2026-11-03"}), 403)

    custom = await client.patch(f"/v1/providers/{practice.dr_a.id}/team/{joined.user_id}", headers=owner,
                                json={"role": "custom", "permissions": ["bills:view", "bills:save"]})
    assert custom.status_code == 200 and custom.json()["permissions"] == ["bills:save", "bills:view"]
    assert_problem(await client.get(url, headers=joined.headers, params=report), 403)
    assert (await client.patch(f"/v1/bills/{practice.draft_a.id}", headers=joined.headers,
                               json={"service_date": "2026-11-03"})).status_code == 200


async def test_audit_events_for_invite_resend_cancel_accept_change_and_revoke(client, factory, session, practice,
                                                                                deliver, collector):
    owner = factory.headers(practice.dr_a)
    joined = await join(client, deliver, collector, owner, practice.dr_a.id, role="data_entry")
    await client.patch(f"/v1/providers/{practice.dr_a.id}/team/{joined.user_id}", headers=owner,
                       json={"role": "administrator"})
    await client.delete(f"/v1/providers/{practice.dr_a.id}/team/{joined.user_id}", headers=owner)
    other = (await invite(client, owner, practice.dr_a.id, email=unique_email(), username=unique_username())).json()
    assert (await client.post(f"/v1/invitations/{other['id']}/resend", headers=owner)).status_code == 200
    assert (await client.delete(f"/v1/invitations/{other['id']}", headers=owner)).status_code == 204

    events = (await session.execute(
        select(AuditEvent).where(AuditEvent.target_id == practice.dr_a.id).order_by(AuditEvent.created_at)
    )).scalars().all()
    by_action = {}
    for event in events:
        by_action.setdefault(event.action, []).append(event)
    assert [e.details["invitation_id"] for e in by_action["invitation.created"]] == [joined.invitation["id"],
                                                                                     other["id"]]
    (accepted,) = by_action["invitation.accepted"]
    assert str(accepted.actor_id) == joined.user_id and accepted.details["account_created"] is True
    (resent,) = by_action["invitation.resent"]
    (cancelled,) = by_action["invitation.cancelled"]
    assert resent.details["invitation_id"] == cancelled.details["invitation_id"] == other["id"]
    (changed,) = by_action["team.member_updated"]
    assert changed.details["before"]["role"] == "data_entry" and changed.details["after"]["role"] == "administrator"
    (revoked,) = by_action["team.member_revoked"]
    assert revoked.details["user_id"] == joined.user_id
    for event in by_action["invitation.created"] + [resent, cancelled, changed, revoked]:
        assert event.actor_id == practice.dr_a.id and event.company_id == practice.clinic.id

    # The provider reads them in their own audit trail.
    trail = (await client.get("/v1/audit-events", headers=owner)).json()["items"]
    assert {"invitation.created", "invitation.resent", "invitation.cancelled", "invitation.accepted",
            "team.member_updated", "team.member_revoked"} <= {e["action"] for e in trail}


async def test_mobile_refusal_is_audited_and_members_keep_the_mobile_app(client, factory, session, practice,
                                                                           deliver, collector):
    joined = await join(client, deliver, collector, factory.headers(practice.dr_a), practice.dr_a.id)
    assert_problem(await login(client, joined.email, kind="mobile"), 403, "mobile_not_available_for_invited_users")
    refused = (await session.execute(select(AuditEvent).where(AuditEvent.action == "auth.mobile_refused"))).scalars()
    assert [str(e.actor_id) for e in refused] == [joined.user_id]
    # A practice member (the provider) uses the mobile app as before.
    member = await factory.user(practice.clinic, name="Member")
    response = await client.post("/v1/auth/token", data={"username": member.username,
                                                         "password": "correct horse battery", "client": "mobile"})
    assert response.status_code == 200, response.text


async def test_a_practice_member_invited_elsewhere_stays_a_member(client, factory, session, practice, deliver,
                                                                    collector):
    """An existing account of another practice reuses its login; its kind (and the mobile app) are unchanged."""
    member = await factory.user(practice.lakes, name="Lakes Biller")
    member_headers = factory.headers(member)
    invitation = await invite(client, factory.headers(practice.dr_a), practice.dr_a.id, email=member.email,
                              role="financial_viewer")
    assert invitation.status_code == 201 and "reuses_existing_account" not in invitation.json()
    assert member.username not in invitation.text
    await deliver()
    token = smtp.token_of(collector.wait_for(member.email)[0])
    accepted = await accept(client, token, password=None, headers=member_headers)
    assert accepted.status_code == 200, accepted.text
    await session.refresh(member)
    assert member.kind == UserKind.member
    assert (await client.get(f"/v1/bills/{practice.draft_a.id}", headers=member_headers)).status_code == 200
    response = await client.post("/v1/auth/token", data={"username": member.username,
                                                         "password": "correct horse battery", "client": "mobile"})
    assert response.status_code == 200
