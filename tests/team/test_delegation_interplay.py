"""An accepted invitation is an entry of the provider's delegation list: one list, managed from either side.
A list save may keep (and re-role) or drop a person from outside the company who came through an invitation,
but never add one; every team change moves the list's version on. Revocation holds on the next request, also
on real commits."""

from __future__ import annotations

from billing_api.db import make_sessionmaker
from billing_api.mail.sender import deliver_due
from billing_api.models import Coverage, Patient
from tests.factories import PASSWORD
from tests.helpers import assert_problem
from tests.support import smtp
from tests.support.practice import add_bill
from tests.support.smtp import mail_settings
from tests.team.flows import accept, bearer, invite, join, unique_email, unique_username


def url(provider) -> str:
    return f"/v1/providers/{provider.id}/delegation"


async def test_the_list_shows_keeps_and_drops_an_invited_outsider(client, factory, session, practice, deliver,
                                                                   collector):
    owner = factory.headers(practice.dr_a)
    outsider = await factory.user(practice.lakes, name="Olive Outsider")
    response = await invite(client, owner, practice.dr_a.id, email=outsider.email, role="data_entry")
    assert response.status_code == 201
    await deliver()
    token = smtp.token_of(collector.wait_for(outsider.email)[0])
    assert (await accept(client, token, password=None, headers=factory.headers(outsider))).status_code == 200
    mine = factory.headers(outsider)
    assert (await client.get(f"/v1/bills/{practice.draft_a.id}", headers=mine)).status_code == 200

    listing = (await client.get(url(practice.dr_a), headers=owner)).json()
    (entry,) = listing["entries"]
    assert entry["name"] == "Olive Outsider" and entry["source"] == "invitation"
    assert entry["invitation_id"] == response.json()["id"] and entry["role"] == "data_entry"

    # Saving the list with them (re-roled) keeps them, and keeps where they came from.
    saved = await client.put(url(practice.dr_a), headers=owner, json={
        "entries": [{"user_id": str(outsider.id), "role": "financial_viewer"}], "version": listing["version"],
        "password": PASSWORD})
    assert saved.status_code == 200, saved.text
    (entry,) = saved.json()["entries"]
    assert entry["source"] == "invitation" and entry["role"] == "financial_viewer"
    team = (await client.get(f"/v1/providers/{practice.dr_a.id}/team", headers=owner)).json()
    assert [(m["username"], m["role"], m["source"]) for m in team["members"]] == [
        (outsider.username, "financial_viewer", "invitation")]
    assert_problem(await client.patch(f"/v1/bills/{practice.draft_a.id}", headers=mine,
                                      json={"service_date": "2026-11-03"}), 403)

    # Dropping them from the list revokes them; they cannot be put back by a save: invite them again.
    dropped = await client.put(url(practice.dr_a), headers=owner, json={
        "entries": [], "version": saved.json()["version"], "password": PASSWORD})
    assert dropped.status_code == 200, dropped.text
    assert_problem(await client.get(f"/v1/bills/{practice.draft_a.id}", headers=mine), 404)
    again = await client.put(url(practice.dr_a), headers=owner, json={
        "entries": [{"user_id": str(outsider.id)}], "version": dropped.json()["version"], "password": PASSWORD})
    problem = assert_problem(again, 422, "delegation_entry_invalid")
    assert problem["reason"] == "outside_company"


async def test_members_of_the_company_added_on_the_list_show_on_the_team(client, factory, practice):
    owner = factory.headers(practice.dr_a)
    staff = await factory.user(practice.clinic, name="Sam Staff")
    saved = await client.put(url(practice.dr_a), headers=owner, json={
        "entries": [{"user_id": str(staff.id), "role": "data_entry"}], "version": 0, "password": PASSWORD})
    assert saved.status_code == 200, saved.text
    assert saved.json()["entries"][0]["source"] == "list"
    team = (await client.get(f"/v1/providers/{practice.dr_a.id}/team", headers=owner)).json()
    assert [(m["display_name"], m["source"], m["kind"]) for m in team["members"]] == [
        ("Sam Staff", "list", "member")]
    # And the team endpoints manage them too: it is one list.
    changed = await client.patch(f"/v1/providers/{practice.dr_a.id}/team/{staff.id}", headers=owner,
                                 json={"role": "financial_viewer"})
    assert changed.status_code == 200 and changed.json()["source"] == "list"
    assert (await client.delete(f"/v1/providers/{practice.dr_a.id}/team/{staff.id}", headers=owner)).status_code == 204
    assert (await client.get(url(practice.dr_a), headers=owner)).json()["entries"] == []


async def test_team_changes_move_the_list_version_on(client, factory, practice, deliver, collector):
    owner = factory.headers(practice.dr_a)
    read = (await client.get(url(practice.dr_a), headers=owner)).json()
    joined = await join(client, deliver, collector, owner, practice.dr_a.id)
    stale = await client.put(url(practice.dr_a), headers=owner, json={
        "entries": [], "version": read["version"], "password": PASSWORD})
    assert_problem(stale, 409, "delegation_list_stale")
    versions = [(await client.get(url(practice.dr_a), headers=owner)).json()["version"]]
    await client.patch(f"/v1/providers/{practice.dr_a.id}/team/{joined.user_id}", headers=owner,
                       json={"role": "administrator"})
    versions.append((await client.get(url(practice.dr_a), headers=owner)).json()["version"])
    await client.delete(f"/v1/providers/{practice.dr_a.id}/team/{joined.user_id}", headers=owner)
    versions.append((await client.get(url(practice.dr_a), headers=owner)).json()["version"])
    team = (await client.get(f"/v1/providers/{practice.dr_a.id}/team", headers=owner)).json()
    assert versions == sorted(set(versions)) and team["list_version"] == versions[-1]


async def test_revocation_holds_on_the_next_request_with_real_commits(live, live_engine, settings, collector):
    http, factory = live
    company = await factory.company()
    provider = await factory.user(company, name="Dr Live", provider=True)
    patient = Patient(id=__import__("uuid").uuid4(), company_id=company.id, first_name="Li", last_name="Ve")
    factory.session.add(patient)
    await factory.session.flush()
    bill = await add_bill(factory, company, provider, patient, coverage=Coverage.private)
    await factory.session.commit()
    owner = factory.headers(provider)
    email, username = unique_email(), unique_username()
    assert (await invite(http, owner, provider.id, email=email, username=username,
                         role="financial_viewer")).status_code == 201
    assert await deliver_due(make_sessionmaker(live_engine), mail_settings(settings, collector.port)) >= 1
    token = smtp.token_of((await collector.wait_for_async(email))[0])
    assert (await accept(http, token)).status_code == 200
    mine = await bearer(http, username)
    assert (await http.get(f"/v1/bills/{bill.id}", headers=mine)).status_code == 200
    team = (await http.get(f"/v1/providers/{provider.id}/team", headers=owner)).json()
    (member,) = team["members"]
    assert (await http.delete(f"/v1/providers/{provider.id}/team/{member['user_id']}", headers=owner)).status_code == 204
    assert_problem(await http.get(f"/v1/bills/{bill.id}", headers=mine), 404)
    assert (await http.get("/v1/bills", headers=mine)).json()["items"] == []
