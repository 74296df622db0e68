"""Reads in the access log at chosen times, and a provider's review over HTTP, for the access review tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.access_log import repository as access_log
from billing_api.authz.permissions import Permission
from billing_api.models import DelegationEntry, User
from tests.authz.world import World


async def read_at(session: AsyncSession, world: World, reader: User, days_ago: float) -> None:
    """A read of the owner's bills by `reader`, `days_ago` before the database's now, logged as the real reads
    are (its grants computed by the log's own statement, as the rules stand)."""
    params = access_log.entry_params(
        actor_id=reader.id, permission=Permission.BILLS_VIEW, route="/v1/bills", surface="bills",
        pairs=[(world.owner.id, world.clinic.id)], patient_ids=[world.patient.id], record_count=1,
        client_address="127.0.0.1", user_agent="access-review-test")
    entry = await access_log.granted_entry(session, Permission.BILLS_VIEW, params)
    assert entry["grants"], f"{reader.display_name} holds no grant to the owner's bills"
    entry["read_at"] = entry["read_at"] - timedelta(days=days_ago)
    await access_log.insert_granted(await session.connection(), [entry])


async def list_made(session: AsyncSession, world: World, days_ago: int) -> datetime:
    """The owner's list entries as if made `days_ago` days ago (the world writes them without audit events, so
    the review falls back to the entries' own creation)."""
    made = (await session.execute(select(func.now()))).scalar_one() - timedelta(days=days_ago)
    await session.execute(update(DelegationEntry).where(DelegationEntry.provider_id == world.owner.id)
                          .values(created_at=made))
    return made


async def review(client, factory, world: World, *, as_user: User | None = None, **params) -> dict:
    response = await client.get(f"/v1/providers/{world.owner.id}/access-review",
                                headers=factory.headers(as_user or world.owner), params=params)
    assert response.status_code == 200, response.text
    return response.json()


def person(page: dict, user: User) -> dict:
    (found,) = [item for item in page["items"] if item["user_id"] == str(user.id)]
    return found


def grant(page: dict, user: User, rule: str) -> dict:
    (found,) = [g for g in person(page, user)["grants"] if g["rule"] == rule]
    return found


async def list_without(client, factory, world: World, entry_ids: set[str]) -> dict:
    """The body of a list save keeping every entry of the owner's list but `entry_ids`, over the version read (as
    a client acts on the review's `removable_entries`)."""
    listed = await client.get(f"/v1/providers/{world.owner.id}/delegation", headers=factory.headers(world.owner))
    assert listed.status_code == 200, listed.text
    return {"version": listed.json()["version"], "entries": [
        {"user_id": e["user_id"], "group_id": e["group_id"], "role": e["role"], "expires_at": e["expires_at"],
         **({"permissions": e["permissions"]} if e["role"] == "custom" else {})}
        for e in listed.json()["entries"] if e["id"] not in entry_ids]}
