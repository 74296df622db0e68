"""Cursors are strict (pagination._decode): a cursor is accepted only when it is exactly what the API writes for the
key it decodes to. Every other cursor, whatever is wrong with it, is a 422 `invalid_cursor` problem+json on every
kind of list (timestamp, name and position keys), never a 200, another 422 or a 500."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import date

import pytest

from billing_api.models import AccountType, Bill, BillLine, Coverage, Patient
from tests.helpers import assert_problem

ROW_ID = "6f1c2b4e-8a3d-4c5e-9f70-1a2b3c4d5e6f"
# Microseconds make the JSON 76 bytes, so the base64 ends in a character with unused bits (see `_other_tail`).
TIMESTAMP = "2026-11-02T10:00:00.123456+00:00"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_of(payload, **dumps) -> str:
    return b64(json.dumps(payload, **dumps).encode())


def _other_tail(cursor: str) -> str:
    """The same bytes with the last character's unused bits set: a second base64 spelling of one cursor."""
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for char in alphabet:
        other = cursor[:-1] + char
        if other != cursor and base64.urlsafe_b64decode(other + "=" * (-len(other) % 4)) == raw:
            return other
    raise AssertionError(f"{cursor} has no unused bits")


def spellings(key: list[str]) -> list:
    """What is wrong with the cursor itself, whatever its key: each a cursor of `key` written another way."""
    good = cursor_of(key)
    return [
        pytest.param(good + "\x00", id="raw-nul-at-end"),
        pytest.param(good[:10] + "\x00" + good[10:], id="raw-nul-inside"),
        # Four NULs keep the length a multiple of four: a lenient base64 decoder skips them and reads the key.
        pytest.param(good[:10] + "\x00" * 4 + good[10:], id="raw-four-nuls-inside"),
        pytest.param(good[:10] + " " + good[10:], id="raw-space-inside"),
        pytest.param(good[:10] + "\n" + good[10:], id="raw-newline-inside"),
        pytest.param(good + "!", id="trailing-garbage-char"),
        pytest.param(good + "AAAA", id="trailing-garbage-base64"),
        pytest.param(b64(json.dumps(key).encode() + b"\x00"), id="trailing-nul-byte-decoded"),
        pytest.param(good + "=" * (-len(good) % 4), id="padded"),
        pytest.param(good + "====", id="over-padded"),
        pytest.param(_other_tail(good), id="non-canonical-trailing-bits"),
        pytest.param(base64.b64encode(json.dumps(key).encode() + b"\xfb\xff").decode().rstrip("="),
                     id="standard-alphabet"),
        pytest.param(good[:-1], id="truncated"),
        pytest.param(good[:1], id="one-character"),
        pytest.param(cursor_of(key, separators=(",", ":")), id="compact-json"),
        pytest.param(cursor_of(key, indent=1), id="indented-json"),
        pytest.param(b64(b"\xff" + json.dumps(key).encode()), id="not-utf-8"),
        pytest.param(cursor_of([]), id="empty-list"),
        pytest.param(cursor_of(key[:1]), id="one-part"),
        pytest.param(cursor_of([*key, key[1]]), id="three-parts"),
        pytest.param(cursor_of({"key": key}), id="an-object"),
        pytest.param(cursor_of(key[0]), id="a-string"),
        pytest.param(cursor_of(None), id="null"),
        pytest.param(cursor_of([key[0], None]), id="null-part"),
        pytest.param(cursor_of([[key[0]], key[1]]), id="nested-list"),
        pytest.param(cursor_of([True, key[1]]), id="bool-part"),
        pytest.param(cursor_of([10**30, key[1]]), id="huge-number-part"),
        pytest.param(cursor_of([key[0] + "\x00", key[1]]), id="decoded-nul-after-first"),
        pytest.param(cursor_of(["\x00" + key[0], key[1]]), id="decoded-nul-before-first"),
        pytest.param(cursor_of([key[0], key[1] + "\x00"]), id="decoded-nul-after-second"),
        pytest.param(b64(json.dumps(key).replace('"]', '\\ud800"]').encode()), id="decoded-lone-surrogate"),
    ]


TIME_KEY = [TIMESTAMP, ROW_ID]
BAD_TIME_CURSORS = spellings(TIME_KEY) + [
    pytest.param(cursor_of(["2026-11-02T10:00:00.123456", ROW_ID]), id="naive-timestamp"),
    pytest.param(cursor_of(["2026-11-02T10:00:00.123456Z", ROW_ID]), id="timestamp-with-z"),
    pytest.param(cursor_of(["2026-11-02 10:00:00.123456+00:00", ROW_ID]), id="timestamp-with-space"),
    pytest.param(cursor_of(["2026-11-02T10:00:00.123456+00:00\t", ROW_ID]), id="timestamp-with-tab"),
    pytest.param(cursor_of(["2026-11-02T10:00:00.000000+00:00", ROW_ID]), id="timestamp-zero-microseconds"),
    pytest.param(cursor_of(["2026-11-02", ROW_ID]), id="a-date"),
    pytest.param(cursor_of(["yesterday", ROW_ID]), id="not-a-timestamp"),
    pytest.param(cursor_of(["0001-01-01T00:00:00+05:00", ROW_ID]), id="before-the-calendar-in-utc"),
    pytest.param(cursor_of(["9999-12-31T23:00:00-05:00", ROW_ID]), id="after-the-calendar-in-utc"),
    pytest.param(cursor_of([TIMESTAMP, ROW_ID.upper()]), id="id-upper-case"),
    pytest.param(cursor_of([TIMESTAMP, ROW_ID.replace("-", "")]), id="id-without-hyphens"),
    pytest.param(cursor_of([TIMESTAMP, "{" + ROW_ID + "}"]), id="id-in-braces"),
    pytest.param(cursor_of([TIMESTAMP, "urn:uuid:" + ROW_ID]), id="id-as-urn"),
    pytest.param(cursor_of([TIMESTAMP, "nope"]), id="id-not-a-uuid"),
]

