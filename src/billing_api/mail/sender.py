"""The outbox sender: delivers queued mail over SMTP (aiosmtplib), retrying with exponential backoff, and
records each outcome on the message and on the invitation it announces.

Each message is claimed with FOR UPDATE SKIP LOCKED in its own transaction, so any number of senders
(every `billing-api serve` worker and every `billing-api worker`) share one outbox without sending twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_api.config import Settings
from billing_api.mail import repository, secrets, templates
from billing_api.models import DeliveryStatus, InvitationStatus, OutboxMessage, OutboxStatus

logger = logging.getLogger("billing_api.mail")


@dataclass(frozen=True)
class Failure:
    reason: str
    permanent: bool


def build_message(settings: Settings, to_address: str, rendered: templates.Rendered) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to_address
    message["Subject"] = rendered.subject
    message["Message-ID"] = make_msgid(domain="billing-api")
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def _reason(code: int, text: str) -> str:
    return f"{code} {' '.join(str(text).split())}".strip()


async def send_over_smtp(settings: Settings, message: EmailMessage) -> Failure | None:
    """None when the server accepted the message; otherwise why not, and whether retrying can help
    (SMTP 5xx answers are permanent; 4xx answers, timeouts and connection failures are not)."""
    try:
        await aiosmtplib.send(
            message, hostname=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_username,
            password=settings.smtp_password, start_tls=settings.smtp_starttls, use_tls=settings.smtp_use_tls,
            timeout=settings.smtp_timeout_seconds,
        )
    except aiosmtplib.SMTPRecipientsRefused as error:
        refused = error.recipients[0] if error.recipients else None
        if refused is None:
            return Failure("recipient refused", permanent=True)
        return Failure(_reason(refused.code, refused.message), permanent=refused.code >= 500)
    except aiosmtplib.SMTPResponseException as error:
        return Failure(_reason(error.code, error.message), permanent=error.code >= 500)
    except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as error:
        return Failure(f"could not reach the mail server {settings.smtp_host}:{settings.smtp_port}: "
                       f"{' '.join(str(error).split()) or type(error).__name__}", permanent=False)
    return None


def backoff(settings: Settings, attempts: int) -> timedelta:
    """Exponential: base, 2 x base, 4 x base, ... capped."""
    seconds = settings.mail_retry_base_seconds * (2 ** max(attempts - 1, 0))
    return timedelta(seconds=min(seconds, settings.mail_retry_max_seconds))


async def _attempt(session: AsyncSession, settings: Settings, message: OutboxMessage) -> None:
    now = datetime.now(UTC)
    secret = secrets.derive(settings, message.secret_nonce) if message.secret_nonce else None
    token_hash = secrets.fingerprint(secret) if secret else None
    if message.invitation_id is not None:
        invitation = await repository.get_invitation(session, message.invitation_id)
        if invitation is None or invitation.status != InvitationStatus.pending or invitation.token_hash != token_hash:
            # Cancelled, accepted, or superseded by a resend (or the server key changed): this mail must not go.
            message.status, message.secret_nonce = OutboxStatus.cancelled, None
            message.last_error = "the invitation is no longer pending with this token"
            return
    message.attempts += 1
    message.last_attempt_at = now
    try:
        email = build_message(settings, message.to_address, templates.render(
            settings, message.template, message.context, secret))
    except (ValueError, KeyError, TypeError) as error:
        failure: Failure | None = Failure(f"the message cannot be built: {error}", permanent=True)
    else:
        failure = await send_over_smtp(settings, email)
    if failure is None:
        message.status, message.sent_at, message.last_error = OutboxStatus.sent, now, None
        delivery = DeliveryStatus.sent
    elif failure.permanent or message.attempts >= settings.mail_max_attempts:
        message.status, message.last_error = OutboxStatus.failed, failure.reason
        delivery = DeliveryStatus.failed
    else:
        message.last_error = failure.reason
        message.next_attempt_at = now + backoff(settings, message.attempts)
        delivery = DeliveryStatus.queued
    if message.status != OutboxStatus.queued:
        message.secret_nonce = None  # the token leaves no trace once the message is done with
    if failure is not None:
        logger.warning("mail %s to %s: %s (attempt %d, %s)", message.id, message.to_address, failure.reason,
                       message.attempts, delivery.value)
    if message.invitation_id is not None and token_hash is not None:
        await repository.record_on_invitation(
            session, message.invitation_id, token_hash, status=delivery, attempts=message.attempts,
            attempted_at=now, error=message.last_error, sent_at=message.sent_at,
        )


async def deliver_due(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, *, limit: int = 100) -> int:
    """Attempt up to `limit` messages that are due, each in its own transaction; how many were attempted."""
    attempted = 0
    while attempted < limit:
        async with sessionmaker() as session:
            message = await repository.claim_next(session)
            if message is None:
                await session.rollback()
                break
            await _attempt(session, settings, message)
            await session.commit()
        attempted += 1
    return attempted


async def run(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, stop: asyncio.Event) -> None:
    """Deliver until `stop` is set: at once while there is work, else every `mail_poll_seconds`."""
    logger.info("mail sender started (SMTP %s:%s)", settings.smtp_host, settings.smtp_port)
    while not stop.is_set():
        try:
            attempted = await deliver_due(sessionmaker, settings)
        except Exception:  # the database is away, say: keep the loop alive and try again later
            logger.exception("mail sender pass failed")
            attempted = 0
        if attempted:
            continue
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.mail_poll_seconds)
        except TimeoutError:
            pass
    logger.info("mail sender stopped")
