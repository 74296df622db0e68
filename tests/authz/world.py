"""The `world`: one practice with every class of caller, and bills on every surface, for the decision tables; and
the `route_world`, the same world plus a target for every route, for the route matrix.

Built by calling the builder (`build_world(factory, segregated=...)`), not through a fixture: most tests build it
once per segregation state they are parametrized with, and the tests that commit for real build it on `live`.
Besides the authz suite, the access log, delegation, events, idempotency, identity, invoices and team tests (and
the housekeeping test in tests/ops) build it when they need a provider, the people around them, and bills, with
the callers' expected answers (`CALLERS`, `SEES_OWNER_BILLS`, `MAY_CHANGE_OWNER_BILLS`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import delete

from billing_api.authz.permissions import ROLE_PRESETS, Permission, RolePreset
from billing_api.mail.secrets import fingerprint
from billing_api.models import (
    AccountType,
    Bill,
    BillingDocument,
    BillLine,
    BillStatus,
    Company,
    CompanyBillingAutomation,
    Coverage,
    DelegationEntry,
    DocumentKind,
    Encounter,
    EncounterLine,
    Facility,
    GroupMember,
    Invitation,
    Patient,
    Payer,
    PaymentCard,
    User,
    UserKind,
    UserStatus,
    Visit,
)
from tests.factories import Factory

CALLERS = [
    "owner",             # the provider whose bills these are
    "delegate_user",     # named on the owner's list (data entry)
    "group_delegate",    # member of a group on the owner's list (financial viewer)
    "removed_member",    # was in that group, removed
    "deactivated_delegate",
    "expired_delegate",  # named by an entry that has expired
    "other_provider",    # another provider of the same clinic
    "admin_one",         # users:edit_others only
    "admin_both",        # users:edit_others + billing:delegation_settings
    "company_admin",     # account type company_admin of the clinic
    "parent_admin",      # company_admin of the clinic's parent company
    "role_biller",       # in a group whose role holds the data-entry permissions, not on the list
    "staff",             # plain clinic user
    "support",           # the vendor's support
    "outsider",          # a user of another company
]


# The fee of the encounter's one service line (the insured bill was made from it): billing information.
ENCOUNTER_FEE = 12000


def _preset(role: RolePreset) -> list[str]:
    return sorted(p.value for p in ROLE_PRESETS[role])


@dataclass
class World:
    network: Company
    clinic: Company
    elsewhere: Company
    users: dict[str, User]
    patient: Patient
    encounter: Encounter
    visit: Visit
    insured_bill: Bill
    private_bill: Bill
    other_provider_bill: Bill
    elsewhere_bill: Bill
    group_id: uuid.UUID
    payer: Payer | None = None  # the clinic's payer: the patient's payer of record, named by its insured bills
    extra: dict = field(default_factory=dict)

    @property
    def owner(self) -> User:
        return self.users["owner"]

    @property
    def owner_bill_ids(self) -> set[str]:
        return {str(self.insured_bill.id), str(self.private_bill.id)}


async def _bill(factory: Factory, company: Company, provider: User, patient: Patient, coverage: Coverage,
                *, encounter: Encounter | None = None, visit: Visit | None = None, payer: Payer | None = None) -> Bill:
    bill = Bill(id=uuid.uuid4(), company_id=company.id, provider_id=provider.id, patient_id=patient.id,
                encounter_id=encounter.id if encounter else None, visit_id=visit.id if visit else None,
                coverage=coverage, payer_id=payer.id if payer else None, service_date=date(2026, 11, 2),
                total_cents=12000, balance_cents=12000)
    factory.session.add(bill)
    await factory.session.flush()
    factory.session.add(BillLine(id=uuid.uuid4(), bill_id=bill.id, position=0, code_system="cpt", code="99213",
                                 description="Office visit", units=1, fee_cents=12000))
    await factory.session.flush()
    return bill


async def build_world(factory: Factory, *, segregated: bool) -> World:
    """The `world`: Clinic (a child of Network) with the owner provider, another provider, and one user for every
    class of caller in `CALLERS` (delegates by name, by group, removed, deactivated and expired; administrators of
    the clinic and its parent; a role biller; plain staff), support from Vendor and an outsider from Elsewhere. The
    owner's list names the delegates; a patient with a visit and an encounter (one service line, whose fee is
    `ENCOUNTER_FEE`); the owner's insured and private bills, another provider's bill and one in Elsewhere.
    `segregated` switches the clinic's billing segregation on."""
    session = factory.session
    network = await factory.company("Network")
    clinic = await factory.company("Clinic", parent=network)
    elsewhere = await factory.company("Elsewhere")
    u: dict[str, User] = {}
    u["owner"] = await factory.user(clinic, name="Owner Provider", provider=True)
    u["other_provider"] = await factory.user(clinic, name="Other Provider", provider=True)
    for name in ("delegate_user", "group_delegate", "removed_member", "expired_delegate", "staff"):
        u[name] = await factory.user(clinic, name=name)
    u["deactivated_delegate"] = await factory.user(clinic, name="deactivated", status=UserStatus.deactivated)
    u["admin_one"] = await factory.user(clinic, name="admin_one", permissions=[Permission.USERS_EDIT_OTHERS.value])
    u["admin_both"] = await factory.user(clinic, name="admin_both", permissions=[
        Permission.USERS_EDIT_OTHERS.value, Permission.BILLING_DELEGATION_SETTINGS.value])
    u["company_admin"] = await factory.user(clinic, name="company_admin", account_type=AccountType.company_admin)
    u["parent_admin"] = await factory.user(network, name="parent_admin", account_type=AccountType.company_admin)
    u["role_biller"] = await factory.user(clinic, name="role_biller")
    vendor = await factory.company("Vendor")
    u["support"] = await factory.user(vendor, name="support", account_type=AccountType.support)
    u["outsider"] = await factory.user(elsewhere, name="outsider")
    far_provider = await factory.user(elsewhere, name="Far Provider", provider=True)

    clerks = await factory.group(clinic, [u["group_delegate"], u["removed_member"]], name="Billing clerks")
    await factory.group(clinic, [u["role_biller"]], name="Billers", permissions=_preset(RolePreset.DATA_ENTRY))
    past = datetime.now(UTC) - timedelta(days=1)
    for user_id, group_id, role, expires in (
        (u["delegate_user"].id, None, RolePreset.DATA_ENTRY, None),
        (None, clerks.id, RolePreset.FINANCIAL_VIEWER, None),
        (u["deactivated_delegate"].id, None, RolePreset.ADMINISTRATOR, None),
        (u["expired_delegate"].id, None, RolePreset.ADMINISTRATOR, past),
    ):
        session.add(DelegationEntry(id=uuid.uuid4(), provider_id=u["owner"].id, user_id=user_id, group_id=group_id,
                                    role=role.value, permissions=_preset(role), expires_at=expires))
    await session.flush()
    # "member removed from the group": membership taken away after the list was set up.
    await session.execute(delete(GroupMember).where(GroupMember.group_id == clerks.id,
                                                    GroupMember.user_id == u["removed_member"].id))

    payer = Payer(id=uuid.uuid4(), company_id=clinic.id, name="Clinic Mutual")
    far_payer = Payer(id=uuid.uuid4(), company_id=elsewhere.id, name="Elsewhere Mutual")
    session.add_all([payer, far_payer])
    await session.flush()
    patient = Patient(id=uuid.uuid4(), company_id=clinic.id, first_name="Pat", last_name="Ient", payer_id=payer.id)
    far_patient = Patient(id=uuid.uuid4(), company_id=elsewhere.id, first_name="Far", last_name="Away",
                          payer_id=far_payer.id)
    session.add_all([patient, far_patient])
    await session.flush()
    visit = Visit(id=uuid.uuid4(), company_id=clinic.id, patient_id=patient.id, provider_id=u["owner"].id,
                  scheduled_at=datetime(2026, 11, 2, 15, tzinfo=UTC))
    session.add(visit)
    await session.flush()
    encounter = Encounter(id=uuid.uuid4(), company_id=clinic.id, patient_id=patient.id, provider_id=u["owner"].id,
                          visit_id=visit.id, service_date=date(2026, 11, 2))
    session.add(encounter)
    await session.flush()
    session.add(EncounterLine(id=uuid.uuid4(), encounter_id=encounter.id, position=0, code_system="cpt", code="99213",
                              description="Office visit", units=1, fee_cents=ENCOUNTER_FEE))
    await session.flush()
    insured = await _bill(factory, clinic, u["owner"], patient, Coverage.insured, encounter=encounter, visit=visit,
                          payer=payer)
    private = await _bill(factory, clinic, u["owner"], patient, Coverage.private, visit=visit)
    other = await _bill(factory, clinic, u["other_provider"], patient, Coverage.insured, payer=payer)
    far = await _bill(factory, elsewhere, far_provider, far_patient, Coverage.insured, payer=far_payer)
    if segregated:
        clinic.billing_segregation_enabled_at = datetime.now(UTC)
        await session.flush()
    return World(network, clinic, elsewhere, u, patient, encounter, visit, insured, private, other, far, clerks.id,
                 payer)


