"""The `scene`: a practice (a parent company with three children) for the ops tests that commit for real (the `live`
fixture), and helpers driving its writes over HTTP."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy import select

from billing_api.mail import secrets
from billing_api.models import AccountType, Company, Group, OutboxMessage, User, UserStatus
from tests.factories import PASSWORD, Factory


@dataclass
class Scene:
    home: Company
    children: list[Company]
    admin: User       # company admin of the parent
    provider: User
    staff: User
    staff2: User
    inactive: User
    group: Group
    factory: Factory

    def h(self, user: User) -> dict[str, str]:
        return self.factory.headers(user)


async def build_scene(factory: Factory) -> Scene:
    """The `scene`: a parent company with three children, its company administrator, a provider, two staff (one in
    a group) and a deactivated user, committed on the `live` database before a test arms its fault (a temporary
    trigger), with no transaction left open to block it. No patients or bills: the faults are in writes."""
    home = await factory.company()
    children = [await factory.company(parent=home) for _ in range(3)]
    staff = await factory.user(home)
    scene = Scene(
        home=home, children=children, admin=await factory.user(home, account_type=AccountType.company_admin),
        provider=await factory.user(home, provider=True), staff=staff, staff2=await factory.user(home),
        inactive=await factory.user(home, status=UserStatus.deactivated),
        group=await factory.group(home, [staff]), factory=factory,
    )
    await factory.session.commit()  # committed, and no transaction left open to block the tests' triggers
    return scene


async def save_list(http: httpx.AsyncClient, scene: Scene, entries: list[dict]) -> httpx.Response:
    url = f"/v1/providers/{scene.provider.id}/delegation"
    current = await http.get(url, headers=scene.h(scene.provider))
    assert current.status_code == 200, current.text
    return await http.put(url, headers=scene.h(scene.provider),
                          json={"entries": entries, "version": current.json()["version"], "password": PASSWORD})


async def invite(http: httpx.AsyncClient, scene: Scene, email: str, username: str) -> httpx.Response:
    return await http.post(f"/v1/providers/{scene.provider.id}/invitations", headers=scene.h(scene.provider),
                           json={"email": email, "username": username, "role": "data_entry"})


async def invitation_token(scene: Scene, invitation_id: str) -> str:
    """The token the invitation email carries, derived as the sender derives it from the queued message."""
    async with scene.factory.session.begin():
        nonce = (await scene.factory.session.execute(select(OutboxMessage.secret_nonce).where(
            OutboxMessage.invitation_id == invitation_id))).scalar_one()
    return secrets.derive(scene.factory.settings, nonce)
