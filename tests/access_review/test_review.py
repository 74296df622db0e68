"""GET /v1/providers/{provider_id}/access-review: every grant to a provider's bills, when it was last used (from the
access log, rolled up or not yet), and which are dormant."""

from __future__ import annotations

import csv
import io

import pytest

from billing_api.access_review.service import roll_up_usage
from billing_api.models import GroupMember
from tests.access_review.helpers import grant, list_made, person, read_at, review
from tests.authz.route_matrix import KNOWS_OWNER, LIST_MANAGERS
from tests.authz.world import CALLERS, build_world
from tests.helpers import assert_problem


async def _world(factory, session):
    """The segregated world, its list made 200 days ago, with a second member (staff) in the delegates' group."""
    world = await build_world(factory, segregated=True)
    session.add(GroupMember(group_id=world.group_id, user_id=world.users["staff"].id))
    await session.flush()
    await list_made(session, world, days_ago=200)
    return world


async def test_use_and_dormancy_of_every_grant(client, factory, session):
    world = await _world(factory, session)
    u = world.users
    await read_at(session, world, u["delegate_user"], days_ago=1)  # yesterday
    bills = await client.get("/v1/bills", headers=factory.headers(u["group_delegate"]))  # a real read, now
    assert bills.status_code == 200 and bills.json()["items"], bills.text
    support_read = await client.get(f"/v1/bills/{world.private_bill.id}", headers=factory.headers(u["support"]))
    assert support_read.status_code == 200, support_read.text

    page = await review(client, factory, world)
    assert page["dormant_after_days"] == 90 and page["review_interval_days"] == 90
    listed = {item["user_id"] for item in page["items"]}
    assert listed == {str(u[name].id) for name in (
        "owner", "delegate_user", "group_delegate", "staff", "deactivated_delegate", "support")}
    assert str(u["expired_delegate"].id) not in listed and str(u["removed_member"].id) not in listed

    used_yesterday = grant(page, u["delegate_user"], "delegation_user")
    assert used_yesterday["last_used_at"] is not None and used_yesterday["reads_30_days"] == 1
    assert used_yesterday["reads_90_days"] == 1 and used_yesterday["dormant"] is False
    assert used_yesterday["role"] == "data_entry" and used_yesterday["removable"] is True

    # The group: the member who read is not dormant; the one who never did is, the list being 200 days old.
    reader = grant(page, u["group_delegate"], "delegation_group")
    silent = grant(page, u["staff"], "delegation_group")
    assert reader["group_id"] == str(world.group_id) == silent["group_id"]
    assert reader["group_name"] == "Billing clerks"
    assert reader["dormant"] is False and reader["reads_30_days"] == 1
    assert silent["dormant"] is True and silent["last_used_at"] is None and silent["reads_90_days"] == 0
    assert person(page, u["staff"])["dormant"] is True

    deactivated = person(page, u["deactivated_delegate"])
    assert deactivated["active"] is False and deactivated["dormant"] is True
    assert [g["rule"] for g in deactivated["grants"]] == ["delegation_user"]

    support = grant(page, u["support"], "support")
    assert support["reads_30_days"] == 1 and support["last_used_at"] is not None
    assert support["dormant"] is False and support["removable"] is False
    own = grant(page, world.owner, "own_bills")
    assert own["dormant"] is False and own["removable"] is False

    # What to remove: the dormant entry naming the deactivated delegate, and the expired one; the group stays (one
    # of its members reads), as does the delegate who read yesterday.
    removable = {entry["user_id"] or entry["group_id"]: entry["reason"] for entry in page["removable_entries"]}
    assert removable == {str(u["deactivated_delegate"].id): "dormant", str(u["expired_delegate"].id): "expired"}
    assert {entry["name"] for entry in page["removable_entries"]} == {"deactivated", "expired_delegate"}
    assert page["list_version"] == 0

    # Rolled up into the usage tables, the review says exactly the same.
    assert await roll_up_usage(session) >= 3
    assert await roll_up_usage(session) == 0
    again = await review(client, factory, world)
    assert {**again, "generated_at": None, "due_at": None} == {**page, "generated_at": None, "due_at": None}


