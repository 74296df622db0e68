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


def sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)
