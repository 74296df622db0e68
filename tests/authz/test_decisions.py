"""authorize() against the SQL scope, for every caller, every billing permission, segregation off and on.
The decision and the bill query are built from the same rules; they must never disagree."""

from __future__ import annotations

import uuid

import pytest

from billing_api.authz.decisions import authorize
from billing_api.authz.permissions import BILLING_PERMISSIONS, ROLE_PRESETS, SUPPORT_PERMISSIONS, Permission, RolePreset
from billing_api.authz.scope import bill_scope
from billing_api.bills.repository import BillRepository
from billing_api.models import AccountType, DelegationEntry, User, UserStatus
from tests.authz.world import CALLERS, SEES_OWNER_BILLS, build_world

SEGREGATION = [pytest.param(False, id="segregation-off"), pytest.param(True, id="segregation-on")]
VIEW = frozenset({Permission.BILLS_VIEW})
DATA_ENTRY = ROLE_PRESETS[RolePreset.DATA_ENTRY]
FINANCIAL_VIEWER = ROLE_PRESETS[RolePreset.FINANCIAL_VIEWER]
NOTHING: frozenset[Permission] = frozenset()

# What each caller may do with the owner's bills: rules 4 and 5 always; rule 6 only with segregation off.
EXPECTED: dict[bool, dict[str, frozenset[Permission]]] = {
    False: {
        "owner": BILLING_PERMISSIONS,
        "delegate_user": DATA_ENTRY,
        "group_delegate": FINANCIAL_VIEWER,
        "removed_member": VIEW,
        "deactivated_delegate": NOTHING,
        "expired_delegate": VIEW,
        "other_provider": VIEW,
        "admin_one": VIEW,
        "admin_both": VIEW,
        "company_admin": VIEW,
        "parent_admin": VIEW,
        "role_biller": DATA_ENTRY,  # their group's role applies company-wide
        "staff": VIEW,
        "support": SUPPORT_PERMISSIONS,
        "outsider": NOTHING,
    },
    True: {
        "owner": BILLING_PERMISSIONS,
        "delegate_user": DATA_ENTRY,
        "group_delegate": FINANCIAL_VIEWER,
        "support": SUPPORT_PERMISSIONS,
        **{name: NOTHING for name in ("removed_member", "deactivated_delegate", "expired_delegate", "other_provider",
                                      "admin_one", "admin_both", "company_admin", "parent_admin", "role_biller",
                                      "staff", "outsider")},
    },
}


def test_the_expected_table_agrees_with_the_world():
    for segregated, table in EXPECTED.items():
        assert set(table) == set(CALLERS)
        assert {name for name, permissions in table.items() if Permission.BILLS_VIEW in permissions} == \
            SEES_OWNER_BILLS[segregated]


@pytest.mark.parametrize("segregated", SEGREGATION)
@pytest.mark.parametrize("caller", CALLERS)
async def test_decision_and_scope_agree(session, factory, caller, segregated):
    world = await build_world(factory, segregated=segregated)
    actor = world.users[caller]
    granted = set()
    for permission in sorted(BILLING_PERMISSIONS):
        decision = await authorize(session, actor.id, permission, world.owner.id)
        scope = bill_scope(actor.id, permission, is_support=actor.account_type == AccountType.support)
        found = await BillRepository(session, scope).get(world.private_bill.id)
        assert decision.allowed is (found is not None), (caller, permission, decision)
        # The verdict (SQL) and its explanation (read beside it) tell the same story.
        assert decision.allowed is any(reason.grants for reason in decision.reasons), (caller, permission, decision)
        assert decision.reasons, (caller, permission)
        assert decision.actor_id == actor.id and decision.provider_id == world.owner.id
        assert decision.company_id == world.clinic.id and decision.permission == permission
        if decision.allowed:
            granted.add(permission)
        # The scope gives the same answer for the owner's other bill; another company's bill only to support
        # and to that company's own people (the outsider views it company-wide there).
        assert (await BillRepository(session, scope).get(world.insured_bill.id) is not None) is decision.allowed
        elsewhere = await BillRepository(session, scope).get(world.elsewhere_bill.id)
        assert (elsewhere is not None) is ((caller == "support" and permission in SUPPORT_PERMISSIONS)
                                           or (caller == "outsider" and permission == Permission.BILLS_VIEW))
    assert granted == EXPECTED[segregated][caller], caller


@pytest.mark.parametrize("segregated", SEGREGATION)
async def test_a_deactivated_actor_has_nothing_even_on_the_list(session, factory, segregated):
    world = await build_world(factory, segregated=segregated)
    actor = world.users["deactivated_delegate"]
    for permission in Permission:
        decision = await authorize(session, actor.id, permission, world.owner.id)
        assert decision.allowed is False
        assert [r.rule for r in decision.reasons] == ["deactivated"]
        scope = bill_scope(actor.id, permission, is_support=False)
        assert await BillRepository(session, scope).get(world.private_bill.id) is None


@pytest.mark.parametrize("segregated", SEGREGATION)
async def test_support_only_views(session, factory, segregated):
    world = await build_world(factory, segregated=segregated)
    support = world.users["support"]
    for provider, bill in ((world.owner, world.private_bill), (world.users["other_provider"], world.other_provider_bill)):
        for permission in BILLING_PERMISSIONS:
            decision = await authorize(session, support.id, permission, provider.id)
            expected = permission in {Permission.BILLS_VIEW, Permission.INVOICES_VIEW, Permission.REPORTS_GENERATE}
            assert decision.allowed is expected, permission
            assert [r.rule for r in decision.reasons] == ["support"]
            found = await BillRepository(session, bill_scope(support.id, permission, is_support=True)).get(bill.id)
            assert (found is not None) is expected


