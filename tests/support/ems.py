"""The `ems` world: the EMS seed's company tree (West EMS Transport, four children, Barney and Betty), and a snapshot
of every table the multi-company endpoints write to. Shared by the companies, assignments, payers and facilities,
and events tests; each module that wants more (payers, more users, assignments) adds it in an `ems` fixture of its
own on top of `build_ems`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.models import Company, Group, User
from tests.factories import Factory
from tests import helpers
from tests.helpers import ADMIN

# Barney's role holds the payer and facility permissions too: at the parent level they count for nothing.
BILLER_ROLE = ["bills:save", "bills:submit", "bills:view", "facilities:manage", "payers:manage"]


@dataclass
class Ems:
    west: Company
    north: Company
    south: Company
    east: Company
    mountain: Company
    far: Company
    far_child: Company
    betty: User
    barney: User
    biller: Group

    @property
    def children(self) -> list[Company]:
        """By name, as every list shows them."""
        return [self.east, self.mountain, self.north, self.south]


async def build_ems(factory: Factory) -> Ems:
    """West EMS Transport (America/Denver) with four children (North, South, East, Mountain), and Far Transport with
    one child, a tree of its own; Betty, West's company administrator; Barney, a standard West user in the Biller
    group (`BILLER_ROLE`), which selects no child yet."""
    west = await factory.company("West EMS Transport", time_zone="America/Denver")
    north = await factory.company("West EMS North", parent=west)
    south = await factory.company("West EMS South", parent=west)
    east = await factory.company("West EMS East", parent=west)
    mountain = await factory.company("West EMS Mountain", parent=west)
    far = await factory.company("Far Transport")
    far_child = await factory.company("Far Transport Child", parent=far)
    betty = await factory.user(west, name="Betty Supervisor", account_type=ADMIN)
    barney = await factory.user(west, name="Barney Biller")
    biller = await factory.group(west, [barney], name="Biller", permissions=BILLER_ROLE)
    return Ems(west, north, south, east, mountain, far, far_child, betty, barney, biller)


TABLES = ("company", "app_user", "user_group", "group_member", "group_company_assignment",
          "user_company_assignment", "payer", "facility", "audit_event")


async def snapshot(session: AsyncSession) -> dict[str, list[tuple]]:
    return await helpers.snapshot(session, TABLES)
