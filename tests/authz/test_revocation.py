"""Revocation holds on the very next request, and concurrent list saves never both win.
These run on real commits (the `live` fixture), over HTTP through the ASGI app."""

from __future__ import annotations

import asyncio

from tests.authz.world import build_world
from tests.factories import PASSWORD


async def _committed_world(factory):
    world = await build_world(factory, segregated=True)
    await factory.session.commit()
    return world


async def _sees(http, headers, world) -> bool:
    single = await http.get(f"/v1/bills/{world.insured_bill.id}", headers=headers)
    dashboard = await http.get("/v1/bills", headers=headers)
    if single.status_code == 401:
        assert dashboard.status_code == 401
        return False
    listed = str(world.insured_bill.id) in {b["id"] for b in dashboard.json()["items"]}
    assert listed is (single.status_code == 200)
    return listed


async def test_list_save_revokes_on_the_next_request(live):
    http, factory = live
    world = await _committed_world(factory)
    delegate = factory.headers(world.users["delegate_user"])
    owner = factory.headers(world.owner)
    assert await _sees(http, delegate, world)

    current = (await http.get(f"/v1/providers/{world.owner.id}/delegation", headers=owner)).json()
    kept = [{"group_id": e["group_id"], "role": e["role"]} for e in current["entries"] if e["type"] == "group"]
    saved = await http.put(f"/v1/providers/{world.owner.id}/delegation", headers=owner,
                           json={"entries": kept, "version": current["version"], "password": PASSWORD})
    assert saved.status_code == 200, saved.text
    assert not await _sees(http, delegate, world)
    # The group's members keep what the group gives them.
    assert await _sees(http, factory.headers(world.users["group_delegate"]), world)


async def test_group_membership_change_revokes_on_the_next_request(live):
    http, factory = live
    world = await _committed_world(factory)
    member = factory.headers(world.users["group_delegate"])
    admin = factory.headers(world.users["admin_both"])
    assert await _sees(http, member, world)
    response = await http.put(f"/v1/groups/{world.group_id}/members", headers=admin, json={"user_ids": []})
    assert response.status_code == 200, response.text
    assert not await _sees(http, member, world)


async def test_deactivation_revokes_on_the_next_request(live):
    http, factory = live
    world = await _committed_world(factory)
    delegate = factory.headers(world.users["delegate_user"])
    assert await _sees(http, delegate, world)
    response = await http.post(f"/v1/users/{world.users['delegate_user'].id}/deactivate",
                               headers=factory.headers(world.users["admin_both"]))
    assert response.status_code == 200, response.text
    assert not await _sees(http, delegate, world)


async def test_concurrent_saves_of_one_list_exactly_one_wins(live):
    http, factory = live
    world = await _committed_world(factory)
    owner = factory.headers(world.owner)
    admin = factory.headers(world.users["admin_both"])
    for round_ in range(5):
        current = (await http.get(f"/v1/providers/{world.owner.id}/delegation", headers=owner)).json()
        first = {"entries": [{"user_id": str(world.users["staff"].id)}], "version": current["version"],
                 "password": PASSWORD}
        second = {"entries": [{"user_id": str(world.users["role_biller"].id), "role": "data_entry"}],
                  "version": current["version"], "password": PASSWORD}
        answers = await asyncio.gather(
            http.put(f"/v1/providers/{world.owner.id}/delegation", headers=owner, json=first),
            http.put(f"/v1/providers/{world.owner.id}/delegation", headers=admin, json=second),
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 409], [a.text for a in answers]
        loser = next(a for a in answers if a.status_code == 409)
        assert loser.json()["code"] == "delegation_list_stale"
        winner = next(a for a in answers if a.status_code == 200).json()
        after = (await http.get(f"/v1/providers/{world.owner.id}/delegation", headers=owner)).json()
        assert after["version"] == current["version"] + 1
        assert after["entries"] == winner["entries"]
        assert len(after["entries"]) == 1, round_


async def test_wrong_password_saves_nothing(live):
    http, factory = live
    world = await _committed_world(factory)
    owner = factory.headers(world.owner)
    before = (await http.get(f"/v1/providers/{world.owner.id}/delegation", headers=owner)).json()
    response = await http.put(f"/v1/providers/{world.owner.id}/delegation", headers=owner,
                              json={"entries": [], "version": before["version"], "password": "not it"})
    assert response.status_code == 403
    assert response.json()["code"] == "password_confirmation_failed"
    after = (await http.get(f"/v1/providers/{world.owner.id}/delegation", headers=owner)).json()
    assert after == before
    assert await _sees(http, factory.headers(world.users["delegate_user"]), world)
