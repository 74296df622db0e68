"""Shared by the generator and the benchmark: where the data lives."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_DATA_DIR = BENCH_DIR / ".data"
BENCH_PASSWORD = "bench-password-1"


def database_url(explicit: str | None) -> str:
    """asyncpg-style URL (postgresql://...): the one given, BILLING_API_BENCH_DATABASE_URL, or an embedded
    PostgreSQL kept in bench/.data (git-ignored)."""
    url = explicit or os.environ.get("BILLING_API_BENCH_DATABASE_URL")
    if url:
        return url.replace("postgresql+asyncpg://", "postgresql://")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from billing_api.db import embedded_database_url

        return embedded_database_url(DEFAULT_DATA_DIR).replace("postgresql+asyncpg://", "postgresql://")


def server_env(url: str) -> dict[str, str]:
    """The environment of the servers the benchmark starts (service and lean reference): the same secret, so one
    token serves both; cheap password hashing for the logins."""
    return {**os.environ, "BILLING_API_DATABASE_URL": url, "BILLING_API_JWT_SECRET": "bench-" + "s" * 40,
            "BILLING_API_ARGON2_TIME_COST": "1", "BILLING_API_ARGON2_MEMORY_COST_KIB": "8",
            "BILLING_API_ARGON2_PARALLELISM": "1"}


def sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)
