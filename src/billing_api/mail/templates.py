"""Email bodies, plain text and HTML, rendered when the message is sent (its secret is derived then)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from billing_api.config import Settings

INVITATION = "invitation"
ACCESS_REVIEW_DUE = "access_review_due"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def accept_link(settings: Settings, token: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/invitations/accept?token={quote(token, safe='')}"


def _one_line(value: Any) -> str:
    # Names come from users: no header injection through a subject line.
    return " ".join(str(value).split())


def _invitation(settings: Settings, context: dict[str, Any], token: str) -> Rendered:
    link = accept_link(settings, token)
    inviter, provider = _one_line(context["inviter_name"]), _one_line(context["provider_name"])
    role = _one_line(context["role_label"])
    abilities = [_one_line(a) for a in context.get("abilities", [])]
    expires = datetime.fromisoformat(context["expires_at"]).strftime("%Y-%m-%d %H:%M UTC")
    # One wording whether or not the address has an account: the inviter never learns which, and the reader
    # knows. (Messages queued before carry `existing_account`; it is not needed any more.)
    suggested = _one_line(context.get("username") or "")
    how = ("If you already have an account with this email address, sign in with it, then open the link to "
           "accept: one sign-in serves every provider you work for. If you are new, open the link to choose "
           "a username" + (f" (suggested: {suggested})" if suggested else "") + " and a password.")
    subject = f"{inviter} invited you to work on {provider}'s billing"
    text = "\n".join([
        "Hello,",
        "",
        f"{inviter} invited you to work on the billing of {provider} as {role}.",
        *([f"You will be able to: {'; '.join(abilities)}."] if abilities else []),
        "",
        how,
        "",
        "Accept the invitation:",
        link,
        "",
        f"The link works once and expires on {expires}.",
        "Invited users sign in on the web; the mobile app is not available to them.",
        "If you did not expect this email, you can ignore it.",
        "",
    ])
    e = html.escape
    items = "".join(f"<li>{e(a)}</li>" for a in abilities)
    body = (
        "<!doctype html><html><body>"
        "<p>Hello,</p>"
        f"<p>{e(inviter)} invited you to work on the billing of <strong>{e(provider)}</strong> as "
        f"<strong>{e(role)}</strong>.</p>"
        + (f"<p>You will be able to:</p><ul>{items}</ul>" if abilities else "")
        + f"<p>{e(how)}</p>"
        f'<p><a href="{e(link, quote=True)}">Accept the invitation</a></p>'
        f"<p>Or paste this address into your browser:<br>{e(link)}</p>"
        f"<p>The link works once and expires on {e(expires)}. Invited users sign in on the web; the mobile "
        "app is not available to them. If you did not expect this email, you can ignore it.</p>"
        "</body></html>"
    )
    return Rendered(subject=subject, text=text, html=body)


DOCUMENT_SHARED = "document_shared"
_KIND_LABELS = {"bill": "bill", "superbill": "superbill", "statement": "statement"}


def _document_shared(settings: Settings, context: dict[str, Any], secret: str | None) -> Rendered:
    """The notice that a billing document was shared (billing automation). It carries no secret."""
    kind = _KIND_LABELS[context["kind"]]
    company, patient = _one_line(context["company_name"]), _one_line(context["patient_name"])
    amount = f"{int(context['total_cents']) / 100:.2f}"
    subject = f"{company}: a new {kind} is available"
    text = "\n".join([
        "Hello,",
        "",
        f"{company} shared a new {kind} for {patient} (total {amount}).",
        "Sign in to your client portal to view it.",
        "",
    ])
    body = (f"<p>Hello,</p><p>{html.escape(company)} shared a new {kind} for {html.escape(patient)} "
            f"(total {amount}).</p><p>Sign in to your client portal to view it.</p>")
    return Rendered(subject, text, body)


def _access_review_due(settings: Settings, context: dict[str, Any], secret: str | None) -> Rendered:
    """The reminder that a provider's access review is overdue (access_review/). It carries no secret."""
    company, provider = _one_line(context["company_name"]), _one_line(context["provider_name"])
    due = datetime.fromisoformat(context["due_at"]).strftime("%Y-%m-%d")
    last = context.get("last_attested_at")
    since = (f"It was last confirmed on {datetime.fromisoformat(last).strftime('%Y-%m-%d')}." if last
             else "It has never been confirmed.")
    link = f"{settings.public_base_url.rstrip('/')}/v1/providers/{context['provider_id']}/access-review"
    subject = f"{company}: review who can see your bills"
    text = "\n".join([
        f"Hello {provider},",
        "",
        f"The review of who can see your billing data at {company} was due on {due}. {since}",
        "Check that everyone listed still needs access, remove what is no longer used, and confirm the review:",
        link,
        "",
    ])
    body = (f"<p>Hello {html.escape(provider)},</p><p>The review of who can see your billing data at "
            f"{html.escape(company)} was due on {due}. {html.escape(since)}</p><p>Check that everyone listed still "
            f"needs access, remove what is no longer used, and confirm the review: "
            f"<a href=\"{html.escape(link)}\">{html.escape(link)}</a></p>")
    return Rendered(subject, text, body)


RENDERERS = {INVITATION: _invitation, DOCUMENT_SHARED: _document_shared, ACCESS_REVIEW_DUE: _access_review_due}
NO_SECRET = {DOCUMENT_SHARED, ACCESS_REVIEW_DUE}


def render(settings: Settings, template: str, context: dict[str, Any], secret: str | None) -> Rendered:
    try:
        renderer = RENDERERS[template]
    except KeyError:
        raise ValueError(f"unknown mail template {template!r}") from None
    if secret is None and template not in NO_SECRET:
        raise ValueError("the message's secret is gone (already sent or given up)")
    return renderer(settings, context, secret)
