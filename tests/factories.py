"""Test data written straight to the database through the ORM, and tokens issued by the real code."""

from __future__ import annotations

import itertools
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.auth.passwords import hash_password
from billing_api.auth.tokens import Client, issue_token
from billing_api.config import Settings
from billing_api.models import AccountType, Company, Group, GroupMember, User, UserKind, UserStatus

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


class Factory:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self._password_hash: str | None = None

    async def company(self, name: str | None = None, *, parent: Company | None = None,
                      time_zone: str = "UTC") -> Company:
        company = Company(id=uuid.uuid4(), name=name or f"Company {next(_counter)}",
                          parent_id=parent.id if parent else None, time_zone=time_zone)
        self.session.add(company)
        await self.session.flush()
        return company

    async def user(
        self,
        company: Company,
        *,
        name: str | None = None,
        provider: bool = False,
        account_type: AccountType = AccountType.standard,
        permissions: list[str] | None = None,
        status: UserStatus = UserStatus.active,
        kind: UserKind = UserKind.member,
    ) -> User:
        n = next(_counter)
        if self._password_hash is None:
            self._password_hash = await hash_password(self.settings, PASSWORD)
        user = User(
            id=uuid.uuid4(), company_id=company.id, email=f"user{n}-{uuid.uuid4().hex[:6]}@example.org",
            username=f"user{n}-{uuid.uuid4().hex[:6]}", display_name=name or f"User {n}",
            password_hash=self._password_hash, account_type=account_type, kind=kind, status=status,
            is_provider=provider, billing_number=f"BN-{n}" if provider else None,
            permissions=sorted(permissions or []),
        )
        self.session.add(user)
        await self.session.flush()
        return user

    async def group(self, company: Company, members: list[User] = (), *, name: str | None = None,
                    permissions: list[str] | None = None) -> Group:
        group = Group(id=uuid.uuid4(), company_id=company.id, name=name or f"Group {next(_counter)}",
                      permissions=sorted(permissions or []))
        self.session.add(group)
        await self.session.flush()
        for member in members:
            self.session.add(GroupMember(group_id=group.id, user_id=member.id))
        await self.session.flush()
        return group

    def headers(self, user: User, client: Client = Client.web) -> dict[str, str]:
        token, _ = issue_token(self.settings, user.id, user.token_version, client)
        return {"Authorization": f"Bearer {token}"}
