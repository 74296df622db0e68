"""Settings, read from environment variables prefixed BILLING_API_."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigurationError(RuntimeError):
    """Start-up cannot go on: the message says what to set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_API_", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    # Unset: an embedded PostgreSQL (pgserver) is started in `data_dir`.
    database_url: str | None = None
    data_dir: Path = Field(default=Path(".billing-api-data"))
    # Database connections per process (each uvicorn worker has its own pool). Kept, not overflowed: a connection
    # opened for a burst and closed after it costs PostgreSQL a new backend and every statement prepared again.
    db_pool_size: int = 10
    db_max_overflow: int = 0
    # Bounds on waiting for the database, so that an outage answers 503 quickly instead of hanging requests.
    db_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    db_command_timeout_seconds: float = Field(default=60.0, gt=0)
    db_pool_timeout_seconds: float = Field(default=30.0, gt=0)
    # Logs (observability/logs.py): one JSON object per line, or plain text for reading in a terminal.
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    # When set, GET /metrics wants `Authorization: Bearer <token>`; unset, it is open, so production refuses to
    # serve without one (check_production).
    metrics_token: str | None = None
    jwt_secret: str | None = None
    jwt_algorithm: Literal["HS256"] = "HS256"
    token_lifetime_minutes: int = 60
    # argon2id cost; tests set cheap values (docs/stack-notes.md, trap 10).
    argon2_time_cost: int = 3
    argon2_memory_cost_kib: int = 65536
    argon2_parallelism: int = 4
    cors_origins: list[str] = []
    # Larger request bodies answer 413 before they are parsed (body_limit.py).
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Bounds on a request's head (header_limit.py), far above what browsers and HTTP clients send (an Authorization
    # header with our token is about 300 bytes; Apache httpd allows 100 header fields by default): `billing-api serve`
    # stops reading a head longer than this, and the app refuses more fields or header bytes (431 problem+json).
    max_request_head_bytes: int = Field(default=64 * 1024, ge=8 * 1024)
    max_request_headers: int = Field(default=100, ge=16)
    # Abuse limits (auth/limits.py). Per account, shared by login and password confirmation: this many failures
    # within the window (from the first failure) lock the account until the window ends.
    account_max_failures: int = Field(default=5, ge=1)
    account_failure_window_minutes: int = Field(default=15, ge=1)
    # Per client address, login failures across all accounts.
    address_max_failures: int = Field(default=50, ge=1)
    address_failure_window_minutes: int = Field(default=15, ge=1)
    # Invitations (team/): the accept link is `public_base_url` + /invitations/accept?token=...
    public_base_url: str = "http://localhost:8000"
    invitation_ttl_days: int = Field(default=7, ge=1, le=90)
    invitation_resend_max: int = Field(default=3, ge=1)
    invitation_resend_window_minutes: int = Field(default=60, ge=1)
    # New invitations per provider within the window (each one is an email in the provider's name).
    invitation_send_max: int = Field(default=20, ge=1)
    invitation_send_window_minutes: int = Field(default=60, ge=1)
    # Outgoing mail (mail/): SMTP, with retries and exponential backoff recorded on the outbox row.
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    # None: STARTTLS when the server offers it; true: required; false: never. `smtp_use_tls`: implicit TLS (465).
    smtp_starttls: bool | None = None
    smtp_use_tls: bool = False
    smtp_timeout_seconds: float = 30.0
    mail_from: str = "billing-api <no-reply@localhost>"
    mail_max_attempts: int = Field(default=6, ge=1)
    mail_retry_base_seconds: float = Field(default=30.0, ge=0)
    mail_retry_max_seconds: float = Field(default=3600.0, ge=0)
    # The sender runs inside `billing-api serve` (app lifespan) unless disabled; `billing-api worker` runs it too.
    mail_sender_enabled: bool = True
    # Billing automation: the payment gateway (only `test` is built in), how many nights AutoPay tries a
    # declined bill, and how often `billing-api worker` looks for due nightly stages and documents to share.
    payment_gateway: Literal["test"] = "test"
    autopay_max_attempts: int = Field(default=3, ge=1, le=30)
    automation_poll_seconds: float = Field(default=60.0, gt=0)
    automation_enabled: bool = True
    # `procrastinate` (periodic task, default) or `loop` (a plain polling loop, every automation_poll_seconds).
    automation_scheduler: Literal["procrastinate", "loop"] = "procrastinate"
    mail_poll_seconds: float = Field(default=5.0, gt=0)
    # The access log (access_log/). Batching: each API process writes the rows of concurrent reads in shared
    # transactions (one WAL flush per batch, writer.py); off, each read writes its row in its own transaction.
    # Disabling the log is for measuring its cost only: production refuses to start with it off.
    access_log_batching: bool = True
    access_log_enabled: bool = True
    # Idempotency-Key: how long a key answers a retry with the first result.
    idempotency_key_ttl_hours: int = Field(default=24, ge=1, le=24 * 30)
    # How often `billing-api worker` deletes expired idempotency keys and ended failure counters (housekeeping/).
    housekeeping_interval_seconds: float = Field(default=600.0, gt=0)
    # How often `billing-api worker` rolls the access log up into the access review's usage figures and queues
    # the reminders of overdue reviews (access_review/tasks.py). The review also reads what is not rolled up yet.
    access_review_poll_seconds: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _at_most_100_failures_an_hour(self) -> Settings:
        # Any hour overlaps at most 60 // window + 1 windows (ASVS 2.2.1: no more than 100 tries an hour).
        per_hour = self.account_max_failures * (60 // self.account_failure_window_minutes + 1)
        if per_hour > 100:
            raise ValueError(f"the account limits allow {per_hour} failed passwords an hour; at most 100 may")
        return self

    def check_production(self, *, serving: bool = False) -> None:
        """Production needs a database and a JWT secret; `serving` the HTTP API, also a metrics token, since an open
        GET /metrics tells anyone who reaches the port the routes, their traffic and the pool and outbox sizes.
        The worker and the other commands serve no metrics and do not need one."""
        if self.env != "production":
            return
        required = [("BILLING_API_DATABASE_URL", self.database_url), ("BILLING_API_JWT_SECRET", self.jwt_secret)]
        if serving:
            required.append(("BILLING_API_METRICS_TOKEN", self.metrics_token))
        missing = [name for name, value in required if not value]
        if missing:
            raise ConfigurationError(
                "BILLING_API_ENV=production needs " + " and ".join(missing) + " to be set."
            )
        if not self.access_log_enabled:
            raise ConfigurationError("BILLING_API_ENV=production never runs without the access log "
                                     "(BILLING_API_ACCESS_LOG_ENABLED=false is for measuring its cost).")

    def resolved_jwt_secret(self) -> str:
        """The configured secret, or one generated once and kept in the data folder (local use only)."""
        if self.jwt_secret:
            return self.jwt_secret
        self.check_production()
        path = self.data_dir / "jwt-secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        self.jwt_secret = path.read_text().strip()
        return self.jwt_secret


@lru_cache
def get_settings() -> Settings:
    return Settings()
