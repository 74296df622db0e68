"""All SQLAlchemy models. Import from here so every table is registered on one MetaData."""

from billing_api.models.abuse import FailureCounter
from billing_api.models.access_log import AccessLogEntry
from billing_api.models.access_review import (
    NO_VIA,
    AccessGrantUse,
    AccessGrantUseDay,
    AccessReviewAttestation,
    AccessReviewReminder,
    AccessUsageRollup,
)
from billing_api.models.audit import AuditEvent
from billing_api.models.automation import (
    AutomatedEncounter,
    AutomationRun,
    AutomationStage,
    AutopayCharge,
    BillCreation,
    BillingContact,
    BillingDocument,
    ChargeStatus,
    CompanyBillingAutomation,
    DocumentKind,
    PatientBillingSettings,
    PaymentCard,
    ShareState,
    StatementItem,
    SuperbillItem,
)
from billing_api.models.base import Base
from billing_api.models.billing import (
    Bill,
    BillLine,
    BillSource,
    BillStatus,
    Coverage,
    CPT_CODE_SYSTEMS,
    DiagnosisCodeSystem,
    Encounter,
    EncounterLine,
    Patient,
    ProviderBillCount,
    ServiceCodeSystem,
    Visit,
)
from billing_api.models.billing_identity import CompanyBillingIdentity, ProviderBillingIdentity
from billing_api.models.delegation import DelegationEntry, DelegationList
from billing_api.models.identity import AccountType, Company, Group, GroupMember, User, UserKind, UserStatus
from billing_api.models.integration import IdempotencyKey, IntegrationEvent
from billing_api.models.multi_company import Facility, GroupCompanyAssignment, Payer, UserCompanyAssignment
from billing_api.models.mail import OutboxMessage, OutboxStatus
from billing_api.models.payments import Payment, PaymentMethod
from billing_api.models.team import DeliveryStatus, Invitation, InvitationStatus

__all__ = [
    "AccessLogEntry",
    "NO_VIA",
    "AccessGrantUse",
    "AccessGrantUseDay",
    "AccessReviewAttestation",
    "AccessReviewReminder",
    "AccessUsageRollup",
    "AutomatedEncounter",
    "AutomationRun",
    "AutomationStage",
    "AutopayCharge",
    "BillCreation",
    "BillingContact",
    "BillingDocument",
    "ChargeStatus",
    "CompanyBillingAutomation",
    "DocumentKind",
    "PatientBillingSettings",
    "PaymentCard",
    "ShareState",
    "StatementItem",
    "SuperbillItem",
    "Bill",
    "BillLine",
    "CPT_CODE_SYSTEMS",
    "DiagnosisCodeSystem",
    "ServiceCodeSystem",
    "BillSource",
    "BillStatus",
    "Coverage",
    "CompanyBillingIdentity",
    "ProviderBillingIdentity",
    "DelegationEntry",
    "DelegationList",
    "Encounter",
    "EncounterLine",
    "Facility",
    "GroupCompanyAssignment",
    "Payer",
    "UserCompanyAssignment",
    "Patient",
    "ProviderBillCount",
    "Visit",
    "AccountType",
    "AuditEvent",
    "FailureCounter",
    "Base",
    "Company",
    "Group",
    "GroupMember",
    "User",
    "UserKind",
    "UserStatus",
    "DeliveryStatus",
    "Invitation",
    "InvitationStatus",
    "OutboxMessage",
    "OutboxStatus",
    "IdempotencyKey",
    "IntegrationEvent",
    "Payment",
    "PaymentMethod",
]
