"""The scheduler's 'what is due at instant T' over a whole year of 15-minute ticks, in zones with daylight saving
(including America/Havana, whose clocks change at midnight: one night has two 00:30s, one has none), and one DST
night driven through the worker code on the database."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from billing_api.automation import jobs
from billing_api.models import AutomationStage
from tests.automation.conftest import build_clinic, configure, encounter, new_patient
from tests.helpers import count

ZONES = ["America/Toronto", "Europe/London", "Australia/Sydney", "America/Havana"]
SUPERBILL_DAY = 28


def simulate(zone: str, start: datetime, end: datetime) -> dict[tuple[date, AutomationStage], datetime]:
    """Tick every 15 minutes; claim what is due and not yet claimed (as the run table does)."""
    claimed: dict[tuple[date, AutomationStage], datetime] = {}
    instant = start
    while instant < end:
        for key in jobs.due_stages(zone, SUPERBILL_DAY, instant):
            claimed.setdefault(key, instant)
        instant += timedelta(minutes=15)
    return claimed


@pytest.mark.parametrize("zone", ZONES)
def test_a_year_of_nights_runs_every_stage_once_on_time(zone):
    tz = ZoneInfo(zone)
    start = datetime(2026, 1, 1, tzinfo=tz).astimezone(UTC)
    end = datetime(2027, 1, 1, tzinfo=tz).astimezone(UTC)
    claimed = simulate(zone, start, end)
    nights = [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]
    for night in nights:
        bills, autopay = claimed[(night, AutomationStage.bills)], claimed[(night, AutomationStage.autopay)]
        local_bills, local_autopay = bills.astimezone(tz), autopay.astimezone(tz)
        # Each on its own local date, at or after its hour, and within the first tick after it.
        assert local_bills.date() == night and local_autopay.date() == night, (zone, night)
        assert local_bills.time() < time(1, 15)
        assert time(0, 30) <= local_autopay.time() < time(1, 45), (zone, night, local_autopay)
        assert bills <= autopay
    assert {d for d, s in claimed if s == AutomationStage.superbills} == {n for n in nights if n.day == SUPERBILL_DAY}
    # Statements: every first night, after that night's AutoPay, on their own local date.
    firsts = {n for n in nights if n.day == 1}
    assert {d for d, s in claimed if s == AutomationStage.statements} == firsts
    for night in firsts:
        statements = claimed[(night, AutomationStage.statements)]
        assert statements.astimezone(tz).date() == night, (zone, night)
        assert time(0, 30) <= statements.astimezone(tz).time() < time(1, 45), (zone, night)
        assert claimed[(night, AutomationStage.autopay)] <= statements
    # Nothing else was claimed (the last day of 2025 is the catch-up of the first tick).
    assert {d for d, _ in claimed} <= set(nights) | {date(2025, 12, 31)}
    assert len([k for k in claimed if k[0] in nights]) == 365 * 2 + 12 + 12


def test_the_zones_really_change_clocks_at_those_nights():
    havana = ZoneInfo("America/Havana")
    # 2026-03-08: 00:00 -> 01:00 (no 00:30); 2026-11-01: 01:00 -> 00:00 (00:30 twice).
    assert datetime(2026, 3, 8, 1, 30, tzinfo=havana).utcoffset() != datetime(2026, 3, 7, 23, 0, tzinfo=havana).utcoffset()
    first = datetime(2026, 11, 1, 0, 30, tzinfo=havana, fold=0).astimezone(UTC)
    second = datetime(2026, 11, 1, 0, 30, tzinfo=havana, fold=1).astimezone(UTC)
    assert second - first == timedelta(hours=1)


def test_due_stages_on_the_night_without_half_past_midnight_and_the_night_with_two():
    zone = "America/Havana"
    tz = ZoneInfo(zone)
    skipped_night = simulate(zone, datetime(2026, 3, 7, 12, tzinfo=tz).astimezone(UTC),
                             datetime(2026, 3, 8, 12, tzinfo=tz).astimezone(UTC))
    assert skipped_night[(date(2026, 3, 8), AutomationStage.autopay)].astimezone(tz).time() == time(1, 0)
    doubled = simulate(zone, datetime(2026, 10, 31, 12, tzinfo=tz).astimezone(UTC),
                       datetime(2026, 11, 1, 12, tzinfo=tz).astimezone(UTC))
    assert Counter(s for d, s in doubled if d == date(2026, 11, 1)) == {  # a first night: statements too
        AutomationStage.bills: 1, AutomationStage.autopay: 1, AutomationStage.statements: 1}


async def test_the_worker_runs_each_stage_once_through_a_night_with_two_half_past_midnights(
        client, session, sessionmaker, factory, settings):
    """2026-11-01 in Havana is also a first night: its statements run once, though 00:30 comes twice."""
    clinic = await build_clinic(factory, "America/Havana")
    await configure(client, clinic, superbill_day=SUPERBILL_DAY)
    patients = [await new_patient(client, clinic, f"P{n}") for n in range(2)]
    for patient in patients:
        await encounter(client, clinic, patient, date(2026, 10, 31))
    tz = ZoneInfo("America/Havana")
    instant = datetime(2026, 10, 31, 22, 0, tzinfo=tz).astimezone(UTC)
    end = datetime(2026, 11, 1, 4, 0, tzinfo=tz).astimezone(UTC)
    while instant < end:
        await jobs.run_due(sessionmaker, settings, instant)
        instant += timedelta(minutes=15)
    for night, stages in ((date(2026, 10, 31), ("bills", "autopay")),
                          (date(2026, 11, 1), ("bills", "autopay", "statements"))):
        for stage in stages:
            assert await count(session, "automation_run", "company_id = :c AND local_date = :d AND stage = :s",
                               c=clinic.company.id, d=night, s=stage) == 1
    assert await count(session, "automation_run", "company_id = :c AND stage = 'statements'",
                       c=clinic.company.id) == 1
    for patient in patients:
        assert await count(session, "billing_document", "patient_id = :p AND kind = 'statement'", p=patient) == 1
        assert await count(session, "billing_document", "patient_id = :p AND kind = 'bill'", p=patient) == 1
