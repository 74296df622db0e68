"""GET /v1/patients/{patient_id}/access-log: who saw this patient's billing data, when. Company administrators
read every entry; a provider of the patient reads the entries that showed their own bills; everyone else who
sees the patient gets 403 and whoever does not, 404."""

from __future__ import annotations

import pytest

from tests.access_log.helpers import AGENT, entry_id
from tests.authz.world import CALLERS, build_world
from tests.helpers import assert_problem

READERS = {"owner": 200, "other_provider": 200, "company_admin": 200, "parent_admin": 200,
           "deactivated_delegate": 401, "outsider": 404}


async def reads_by_three(client, factory, world) -> None:
    """The delegate reads the owner's bill, staff the dashboard (both providers' bills), support the chart."""
    for caller, path in (("delegate_user", f"/v1/bills/{world.insured_bill.id}"), ("staff", "/v1/bills"),
                         ("support", f"/v1/patients/{world.patient.id}/bills")):
        response = await client.get(path, headers={**factory.headers(world.users[caller]), **AGENT})
        assert response.status_code == 200


@pytest.mark.parametrize("caller", CALLERS)
async def test_who_may_read_a_patients_access_log(client, factory, caller):
    world = await build_world(factory, segregated=False)
    await reads_by_three(client, factory, world)
    response = await client.get(f"/v1/patients/{world.patient.id}/access-log", headers=factory.headers(world.users[caller]))
    expected = READERS.get(caller, 403)
    if expected != 200:
        assert_problem(response, expected, "access_log_forbidden" if expected == 403 else None)
        return
    assert response.status_code == 200, response.text
    actors = [item["actor_id"] for item in response.json()["items"]]
    if caller in ("company_admin", "parent_admin") or caller == "owner":  # everything, newest first
        assert actors == [str(world.users[c].id) for c in ("support", "staff", "delegate_user")]
    else:  # the other provider's bill was on staff's dashboard and support's chart only
        assert actors == [str(world.users[c].id) for c in ("support", "staff")]


async def test_an_entry_says_who_when_from_where_and_on_whose_behalf(client, factory, session):
    world = await build_world(factory, segregated=True)
    await reads_by_three(client, factory, world)
    admin = await client.get(f"/v1/patients/{world.patient.id}/access-log",
                             headers=factory.headers(world.users["company_admin"]))
    delegate = world.users["delegate_user"]
    (entry,) = [item for item in admin.json()["items"] if item["actor_id"] == str(delegate.id)]
    assert entry["actor_name"] == delegate.display_name
    assert entry["route"] == "/v1/bills/{bill_id}" and entry["surface"] == "bill"
    assert entry["permission"] == "bills:view" and entry["record_count"] == 1
    assert entry["provider_ids"] == [str(world.owner.id)]
    assert entry["grants"] == [{"rule": "delegation_user", "provider_id": str(world.owner.id),
                                "company_id": str(world.clinic.id),
                                "entry_id": str(await entry_id(session, world, user_id=delegate.id)),
                                "group_id": None}]
    assert entry["client_address"] == "127.0.0.1" and entry["user_agent"] == "access-log-test/1.0"
    assert entry["created_at"] and entry["chain_seq"] >= 1
    # Segregation on: staff saw nothing, so staff is not in the log.
    assert str(world.users["staff"].id) not in {item["actor_id"] for item in admin.json()["items"]}


async def test_a_provider_reads_only_their_own_part_of_an_entry(client, factory):
    """Support's chart read showed both providers' bills: each provider sees the entry with their own grant only."""
    world = await build_world(factory, segregated=False)
    await reads_by_three(client, factory, world)
    other = world.users["other_provider"]
    page = await client.get(f"/v1/patients/{world.patient.id}/access-log", headers=factory.headers(other))
    support_entry = page.json()["items"][0]
    assert support_entry["provider_ids"] == [str(other.id)]
    assert {g["provider_id"] for g in support_entry["grants"]} == {str(other.id)}
    assert {g["rule"] for g in support_entry["grants"]} == {"support"}


async def test_the_log_pages_by_cursor(client, factory):
    world = await build_world(factory, segregated=False)
    headers = factory.headers(world.users["delegate_user"])
    for _ in range(5):
        assert (await client.get(f"/v1/bills/{world.insured_bill.id}", headers=headers)).status_code == 200
    admin = factory.headers(world.users["company_admin"])
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"/v1/patients/{world.patient.id}/access-log", params=params, headers=admin)).json()
        seen += [item["chain_seq"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)
