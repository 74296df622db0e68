"""All SQL that touches bills, one module per concern, each repository built only with a BillScope whose SQL
every statement carries (`scoped.py`)."""

from billing_api.bills.repository.automation import AutomationBillRepository
from billing_api.bills.repository.bills import BillRepository
from billing_api.bills.repository.dashboard import BillFilters
from billing_api.bills.repository.ledger import LedgerRepository
from billing_api.bills.repository.patients import PatientBillAccess

__all__ = ["AutomationBillRepository", "BillFilters", "BillRepository", "LedgerRepository", "PatientBillAccess"]