async def test_a_grant_never_used_is_dormant_only_past_the_threshold(client, factory, session):
    world = await build_world(factory, segregated=True)
    u = world.users
    await list_made(session, world, days_ago=30)
    page = await review(client, factory, world)
    assert grant(page, u["delegate_user"], "delegation_user")["dormant"] is False
    assert page["dormant_grants"] == 0

    world.clinic.access_review_dormant_days = 20  # the company's threshold, not a fixed one
    await session.flush()
    page = await review(client, factory, world)
    assert grant(page, u["delegate_user"], "delegation_user")["dormant"] is True
    assert page["dormant_after_days"] == 20 and page["dormant_grants"] >= 2


async def test_used_long_ago_is_dormant_and_counted_only_where_it_falls(client, factory, session):
    world = await _world(factory, session)
    delegate = world.users["delegate_user"]
    await read_at(session, world, delegate, days_ago=120)
    await read_at(session, world, delegate, days_ago=60)
    await read_at(session, world, delegate, days_ago=95)
    page = await review(client, factory, world)
    used = grant(page, delegate, "delegation_user")
    assert used["reads_30_days"] == 0 and used["reads_90_days"] == 1 and used["dormant"] is False
    world.clinic.access_review_dormant_days = 45
    await session.flush()
    assert grant(await review(client, factory, world), delegate, "delegation_user")["dormant"] is True


async def test_csv_holds_what_the_json_pages_hold(client, factory, session):
    world = await _world(factory, session)
    await read_at(session, world, world.users["delegate_user"], days_ago=2)
    lines, cursor = [], None
    while True:
        page = await review(client, factory, world, limit=2, **({"cursor": cursor} if cursor else {}))
        for item in page["items"]:
            for one in item["grants"]:
                lines.append((item["user_id"], item["display_name"], item["active"], item["dormant"], one["rule"],
                              one["entry_id"], one["group_name"], one["role"], one["permissions"],
                              one["last_used_at"], one["reads_30_days"], one["reads_90_days"], one["dormant"],
                              one["granted_at"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(lines) == page["grants"] >= 6

    response = await client.get(f"/v1/providers/{world.owner.id}/access-review",
                                headers={**factory.headers(world.owner), "Accept": "text/csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))

    def text(value) -> str:
        return "" if value is None else "true" if value is True else "false" if value is False else (
            " ".join(value) if isinstance(value, list) else str(value))

    from_csv = [(r["user_id"], r["display_name"], r["active"], r["person_dormant"], r["rule"], r["entry_id"],
                 r["group_name"], r["role"], r["permissions"], r["last_used_at"], r["reads_30_days"],
                 r["reads_90_days"], r["dormant"], r["granted_at"]) for r in rows]
    from datetime import datetime

    def normal(line):  # the JSON writes UTC as Z, Python's isoformat as +00:00: the same instants
        return tuple(datetime.fromisoformat(v.replace("Z", "+00:00")).isoformat()
                     if isinstance(v, str) and len(v) > 18 and v[4:5] == "-" and "T" in v else v for v in line)

    assert [normal(tuple(map(text, line))) for line in lines] == [normal(line) for line in from_csv]


@pytest.mark.parametrize("caller", CALLERS)
async def test_the_review_is_seen_by_whoever_sees_the_access_listing(client, factory, session, caller):
    world = await build_world(factory, segregated=True)
    headers = factory.headers(world.users[caller]) if caller in world.users else {}
    listing = await client.get(f"/v1/providers/{world.owner.id}/access", headers=headers)
    reviewed = await client.get(f"/v1/providers/{world.owner.id}/access-review", headers=headers)
    assert reviewed.status_code == listing.status_code, (caller, reviewed.text)
    if caller in LIST_MANAGERS:
        assert reviewed.status_code == 200
    elif caller in KNOWS_OWNER:
        assert_problem(reviewed, 403, "delegation_manage_forbidden")


async def test_company_wide_grants_name_their_company(client, factory, session):
    world = await build_world(factory, segregated=False)
    u = world.users
    await read_at(session, world, u["company_admin"], days_ago=2)
    page = await review(client, factory, world)
    admin = grant(page, u["company_admin"], "company_admin")
    assert admin["company_id"] == str(world.clinic.id) and admin["reads_30_days"] == 1 and admin["dormant"] is False
    assert grant(page, u["parent_admin"], "company_admin")["company_id"] == str(world.clinic.id)
    staff = grant(page, u["staff"], "company_wide")
    assert staff["removable"] is False and staff["permissions"] is None and staff["reads_90_days"] == 0
    assert str(u["outsider"].id) not in {item["user_id"] for item in page["items"]}
