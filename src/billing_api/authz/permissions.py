"""Permissions and the role presets (docs/concepts.md)."""

from __future__ import annotations

import enum


class Permission(enum.StrEnum):
    # Billing permissions: what a provider has on their own bills, and what delegation grants.
    BILLS_VIEW = "bills:view"
    BILLS_SAVE = "bills:save"
    BILLS_SUBMIT = "bills:submit"
    BILLS_DELETE = "bills:delete"
    REPORTS_GENERATE = "reports:generate"
    INVOICES_VIEW = "invoices:view"
    INVOICES_PAY = "invoices:pay"
    TEAM_INVITE = "team:invite"
    # Administrative permissions, held directly or through a group's role.
    USERS_EDIT_OTHERS = "users:edit_others"
    BILLING_DELEGATION_SETTINGS = "billing:delegation_settings"
    PAYERS_MANAGE = "payers:manage"
    FACILITIES_MANAGE = "facilities:manage"
    BILLING_AUTOMATION_MANAGE = "billing:automation_manage"


BILLING_PERMISSIONS: frozenset[Permission] = frozenset(
    {
        Permission.BILLS_VIEW,
        Permission.BILLS_SAVE,
        Permission.BILLS_SUBMIT,
        Permission.BILLS_DELETE,
        Permission.REPORTS_GENERATE,
        Permission.INVOICES_VIEW,
        Permission.INVOICES_PAY,
        Permission.TEAM_INVITE,
    }
)

# Support may only look (rule 2): view-class permissions, nothing that changes or pays.
SUPPORT_PERMISSIONS: frozenset[Permission] = frozenset(
    {Permission.BILLS_VIEW, Permission.INVOICES_VIEW, Permission.REPORTS_GENERATE}
)

ADMIN_PERMISSIONS: frozenset[Permission] = frozenset(Permission) - BILLING_PERMISSIONS

# Both are needed to manage someone else's delegation list (rule 7).
LIST_MANAGER_PERMISSIONS: frozenset[Permission] = frozenset(
    {Permission.USERS_EDIT_OTHERS, Permission.BILLING_DELEGATION_SETTINGS}
)


class RolePreset(enum.StrEnum):
    FINANCIAL_VIEWER = "financial_viewer"
    DATA_ENTRY = "data_entry"
    ADMINISTRATOR = "administrator"
    CUSTOM = "custom"


ROLE_PRESETS: dict[RolePreset, frozenset[Permission]] = {
    RolePreset.FINANCIAL_VIEWER: frozenset(
        {Permission.BILLS_VIEW, Permission.REPORTS_GENERATE, Permission.INVOICES_VIEW, Permission.INVOICES_PAY}
    ),
    RolePreset.DATA_ENTRY: frozenset(
        {Permission.BILLS_VIEW, Permission.BILLS_SAVE, Permission.BILLS_SUBMIT, Permission.BILLS_DELETE}
    ),
    # Every billing permission, but never team:invite.
    RolePreset.ADMINISTRATOR: BILLING_PERMISSIONS - {Permission.TEAM_INVITE},
}

ROLE_DESCRIPTIONS: dict[RolePreset, str] = {
    RolePreset.FINANCIAL_VIEWER: "View bills, generate reports, view and pay invoices; cannot save, submit or delete bills.",
    RolePreset.DATA_ENTRY: "Save, submit and delete bills; cannot generate reports or see invoices.",
    RolePreset.ADMINISTRATOR: "Full billing access, but cannot invite others.",
    RolePreset.CUSTOM: "Any subset of the billing permissions, chosen per person.",
}
