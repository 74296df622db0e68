"""The invitation flow over HTTP, as a client would drive it: invite, receive the mail, accept, log in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx

from tests.support import smtp

NEW_PASSWORD = "invited person's password"


def unique_email(prefix: str = "invitee") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@mail.example.org"


def unique_username(prefix: str = "invitee") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:8]}"



async def invite(client: httpx.AsyncClient, headers: dict, provider_id, *, email: str, username: str | None = None,
                 role: str = "data_entry", **extra) -> httpx.Response:
    body = {"email": email, "role": role, **extra}
    if username is not None:
        body["username"] = username
    return await client.post(f"/v1/providers/{provider_id}/invitations", json=body, headers=headers)


async def accept(client: httpx.AsyncClient, token: str, *, password: str | None = NEW_PASSWORD,
                 headers: dict | None = None, **extra) -> httpx.Response:
    body = {"token": token, **extra}
    if password is not None:
        body["password"] = password
    return await client.post("/v1/invitations/accept", json=body, headers=headers or {})


async def login(client: httpx.AsyncClient, username: str, password: str = NEW_PASSWORD, kind: str = "web"
                ) -> httpx.Response:
    return await client.post("/v1/auth/token", data={"username": username, "password": password, "client": kind})


async def bearer(client: httpx.AsyncClient, username: str, password: str = NEW_PASSWORD) -> dict[str, str]:
    response = await login(client, username, password)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@dataclass
class Joined:
    invitation: dict
    accepted: dict
    username: str
    email: str
    headers: dict[str, str]

    @property
    def user_id(self) -> str:
        return self.accepted["user_id"]


async def invited_token(client, deliver, collector, inviter_headers, provider_id, *, email, username=None,
                        role="data_entry", permissions=None) -> tuple[dict, str]:
    extra = {"permissions": permissions} if permissions is not None else {}
    response = await invite(client, inviter_headers, provider_id, email=email, username=username, role=role, **extra)
    assert response.status_code == 201, response.text
    before = len(collector.to(email))
    assert await deliver() >= 1
    messages = collector.wait_for(email, count=before + 1)
    return response.json(), smtp.token_of(messages[-1])


async def join(client, deliver, collector, inviter_headers, provider_id, *, role="data_entry", permissions=None,
               email=None, username=None, existing: Joined | None = None) -> Joined:
    """Invite, deliver, accept (a new account, or `existing` signed in), log in."""
    email = existing.email if existing else (email or unique_email())
    username = None if existing else (username or unique_username())
    invitation, token = await invited_token(client, deliver, collector, inviter_headers, provider_id, email=email,
                                            username=username, role=role, permissions=permissions)
    if existing:
        response = await accept(client, token, password=None, headers=existing.headers)
    else:
        response = await accept(client, token)
    assert response.status_code == 200, response.text
    if existing:
        return Joined(invitation, response.json(), existing.username, email, existing.headers)
    return Joined(invitation, response.json(), username, email, await bearer(client, username))
