"""The demo data set: a clinic, the EMS seed's West EMS Transport, and a support account. Idempotent."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.authz.permissions import Permission
from billing_api.config import Settings
from billing_api.identity.bootstrap import ensure_company, ensure_group, ensure_user
from billing_api.models import AccountType

DEMO_PASSWORD = "demo-password-1"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str


DEMO_LOGINS = [
    DemoLogin("clinic.admin", "Maple Street Clinic: company administrator"),
    DemoLogin("office.manager", "Maple Street Clinic: may manage anyone's delegation list"),
    DemoLogin("dr.lovelace", "Maple Street Clinic: provider"),
    DemoLogin("dr.carter", "Maple Street Clinic: provider"),
    DemoLogin("dr.wu", "Maple Street Clinic: provider"),
    DemoLogin("clara.clerk", "Maple Street Clinic: billing clerk (group Billing clerks)"),
    DemoLogin("bob.clerk", "Maple Street Clinic: billing clerk (group Billing clerks)"),
    DemoLogin("betty", "West EMS Transport: company administrator (the EMS seed's Betty)"),
    DemoLogin("barney", "West EMS Transport: standard user with the Biller role (the EMS seed's Barney)"),
    DemoLogin("support", "Vendor support: views every company's bills, audited"),
]


async def load_demo(session: AsyncSession, settings: Settings) -> list[DemoLogin]:
    def user(company, username, name, **kwargs):
        return ensure_user(session, settings, company, username, display_name=name, password=DEMO_PASSWORD, **kwargs)

    clinic = await ensure_company(session, "Maple Street Clinic", time_zone="America/Toronto")
    await user(clinic, "clinic.admin", "Casey Admin", account_type=AccountType.company_admin)
    await user(clinic, "office.manager", "Olive Manager",
               permissions=[Permission.USERS_EDIT_OTHERS, Permission.BILLING_DELEGATION_SETTINGS])
    await user(clinic, "dr.lovelace", "Dr. Ada Lovelace", billing_number="ON-100234")
    await user(clinic, "dr.carter", "Dr. Ben Carter", billing_number="ON-100871")
    await user(clinic, "dr.wu", "Dr. Chen Wu", billing_number="ON-101560")
    clara = await user(clinic, "clara.clerk", "Clara Clerk")
    bob = await user(clinic, "bob.clerk", "Bob Clerk")
    await ensure_group(session, clinic, "Billing clerks", [clara, bob])

    west = await ensure_company(session, "West EMS Transport", time_zone="America/Denver")
    for child in ("West EMS North", "West EMS South", "West EMS East", "West EMS Mountain"):
        await ensure_company(session, child, time_zone="America/Denver", parent=west)
    await user(west, "betty", "Betty Supervisor", account_type=AccountType.company_admin)
    barney = await user(west, "barney", "Barney Biller")
    await ensure_group(session, west, "Biller", [barney],
                       permissions=[Permission.BILLS_VIEW, Permission.BILLS_SAVE, Permission.BILLS_SUBMIT])

    vendor = await ensure_company(session, "billing-api Support")
    await user(vendor, "support", "Sam Support", account_type=AccountType.support)
    return DEMO_LOGINS