NAME_KEY = ["Dr. Ada King", ROW_ID]  # 56 bytes of JSON: unused bits again
BAD_NAME_CURSORS = spellings(NAME_KEY) + [
    pytest.param(cursor_of(["Dr. Ada\x00King", ROW_ID]), id="nul-inside-the-name"),
    pytest.param(cursor_of(["Dr. Ada King", ROW_ID.upper()]), id="id-upper-case"),
    pytest.param(cursor_of(["Dr. Ada King", 12]), id="id-a-number"),
    pytest.param(b64(json.dumps(NAME_KEY, ensure_ascii=False).replace("Ada", "\u00c5da").encode()),
                 id="unescaped-non-ascii"),
]

POSITION_KEY = ["734", "12"]
BAD_POSITION_CURSORS = spellings(POSITION_KEY) + [
    pytest.param(cursor_of([734, 12]), id="numbers-not-strings"),
    pytest.param(cursor_of(["734\x00", "12"]), id="nul-after-a-number"),
    pytest.param(cursor_of(["-1", "12"]), id="negative"),
    pytest.param(cursor_of(["+734", "12"]), id="plus-sign"),
    pytest.param(cursor_of([" 734", "12"]), id="leading-space"),
    pytest.param(cursor_of(["0734", "12"]), id="leading-zero"),
    pytest.param(cursor_of(["7_34", "12"]), id="underscore"),
    pytest.param(cursor_of(["\u0667\u0663\u0664", "12"]), id="arabic-indic-digits"),
    pytest.param(cursor_of(["734", str(2**63)]), id="beyond-bigint"),
    pytest.param(cursor_of(["9" * 300, "12"]), id="three-hundred-digits"),
    pytest.param(cursor_of(["734.0", "12"]), id="decimal"),
]


async def _caller(factory):
    company = await factory.company()
    # A provider who administers the company: every list below answers them with 200 for a good cursor.
    user = await factory.user(company, provider=True, account_type=AccountType.company_admin)
    return company, user


def _request(surface: str, provider_id: uuid.UUID, cursor: str) -> tuple[str, dict[str, str]]:
    return {
        "dashboard": ("/v1/bills", {"cursor": cursor}),
        "users": ("/v1/users", {"cursor": cursor}),
        "provider-access": (f"/v1/providers/{provider_id}/access", {"cursor": cursor}),
        "events": ("/v1/events", {"after": cursor}),
    }[surface]


GOOD = [pytest.param("dashboard", cursor_of(TIME_KEY), id="dashboard"),
        pytest.param("users", cursor_of(TIME_KEY), id="users"),
        pytest.param("provider-access", cursor_of(NAME_KEY), id="provider-access"),
        pytest.param("events", cursor_of(POSITION_KEY), id="events")]


@pytest.mark.parametrize(("surface", "cursor"), GOOD)
async def test_the_well_formed_cursor_each_table_starts_from_is_accepted(client, factory, surface, cursor):
    # The control for every refusal below: the canonical cursor of the same key (naming no row) pages on.
    _, user = await _caller(factory)
    path, params = _request(surface, user.id, cursor)
    response = await client.get(path, params=params, headers=factory.headers(user))
    assert response.status_code == 200, response.text


async def _assert_refused(client, factory, surface: str, cursor: str) -> None:
    _, user = await _caller(factory)
    path, params = _request(surface, user.id, cursor)
    assert_problem(await client.get(path, params=params, headers=factory.headers(user)), 422, "invalid_cursor")


@pytest.mark.parametrize("surface", ["dashboard", "users"])
@pytest.mark.parametrize("cursor", BAD_TIME_CURSORS)
async def test_malformed_timestamp_cursors_are_invalid_cursor(client, factory, surface, cursor):
    await _assert_refused(client, factory, surface, cursor)


@pytest.mark.parametrize("cursor", BAD_NAME_CURSORS)
async def test_malformed_name_cursors_are_invalid_cursor(client, factory, cursor):
    await _assert_refused(client, factory, "provider-access", cursor)


@pytest.mark.parametrize("cursor", BAD_POSITION_CURSORS)
async def test_malformed_position_cursors_are_invalid_cursor(client, factory, cursor):
    await _assert_refused(client, factory, "events", cursor)


async def test_a_cursor_the_dashboard_returned_pages_on(client, factory):
    company, provider = await _caller(factory)
    patient = Patient(id=uuid.uuid4(), company_id=company.id, first_name="Pat", last_name="Cursor")
    factory.session.add(patient)
    await factory.session.flush()
    for _ in range(3):
        bill = Bill(id=uuid.uuid4(), company_id=company.id, provider_id=provider.id, patient_id=patient.id,
                    coverage=Coverage.insured, service_date=date(2026, 11, 2), total_cents=5000,
                    balance_cents=5000)
        factory.session.add(bill)
        await factory.session.flush()
        factory.session.add(BillLine(id=uuid.uuid4(), bill_id=bill.id, position=0, code_system="cpt", code="99213",
                                     description="Office visit", units=1, fee_cents=5000))
    await factory.session.flush()
    headers = factory.headers(provider)
    first = (await client.get("/v1/bills", params={"limit": 2}, headers=headers)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = await client.get("/v1/bills", params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers)
    assert second.status_code == 200, second.text
    assert second.json()["next_cursor"] is None
    ids = [bill["id"] for bill in first["items"] + second.json()["items"]]
    assert len(ids) == len(set(ids)) == 3
