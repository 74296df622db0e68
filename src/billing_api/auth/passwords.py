"""Password hashing with argon2id; the cost is a setting (cheap in tests)."""

from __future__ import annotations

from functools import lru_cache

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from billing_api.config import Settings


@lru_cache
def _hasher(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)


def hasher(settings: Settings) -> PasswordHasher:
    return _hasher(settings.argon2_time_cost, settings.argon2_memory_cost_kib, settings.argon2_parallelism)


async def hash_password(settings: Settings, password: str) -> str:
    # Hashing is deliberately slow: keep it off the event loop.
    return await anyio.to_thread.run_sync(hasher(settings).hash, password)


async def verify_password(settings: Settings, password_hash: str | None, password: str) -> bool:
    """True when `password` matches. With no hash, still spends the time of one check (no timing oracle)."""
    ph = hasher(settings)
    target = password_hash or _dummy_hash(settings)

    def check() -> bool:
        try:
            return ph.verify(target, password)
        except (VerificationError, InvalidHashError):
            return False

    matched = await anyio.to_thread.run_sync(check)
    return matched and password_hash is not None


_dummy_hashes: dict[tuple[int, int, int], str] = {}


def _dummy_hash(settings: Settings) -> str:
    key = (settings.argon2_time_cost, settings.argon2_memory_cost_kib, settings.argon2_parallelism)
    if key not in _dummy_hashes:
        _dummy_hashes[key] = hasher(settings).hash("not a password anyone has")
    return _dummy_hashes[key]
