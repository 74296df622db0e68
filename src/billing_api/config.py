"""Settings, read from environment variables prefixed BILLING_API_."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigurationError(RuntimeError):
    """Start-up cannot go on: the message says what to set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_API_", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    # Unset: an embedded PostgreSQL (pgserver) is started in `data_dir`.
    database_url: str | None = None
    data_dir: Path = Field(default=Path(".billing-api-data"))
    # Database connections per process (each uvicorn worker has its own pool).
    db_pool_size: int = 5
    db_max_overflow: int = 5
    jwt_secret: str | None = None
    jwt_algorithm: Literal["HS256"] = "HS256"
    token_lifetime_minutes: int = 60
    # argon2id cost; tests set cheap values (STACK-NOTES trap 10).
    argon2_time_cost: int = 3
    argon2_memory_cost_kib: int = 65536
    argon2_parallelism: int = 4
    cors_origins: list[str] = []
    # Password confirmation: this many failures within the window locks further attempts.
    password_confirmation_max_failures: int = 5
    password_confirmation_window_minutes: int = 15
    # Invitations (team/): the accept link is `public_base_url` + /invitations/accept?token=...
    public_base_url: str = "http://localhost:8000"
    invitation_ttl_days: int = Field(default=7, ge=1, le=90)
    invitation_resend_max: int = Field(default=3, ge=1)
    invitation_resend_window_minutes: int = Field(default=60, ge=1)
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
    # Billing automation (issue 7): the payment gateway (only `test` is built in), how many nights AutoPay tries a
    # declined bill, and how often `billing-api worker` looks for due nightly stages and documents to share.
    payment_gateway: Literal["test"] = "test"
    autopay_max_attempts: int = Field(default=3, ge=1, le=30)
    automation_poll_seconds: float = Field(default=60.0, gt=0)
    automation_enabled: bool = True
    # `procrastinate` (periodic task, default) or `loop` (a plain polling loop, every automation_poll_seconds).
    automation_scheduler: Literal["procrastinate", "loop"] = "procrastinate"
    mail_poll_seconds: float = Field(default=5.0, gt=0)
    # Idempotency-Key (issue 9): how long a key answers a retry with the first result.
    idempotency_key_ttl_hours: int = Field(default=24, ge=1, le=24 * 30)

    def check_production(self) -> None:
        if self.env != "production":
            return
        missing = [
            name
            for name, value in (
                ("BILLING_API_DATABASE_URL", self.database_url),
                ("BILLING_API_JWT_SECRET", self.jwt_secret),
            )
            if not value
        ]
        if missing:
            raise ConfigurationError(
                "BILLING_API_ENV=production needs " + " and ".join(missing) + " to be set."
            )

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