# Who sees the owner's bills (bills:view), by segregation state. Everyone else gets 404.
SEES_OWNER_BILLS = {
    False: {"owner", "delegate_user", "group_delegate", "removed_member", "expired_delegate", "other_provider",
            "admin_one", "admin_both", "company_admin", "parent_admin", "role_biller", "staff", "support"},
    True: {"owner", "delegate_user", "group_delegate", "support"},
}

# Who may change the owner's draft bills with each permission, by segregation state.
MAY_CHANGE_OWNER_BILLS = {
    False: {"owner", "delegate_user", "role_biller"},
    True: {"owner", "delegate_user"},
}


# Invited users of the owner's team, one per role preset; custom holds a viewing subset.
INVITED = {
    "invited_viewer": RolePreset.FINANCIAL_VIEWER,
    "invited_entry": RolePreset.DATA_ENTRY,
    "invited_admin": RolePreset.ADMINISTRATOR,
    "invited_custom": RolePreset.CUSTOM,
}
CUSTOM_PERMISSIONS = sorted([Permission.BILLS_VIEW.value, Permission.INVOICES_VIEW.value])
# The secret of the owner's invitation to a newcomer (only its fingerprint is stored, as the service does).
ACCEPT_TOKEN = "route-matrix-invitation-token"


def _invitation(world: World, email: str, secret: str) -> Invitation:
    return Invitation(id=uuid.uuid4(), provider_id=world.owner.id, company_id=world.clinic.id,
                      invited_by=world.owner.id, email=email, username=email.split("@")[0],
                      role=RolePreset.DATA_ENTRY.value, permissions=_preset(RolePreset.DATA_ENTRY),
                      token_hash=fingerprint(secret), expires_at=datetime.now(UTC) + timedelta(days=7))


