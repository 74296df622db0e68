"""Password hashing with argon2id (the cost is a setting, cheap in tests), and the rules for new passwords."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from billing_api.config import Settings
from billing_api.errors import Unprocessable

# NIST 800-63B 5.1.1.2 / ASVS 2.1: at least 12 characters, long passphrases welcome, common ones refused.
MIN_LENGTH, MAX_LENGTH = 12, 256
# Digits, symbols and spaces around a word: "Monkey123456!" is "monkey" to a guesser.
_DECORATION = re.compile(r"^[\W\d_]+|[\W\d_]+$")
# One short piece over and over: "abcabcabcabc", "passwordpassword".
_REPEATED = re.compile(r"(.+?)\1+", re.DOTALL)


@lru_cache
def common_passwords() -> frozenset[str]:
    """The list shipped in auth/data (its header says where it comes from), lower case."""
    text = resources.files("billing_api.auth").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def check_new_password(password: str, *logins: str | None, field: str = "password") -> None:
    """422 unless `password` may be chosen: long enough, not common, not the account's username or email."""
    if len(password) < MIN_LENGTH:
        raise Unprocessable(f"A password needs at least {MIN_LENGTH} characters; a passphrase is easiest.",
                            code="password_too_short", extra={"field": field, "min_length": MIN_LENGTH})
    folded = password.casefold()
    if any(login and folded == login.casefold() for login in logins):
        raise Unprocessable("The password may not be the username or the email.", code="password_same_as_login",
                            extra={"field": field})
    common = common_passwords()
    if folded in common or _DECORATION.sub("", folded) in common or _REPEATED.fullmatch(folded):
        raise Unprocessable("That password is too common or too easy to guess; choose another.",
                            code="password_too_common", extra={"field": field})


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
