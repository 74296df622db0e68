"""The feed itself: every event type from the change that causes it (by users and by the nightly automation),
payloads as documented, paging with `after`, filters, bad input, and the order that lets no event slip behind
a cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from billing_api.db import make_sessionmaker
from billing_api.events.schemas import EVENT_TYPES, SegregationEnabled
from billing_api.events.service import emit
from tests.authz.world import build_world
from tests.automation.conftest import add_card, build_clinic, configure, encounter, new_patient, patch_patient, run
from tests.events.helpers import of_type, poll
from tests.factories import PASSWORD
from tests.helpers import assert_problem, count
from tests.support.ems import build_ems
from tests.team.flows import join


async def test_the_nightly_automation_reports_bills_payments_and_autopay_outcomes(client, factory, session):
    clinic = await build_clinic(factory)
    await configure(client, clinic)
    night = datetime.now(UTC).date() - timedelta(days=1)
    paying, declining = await new_patient(client, clinic, "Paying"), await new_patient(client, clinic, "Declining")
    for patient, token in ((paying, "tok_success"), (declining, "tok_decline")):
        await patch_patient(client, clinic, patient, autopay_enabled=True)
        await add_card(client, clinic, patient, token=token)
        await encounter(client, clinic, patient, night - timedelta(days=1), fee=15000)
    assert (await run(client, clinic, night, ["autopay"])).status_code == 200
    events = await poll(client, clinic.h(clinic.admin))  # a company admin of an open practice sees its bills
    created = of_type(events, "bill.created")
    assert {e["data"]["patient_id"] for e in created} == {str(paying), str(declining)}
    assert {(e["data"]["source"], e["data"]["status"], e["data"]["total_cents"]) for e in created} == {
        ("automation", "submitted", 15000)}
    [succeeded] = of_type(events, "autopay.succeeded")
    [declined] = of_type(events, "autopay.declined")
    assert succeeded["data"]["patient_id"] == str(paying) and succeeded["data"]["amount_cents"] == 15000
    assert succeeded["data"]["local_date"] == night.isoformat()
    assert declined["data"]["patient_id"] == str(declining)
    assert declined["data"]["decline_reason"] == "card_declined" and declined["data"]["card_deactivated"] is False
    [recorded] = of_type(events, "payment.recorded")
    [paid] = of_type(events, "bill.paid")
    assert recorded["data"]["payment_id"] == succeeded["data"]["payment_id"] == paid["data"]["payment_id"]
    assert (recorded["data"]["method"], recorded["data"]["balance_cents"], recorded["data"]["bill_status"]) == (
        "card", 0, "paid")
    # Another company's administrator sees none of it.
    assert await poll(client, clinic.h(clinic.outsider)) == []


async def test_invitations_accepted_and_access_changes_reach_the_company_admins(
        client, factory, session, deliver, collector):  # noqa: F811 (fixtures)
    world = await build_world(factory, segregated=False)
    owner = factory.headers(world.owner)
    joined = await join(client, deliver, collector, owner, world.owner.id)
    member = f"/v1/providers/{world.owner.id}/team/{joined.user_id}"
    updated = await client.patch(member, headers=owner, json={"role": "financial_viewer"})
    assert updated.status_code == 200, updated.text
    assert (await client.delete(member, headers=owner)).status_code == 204
    listed = (await client.get(f"/v1/providers/{world.owner.id}/delegation", headers=owner)).json()
    entries = [{"user_id": e["user_id"], "role": e["role"]} if e["type"] == "user" else
               {"group_id": e["group_id"], "role": e["role"]} for e in listed["entries"] if e.get("active", True)]
    saved = await client.put(f"/v1/providers/{world.owner.id}/delegation", headers=owner,
                             json={"entries": entries[:1], "version": listed["version"], "password": PASSWORD})
    assert saved.status_code == 200, saved.text
    admin = factory.headers(world.users["company_admin"])
    enabled = await client.post(f"/v1/companies/{world.clinic.id}/billing-segregation", headers=admin,
                                json={"password": PASSWORD, "acknowledge_empty_lists": True})
    assert enabled.status_code == 200, enabled.text
    events = await poll(client, admin)
    [accepted] = of_type(events, "invitation.accepted")
    assert accepted["data"] == {"invitation_id": joined.invitation["id"], "provider_id": str(world.owner.id),
                                "user_id": joined.user_id, "account_created": True, "role": "data_entry"}
    member_ids = {"provider_id": str(world.owner.id), "user_id": joined.user_id}
    assert [e["data"] for e in of_type(events, "team.member_updated")] == [{**member_ids, "role": "financial_viewer"}]
    assert [e["data"] for e in of_type(events, "team.member_revoked")] == [member_ids]
    [list_saved] = of_type(events, "delegation.list_saved")
    assert list_saved["data"] == {"provider_id": str(world.owner.id), "version": saved.json()["version"],
                                  "entries": 1}
    [segregation] = of_type(events, "segregation.enabled")
    assert segregation["data"] == {"enabled_by": str(world.users["company_admin"].id)}
    assert segregation["company_id"] == str(world.clinic.id)
    assert [e["type"] for e in events] == [  # in the order they happened
        "invitation.accepted", "team.member_updated", "team.member_revoked", "delegation.list_saved",
        "segregation.enabled"]
    # The provider, the new team member and a list manager are no company admins: no company-level events.
    for user_headers in (owner, joined.headers, factory.headers(world.users["admin_both"])):
        assert [e for e in await poll(client, user_headers) if "bill_id" not in e["data"]] == []


async def test_assignment_changes_are_seen_by_the_admins_who_reach_the_company(client, factory, session):
    ems = await build_ems(factory)
    betty = factory.headers(ems.betty)
    role = await client.put(f"/v1/groups/{ems.biller.id}/billing-customer-assignments", headers=betty,
                            json={"company_ids": [str(ems.north.id)]})
    assert role.status_code == 200, role.text
    direct = await client.put(f"/v1/users/{ems.barney.id}/billing-customer-assignments", headers=betty,
                              json={"company_ids": [str(ems.north.id), str(ems.south.id)]})
    assert direct.status_code == 200, direct.text
    events = await poll(client, betty)
    [group_changed] = of_type(events, "assignments.group_changed")
    assert group_changed["data"] == {"group_id": str(ems.biller.id), "added": [str(ems.north.id)], "removed": []}
    [user_changed] = of_type(events, "assignments.user_changed")
    assert user_changed["data"]["user_id"] == str(ems.barney.id)
    assert user_changed["data"]["added"] == [str(ems.south.id)]  # north already comes with his group
    far_admin = await factory.user(ems.far, account_type=ems.betty.account_type)
    assert await poll(client, factory.headers(far_admin)) == []
    assert [e for e in await poll(client, factory.headers(ems.barney)) if "bill_id" not in e["data"]] == []


async def test_paging_filters_and_bad_input(client, factory, session):
    world = await build_world(factory, segregated=False)
    owner = factory.headers(world.owner)
    empty = (await client.get("/v1/events", headers=owner)).json()
    assert empty == {"items": [], "next_cursor": None, "has_more": False}
    ids = []
    for day in range(3, 8):
        response = await client.post("/v1/bills", headers=owner, json={
            "provider_id": str(world.owner.id), "patient_id": str(world.patient.id), "coverage": "private",
            "service_date": f"2026-11-0{day}",
            "lines": [{"cpt_code": "99213", "description": "Office visit", "units": 1, "fee_cents": 100 * day}]})
        ids.append(response.json()["id"])
    assert (await client.post(f"/v1/bills/{ids[0]}/submit", headers=owner)).status_code == 200
    first = (await client.get("/v1/events", headers=owner, params={"limit": 2})).json()
    assert [e["data"]["bill_id"] for e in first["items"]] == ids[:2] and first["has_more"] is True
    rest = (await client.get("/v1/events", headers=owner, params={"after": first["next_cursor"]})).json()
    assert [e["data"]["bill_id"] for e in rest["items"]] == ids[2:] + ids[:1]
    assert rest["has_more"] is False
    # Polling again from the last cursor: nothing new, and the same cursor to keep.
    idle = (await client.get("/v1/events", headers=owner, params={"after": rest["next_cursor"]})).json()
    assert idle == {"items": [], "next_cursor": rest["next_cursor"], "has_more": False}
    submitted = (await client.get("/v1/events", headers=owner, params={"type": "bill.submitted"})).json()["items"]
    assert [(e["type"], e["data"]["bill_id"]) for e in submitted] == [("bill.submitted", ids[0])]
    both = await poll(client, owner, type=["bill.submitted", "bill.created"])
    assert len(both) == 6
    for params, status, code in (({"type": "bill.exploded"}, 422, "validation_error"),
                                 ({"after": "not-a-cursor"}, 422, "invalid_cursor"),
                                 ({"after": "WyIxIiwgIngiXQ"}, 422, "invalid_cursor"),
                                 ({"limit": 0}, 422, "validation_error"),
                                 ({"limit": 201}, 422, "validation_error")):
        assert_problem(await client.get("/v1/events", headers=owner, params=params), status, code)


async def test_a_refused_change_writes_no_event(client, factory, session):
    world = await build_world(factory, segregated=False)
    before = await count(session, "integration_event")
    response = await client.post(f"/v1/bills/{world.private_bill.id}/submit",
                                 headers=factory.headers(world.users["group_delegate"]))  # financial viewer
    assert_problem(response, 403, "permission_denied")
    listed = await client.get(f"/v1/providers/{world.owner.id}/delegation", headers=factory.headers(world.owner))
    stale = await client.put(f"/v1/providers/{world.owner.id}/delegation", headers=factory.headers(world.owner),
                             json={"entries": [], "version": listed.json()["version"] + 5, "password": PASSWORD})
    assert_problem(stale, 409, "delegation_list_stale")
    assert await count(session, "integration_event") == before


def test_every_event_type_is_documented_with_its_payload_and_an_example(shared_app):
    schema = shared_app.openapi()
    operation = schema["paths"]["/v1/events"]["get"]
    page = schema["components"]["schemas"]["EventPage"]
    union = page["properties"]["items"]["items"]
    assert set(union["discriminator"]["mapping"]) == set(EVENT_TYPES)
    for event_type, ref in union["discriminator"]["mapping"].items():
        event = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert event["properties"]["type"]["const"] == event_type
        payload = schema["components"]["schemas"][event["properties"]["data"]["$ref"].rsplit("/", 1)[1]]
        assert payload["examples"] and set(payload["examples"][0]) == set(payload["properties"]), event_type
        assert f"`{event_type}`" in operation["description"]


async def test_no_event_appears_behind_a_cursor_when_transactions_commit_out_of_order(live, live_engine):
    """Events of an older transaction still running hold back those of newer ones, so a poller that passed
    the newer event can never miss the older one when it commits."""
    http, factory = live
    world = await build_world(factory, segregated=False)
    await factory.session.commit()
    sessionmaker = make_sessionmaker(live_engine)
    async with sessionmaker() as older, sessionmaker() as newer:
        # The older transaction takes its id first (its event is written first) and commits last.
        await emit(older, world.clinic.id, SegregationEnabled(enabled_by=world.owner.id))
        await older.flush()
        await emit(newer, world.clinic.id, SegregationEnabled(enabled_by=world.users["staff"].id))
        await newer.commit()
        admin = factory.headers(world.users["company_admin"])
        assert await poll(http, admin) == []  # the newer event waits for the older transaction
        await older.commit()
    rows = (await factory.session.execute(
        text("SELECT payload->>'enabled_by' FROM integration_event WHERE company_id = :c "
             "ORDER BY transaction_id, position"), {"c": world.clinic.id})).scalars().all()
    assert rows == [str(world.owner.id), str(world.users["staff"].id)]