async def build_route_world(factory: Factory) -> World:
    """The segregated world plus what every route needs a target for: the owner's invited team (one member
    per preset), a pending invitation and one waiting for a newcomer, a submitted bill (payments), payers and
    facilities at the parent level (copy-down), a card on the patient's file, a superbill of the patient and the
    clinic's automation settings. Kept in `extra`."""
    world = await build_world(factory, segregated=True)
    session = factory.session
    for name, role in INVITED.items():
        user = await factory.user(world.clinic, name=name, kind=UserKind.invited)
        world.users[name] = user
        permissions = CUSTOM_PERMISSIONS if role == RolePreset.CUSTOM else _preset(role)
        session.add(DelegationEntry(id=uuid.uuid4(), provider_id=world.owner.id, user_id=user.id, role=role.value,
                                    permissions=permissions, source="invitation"))
    pending = _invitation(world, f"pending-{uuid.uuid4().hex[:8]}@mail.example.org", uuid.uuid4().hex)
    newcomer = _invitation(world, f"newcomer-{uuid.uuid4().hex[:8]}@mail.example.org", ACCEPT_TOKEN)
    payer = Payer(id=uuid.uuid4(), company_id=world.network.id, name="Blue Shield")
    facility = Facility(id=uuid.uuid4(), company_id=world.network.id, name="Main Street Clinic")
    card = PaymentCard(id=uuid.uuid4(), company_id=world.clinic.id, patient_id=world.patient.id, token="tok_visa",
                       brand="visa", last4="4242", exp_month=12, exp_year=2099)
    automation = CompanyBillingAutomation(company_id=world.clinic.id)  # so that defaults can be applied
    session.add_all([pending, newcomer, payer, facility, card, automation])
    await session.flush()
    submitted = await _bill(factory, world.clinic, world.owner, world.patient, Coverage.insured)
    submitted.status = BillStatus.submitted
    # October's: November's is left for the route matrix's manual superbill of the owner's session.
    superbill = BillingDocument(id=uuid.uuid4(), company_id=world.clinic.id, patient_id=world.patient.id,
                                kind=DocumentKind.superbill, period_start=date(2026, 10, 1),
                                period_end=date(2026, 10, 31), total_cents=ENCOUNTER_FEE)
    session.add(superbill)
    await session.flush()
    world.extra.update(pending_invitation=pending, payer=payer, facility=facility, card=card,
                       submitted_bill=submitted, superbill=superbill)
    return world
