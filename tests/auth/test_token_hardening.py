"""Bearer tokens (auth/tokens.read_token): HS256 only, `exp`/`iat`/`sub`/`ver` required, no token from the future,
no oversized token; whatever arrives in the Authorization header, the answer is a 401 problem+json, never a 500."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt

from billing_api.auth.tokens import CLOCK_SKEW_SECONDS, MAX_TOKEN_LENGTH
from tests.helpers import assert_problem


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def claims_for(user, **changes) -> dict:
    now = int(time.time())
    claims = {"sub": str(user.id), "ver": user.token_version, "client": "web", "iat": now, "exp": now + 600}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def signed(settings, claims: dict, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, settings.jwt_secret, algorithm=algorithm)


async def me(client, authorization: str | bytes):
    return await client.get("/v1/me", headers={"Authorization": authorization})


async def assert_refused(client, authorization, code: str = "unauthenticated") -> None:
    response = await me(client, authorization)
    assert_problem(response, 401, code)
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_well_formed_token_works(client, factory, settings):
    # The control for every refusal below: the same construction, without the defect, is accepted.
    user = await factory.user(await factory.company())
    assert (await me(client, f"Bearer {signed(settings, claims_for(user))}")).status_code == 200


async def test_only_hs256_is_accepted(client, factory, settings):
    user = await factory.user(await factory.company())
    claims = claims_for(user)
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    await assert_refused(client, f"Bearer {unsigned}")
    # `none` with the signature of a real token attached still names `none`.
    real_signature = signed(settings, claims).rsplit(".", 1)[1]
    await assert_refused(client, f"Bearer {unsigned}{real_signature}")
    for algorithm in ("HS384", "HS512"):
        await assert_refused(client, f"Bearer {signed(settings, claims, algorithm)}")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    await assert_refused(client, f"Bearer {jwt.encode(claims, pem, algorithm='RS256')}")
    # Our own signature over other claims: another user's id, or a longer life.
    header, payload, signature = signed(settings, claims).split(".")
    for forged in ({**claims, "sub": str(uuid.uuid4())}, {**claims, "exp": claims["exp"] + 60}):
        await assert_refused(client, f"Bearer {header}.{_b64(forged)}.{signature}")
    # A header that lies: HS256 declared over a token signed with HS512.
    hs512 = signed(settings, claims, "HS512").split(".")
    await assert_refused(client, f"Bearer {_b64({'alg': 'HS256', 'typ': 'JWT'})}.{hs512[1]}.{hs512[2]}")


@pytest.mark.parametrize("change", [
    pytest.param({"exp": None}, id="no-exp"),
    pytest.param({"iat": None}, id="no-iat"),
    pytest.param({"sub": None}, id="no-sub"),
    pytest.param({"ver": None}, id="no-ver"),
    pytest.param({"exp": int(time.time()) - 120}, id="expired"),
    pytest.param({"iat": int(time.time()) + 3600, "exp": int(time.time()) + 7200}, id="issued-in-the-future"),
    pytest.param({"iat": "yesterday"}, id="iat-not-a-number"),
    pytest.param({"exp": "tomorrow"}, id="exp-not-a-number"),
    pytest.param({"sub": "not-a-uuid"}, id="sub-not-a-uuid"),
    pytest.param({"sub": 12345}, id="sub-a-number"),
    pytest.param({"sub": ["a", "list"]}, id="sub-a-list"),
    pytest.param({"ver": "1"}, id="ver-a-string"),
    pytest.param({"ver": True}, id="ver-a-bool"),
    pytest.param({"client": "desktop"}, id="unknown-client"),
    pytest.param({"client": {"nested": 1}}, id="client-an-object"),
])
async def test_required_and_well_typed_claims(client, factory, settings, change):
    user = await factory.user(await factory.company())
    await assert_refused(client, f"Bearer {signed(settings, claims_for(user, **change))}")


# Each of these is signed with the real key, is not expired and names a real user: only the type or size of a
# time claim is wrong (python-jose alone takes them all, through int()).
@pytest.mark.parametrize("change", [
    pytest.param(lambda now: {"exp": str(now + 600)}, id="exp-a-numeric-string"),
    pytest.param(lambda now: {"exp": now + 600.5}, id="exp-a-float"),
    pytest.param(lambda now: {"exp": float("inf")}, id="exp-infinity"),
    pytest.param(lambda now: {"iat": str(now)}, id="iat-a-numeric-string"),
    pytest.param(lambda now: {"iat": now + 0.5}, id="iat-a-float"),
    pytest.param(lambda now: {"nbf": True}, id="nbf-a-bool"),
    pytest.param(lambda now: {"nbf": str(now - 10)}, id="nbf-a-numeric-string"),
    pytest.param(lambda now: {"exp": 10**12}, id="exp-in-the-year-33658"),
    pytest.param(lambda now: {"iat": now - 10**9}, id="issued-decades-ago-still-unexpired"),
    pytest.param(lambda now: {"iat": now + 20, "exp": now + 10}, id="exp-before-iat"),
    pytest.param(lambda now: {"nbf": now + 3600}, id="not-valid-before-an-hour-from-now"),
])
async def test_time_claims_are_integers_and_bounded_by_the_lifetime(client, factory, settings, change):
    user = await factory.user(await factory.company())
    await assert_refused(client, f"Bearer {signed(settings, claims_for(user, **change(int(time.time()))))}")


async def test_a_token_lives_at_most_the_configured_lifetime_plus_the_clock_skew(client, factory, settings):
    user = await factory.user(await factory.company())
    lifetime = settings.token_lifetime_minutes * 60
    now = int(time.time())
    for seconds, status in ((lifetime, 200), (lifetime + CLOCK_SKEW_SECONDS, 200),
                            (lifetime + CLOCK_SKEW_SECONDS + 1, 401)):
        token = signed(settings, claims_for(user, iat=now, exp=now + seconds))
        assert (await me(client, f"Bearer {token}")).status_code == status, seconds
    await assert_refused(client, f"Bearer {signed(settings, claims_for(user, iat=now, exp=now + lifetime + 3600))}")
    # An integer nbf (which we never issue) is still fine.
    assert (await me(client, f"Bearer {signed(settings, claims_for(user, nbf=now))}")).status_code == 200


async def test_a_stale_token_version_is_revoked(client, factory, settings):
    user = await factory.user(await factory.company())
    await assert_refused(client, f"Bearer {signed(settings, claims_for(user, ver=user.token_version + 1))}",
                         "token_revoked")
    nobody = claims_for(user, sub="00000000-0000-0000-0000-000000000000")
    await assert_refused(client, f"Bearer {signed(settings, nobody)}", "token_revoked")


async def test_oversized_tokens_are_refused_unparsed(client, factory, settings):
    user = await factory.user(await factory.company())
    # A valid token just under the limit still works: the size alone decides.
    padding = "p" * 5500
    fits = signed(settings, claims_for(user, pad=padding))
    assert len(fits) <= MAX_TOKEN_LENGTH and (await me(client, f"Bearer {fits}")).status_code == 200
    too_big = signed(settings, claims_for(user, pad=padding * 2))
    assert len(too_big) > MAX_TOKEN_LENGTH
    await assert_refused(client, f"Bearer {too_big}")
    await assert_refused(client, "Bearer " + "a" * 60_000)
    # Longer than a request head may be at all: refused before any authentication (header_limit.py).
    assert_problem(await me(client, "Bearer " + "a" * 1_000_000), 431, "headers_too_large")


@pytest.mark.parametrize("authorization", [
    pytest.param("Bearer", id="scheme-only"),
    pytest.param("Bearer ", id="empty-token"),
    pytest.param("Bearer not.a.jwt", id="three-junk-parts"),
    pytest.param("Bearer a.b", id="two-parts"),
    pytest.param("Bearer ....", id="dots"),
    pytest.param("Bearer !!!.@@@.###", id="not-base64"),
    pytest.param(f"Bearer {_b64({'alg': 'HS256'})}.e30", id="no-signature-part"),
    pytest.param("Bearer " + base64.urlsafe_b64encode(b"\xff\xfe\x00").decode() + ".e30.sig", id="binary-header"),
    pytest.param(f"Bearer {_b64(['a list'])}.{_b64({})}.x", id="header-not-an-object"),
    pytest.param("Bearer two words", id="two-words"),
    pytest.param("Basic dXNlcjpwYXNzd29yZA==", id="basic-scheme"),
    pytest.param("Token abc", id="other-scheme"),
    pytest.param("garbage", id="no-scheme"),
    pytest.param("Bearer t\u00e9st".encode("latin-1"), id="latin-1-bytes"),
    pytest.param("Bearer \u00ff\u00fe".encode("latin-1") * 3000, id="long-latin-1"),
])
async def test_garbage_authorization_headers_are_401(client, authorization):
    await assert_refused(client, authorization)
