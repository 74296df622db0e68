"""Administrative decisions (who may manage companies, users and groups). Billing access is in rules.py and scope.py."""

from __future__ import annotations

import uuid

from billing_api.authz.actor import Actor
from billing_api.authz.permissions import LIST_MANAGER_PERMISSIONS, Permission
from billing_api.models import User


def may_view_company(actor: Actor, company_id: uuid.UUID) -> bool:
    """Support oversees every company, read-only; everyone else sees the companies they reach."""
    return actor.active and actor.reach.reaches(company_id)


def may_administer_users(actor: Actor, company_id: uuid.UUID) -> bool:
    """Create and change users and groups: company admins and holders of users:edit_others, where they reach."""
    if not actor.active or actor.is_support or not actor.reaches(company_id):
        return False
    return actor.is_company_admin or actor.holds(Permission.USERS_EDIT_OTHERS)


def may_administer_company(actor: Actor, company_id: uuid.UUID) -> bool:
    return actor.active and actor.is_company_admin and actor.reaches(company_id)


def is_list_manager(actor: Actor, company_id: uuid.UUID) -> bool:
    """Rule 7: holders of both users:edit_others and billing:delegation_settings, where they reach."""
    return (
        actor.active
        and not actor.is_support
        and actor.reaches(company_id)
        and actor.holds(*LIST_MANAGER_PERMISSIONS)
    )


def may_manage_list(actor: Actor, provider: User) -> bool:
    """The provider manages their own list; list managers manage any list in companies they reach."""
    if not actor.active or actor.is_support:
        return False
    return actor.id == provider.id or is_list_manager(actor, provider.company_id)


def may_manage_segregation(actor: Actor, company_id: uuid.UUID) -> bool:
    return may_administer_company(actor, company_id) or is_list_manager(actor, company_id)


def may_manage_company_records(actor: Actor, company_id: uuid.UUID, *, parent_level: bool,
                               permission: Permission) -> bool:
    """Payers and facilities (`permission` is payers:manage or facilities:manage). At the parent level (a
    top-level company) only company administrators may create, edit, delete or copy them, whatever their roles
    hold; at a child level, company administrators and holders of the permission, where they reach."""
    if not actor.active or actor.is_support or not actor.reaches(company_id):
        return False
    if actor.is_company_admin:
        return True
    return not parent_level and actor.holds(permission)


def may_grant_company_access(actor: Actor, company_ids: set[uuid.UUID]) -> bool:
    """Assigning child companies hands out reach: company admins may assign any child of what they administer;
    anyone else only companies they reach themselves (no one hands out more than they hold)."""
    return actor.is_company_admin or company_ids <= actor.reached_company_ids
