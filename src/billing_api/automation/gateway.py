"""The payment gateway port, and the built-in test gateway (BILLING_API_PAYMENT_GATEWAY=test).

Test card tokens (documented in docs/automation.md):
- `tok_success`: every charge succeeds;
- `tok_decline`: every charge is declined (`card_declined`); AutoPay retries it on later nights, at most
  `autopay_max_attempts` nights per bill;
- `tok_expired`: declined as `expired_card`; the card is marked inactive, so AutoPay stops using it.
Any other token is declined as `unknown_token`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from billing_api.config import Settings

TEST_TOKENS = {"tok_success": ("visa", "4242"), "tok_decline": ("visa", "0002"), "tok_expired": ("mastercard", "0069")}


@dataclass(frozen=True)
class ChargeResult:
    succeeded: bool
    reference: str | None = None
    decline_reason: str | None = None
    card_expired: bool = False


class PaymentGateway(Protocol):
    async def charge(self, token: str, amount_cents: int, idempotency_key: str) -> ChargeResult: ...


class TestGateway:
    """Deterministic, in process: the outcome depends on the token only."""

    async def charge(self, token: str, amount_cents: int, idempotency_key: str) -> ChargeResult:
        reference = "test_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        if token == "tok_success":
            return ChargeResult(True, reference=reference)
        if token == "tok_expired":
            return ChargeResult(False, reference=reference, decline_reason="expired_card", card_expired=True)
        if token == "tok_decline":
            return ChargeResult(False, reference=reference, decline_reason="card_declined")
        return ChargeResult(False, reference=reference, decline_reason="unknown_token")


def get_gateway(settings: Settings) -> PaymentGateway:
    if settings.payment_gateway == "test":
        return TestGateway()
    raise RuntimeError(f"unknown payment gateway {settings.payment_gateway!r}")