async def what_the_scope_grants(session, actor: User, permission: Permission, bill) -> tuple[bool, set]:
    """From real queries of the actor's bill scope: whether it finds the bill, and the providers it grants
    through rules 4 and 5."""
    scope = bill_scope(actor.id, permission, is_support=actor.account_type == AccountType.support)
    found = await BillRepository(session, scope).get(bill.id) is not None
    providers = set((await session.execute(scope.providers(), scope.params)).scalars())
    return found, providers


async def list_a_data_entry_group(factory, world, *members: User) -> uuid.UUID:
    """A group of the clinic, with these members, named on the owner's list with the data-entry preset."""
    group = await factory.group(world.clinic, list(members), name="Entry clerks")
    factory.session.add(DelegationEntry(id=uuid.uuid4(), provider_id=world.owner.id, group_id=group.id,
                                        role=RolePreset.DATA_ENTRY.value,
                                        permissions=sorted(p.value for p in DATA_ENTRY)))
    await factory.session.flush()
    return group.id


async def assert_the_entry_grants_its_active_member(session, world, member: User, group_id) -> None:
    for permission in sorted(Permission):
        decision = await authorize(session, member.id, permission, world.owner.id)
        found, providers = await what_the_scope_grants(session, member, permission, world.private_bill)
        granted = permission in DATA_ENTRY
        assert decision.allowed is granted is found, (permission, decision)
        assert (world.owner.id in providers) is granted, permission
        assert any(r.rule == "delegation_group" and r.grants and r.group_id == group_id
                   for r in decision.reasons) is granted, (permission, decision.reasons)


@pytest.mark.parametrize("segregated", SEGREGATION)
async def test_a_deactivated_member_of_a_listed_group_has_no_access_at_all(session, factory, segregated):
    """Rule 1 holds inside a listed group: the group's data-entry entry gives its active member data entry, and
    its deactivated member nothing, neither in a decision nor in the bill scope."""
    world = await build_world(factory, segregated=segregated)
    member = await factory.user(world.clinic, name="entry clerk")
    deactivated = await factory.user(world.clinic, name="deactivated clerk", status=UserStatus.deactivated)
    group_id = await list_a_data_entry_group(factory, world, member, deactivated)

    await assert_the_entry_grants_its_active_member(session, world, member, group_id)
    for permission in sorted(Permission):
        decision = await authorize(session, deactivated.id, permission, world.owner.id)
        assert decision.allowed is False, permission
        assert [(r.rule, r.grants) for r in decision.reasons] == [("deactivated", False)], permission
        assert await what_the_scope_grants(session, deactivated, permission, world.private_bill) == (False, set())


@pytest.mark.parametrize("segregated", SEGREGATION)
async def test_support_in_a_listed_group_keeps_only_its_read_only_override(session, factory, segregated):
    """Rule 2 holds inside a listed group: support sitting in a group whose entry is data entry still only
    views (audited, its own override), never bills:save or the rest of the entry; its scope grants no provider
    through the list."""
    world = await build_world(factory, segregated=segregated)
    member = await factory.user(world.clinic, name="entry clerk")
    support = world.users["support"]
    group_id = await list_a_data_entry_group(factory, world, member, support)

    await assert_the_entry_grants_its_active_member(session, world, member, group_id)
    for permission in sorted(Permission):
        decision = await authorize(session, support.id, permission, world.owner.id)
        viewing = permission in SUPPORT_PERMISSIONS
        assert decision.allowed is viewing, permission
        assert [(r.rule, r.grants) for r in decision.reasons] == [("support", viewing)], permission
        assert await what_the_scope_grants(session, support, permission, world.private_bill) == (viewing, set())
    assert Permission.BILLS_SAVE in DATA_ENTRY - SUPPORT_PERMISSIONS  # what the entry would have handed over


@pytest.mark.parametrize("segregated", SEGREGATION)
async def test_team_invite_is_only_the_owners(session, factory, segregated):
    world = await build_world(factory, segregated=segregated)
    for name in CALLERS:
        decision = await authorize(session, world.users[name].id, Permission.TEAM_INVITE, world.owner.id)
        assert decision.allowed is (name == "owner"), name
    # Not even an administrator-preset delegate (the deactivated and expired ones hold that preset).
    own = await authorize(session, world.owner.id, Permission.TEAM_INVITE, world.owner.id)
    assert [r.rule for r in own.reasons if r.grants] == ["own_bills"]
    other = await authorize(session, world.users["other_provider"].id, Permission.TEAM_INVITE,
                            world.users["other_provider"].id)
    assert other.allowed is True


async def test_admin_permissions_are_never_billing_grants(session, factory):
    world = await build_world(factory, segregated=False)
    for name in ("owner", "admin_both", "company_admin", "support"):
        for permission in Permission:
            if permission in BILLING_PERMISSIONS:
                continue
            decision = await authorize(session, world.users[name].id, permission, world.owner.id)
            assert decision.allowed is False, (name, permission)
            assert not any(r.grants for r in decision.reasons), (name, permission, decision.reasons)


async def test_unknown_actor_and_provider(session, factory):
    import uuid

    world = await build_world(factory, segregated=False)
    nobody = await authorize(session, uuid.uuid4(), Permission.BILLS_VIEW, world.owner.id)
    assert nobody.allowed is False and [r.rule for r in nobody.reasons] == ["no_such_user"]
    no_provider = await authorize(session, world.users["staff"].id, Permission.BILLS_VIEW, uuid.uuid4())
    assert no_provider.allowed is False and not any(r.grants for r in no_provider.reasons)
