"""What the presets gate: the billing summary report (reports:generate), invoices (invoices:view) and
payments (invoices:pay), all through the bill scope: under every class of caller of the decision tables,
their content, and bad input."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import select, update

from billing_api.models import AuditEvent, Bill, BillStatus, Coverage, Patient
from tests.authz.world import CALLERS, SEES_OWNER_BILLS, build_world
from tests.helpers import assert_problem
from tests.support.practice import add_bill, snapshot

PERIOD = {"from": "2026-11-01", "to": "2026-11-30"}

# Who holds each permission on the owner's bills (the world's list: the group of clerks has financial viewer;
# support has the view-class ones). The deactivated delegate's token no longer works at all.
HOLDERS = {
    "report": {"owner", "group_delegate", "support"},
    "invoices": {"owner", "group_delegate", "support"},
    "pay": {"owner", "group_delegate"},
}


def expected(endpoint: str, caller: str, segregated: bool) -> int:
    if caller == "deactivated_delegate":
        return 401
    if caller in HOLDERS[endpoint]:
        return 201 if endpoint == "pay" else 200
    return 403 if caller in SEES_OWNER_BILLS[segregated] else 404


async def call(client, headers, world, endpoint: str):
    if endpoint == "report":
        return await client.get(f"/v1/providers/{world.owner.id}/reports/billing-summary", headers=headers,
                                params=PERIOD)
    if endpoint == "invoices":
        return await client.get(f"/v1/providers/{world.owner.id}/invoices", headers=headers)
    return await client.post(f"/v1/bills/{world.insured_bill.id}/payments", headers=headers,
                             json={"amount_cents": 2000, "method": "insurer", "reference": "EOB-1"})


@pytest.mark.parametrize("segregated", [False, True], ids=["open", "segregated"])
@pytest.mark.parametrize("endpoint", list(HOLDERS))
@pytest.mark.parametrize("caller", CALLERS)
async def test_who_may_use_reports_invoices_and_payments(client, factory, session, caller, endpoint, segregated):
    world = await build_world(factory, segregated=segregated)
    world.insured_bill.status = BillStatus.submitted
    await session.flush()
    before = await snapshot(session)
    response = await call(client, factory.headers(world.users[caller]), world, endpoint)
    status = expected(endpoint, caller, segregated)
    if status >= 400:
        problem = assert_problem(response, status)
        if status == 403:
            assert problem["code"] == "permission_denied"
        if status == 404:
            assert problem["code"] in ("provider_not_found", "bill_not_found")
        after = await snapshot(session)
        # Only the audit trail may grow (a refused login is no request here); nothing else is written.
        assert {t: rows for t, rows in after.items() if t != "audit_event"} == \
            {t: rows for t, rows in before.items() if t != "audit_event"}
        return
    assert response.status_code == status, response.text
    body = response.json()
    if endpoint == "report":
        assert body["totals"]["bill_count"] == 2 and body["provider_id"] == str(world.owner.id)
        assert [p["last_name"] for p in body["patients"]] == ["Ient"]
    elif endpoint == "invoices":
        assert [i["bill_id"] for i in body["items"]] == [str(world.insured_bill.id)]
    else:
        assert body["invoice"]["balance_cents"] == 10000 and body["payment"]["amount_cents"] == 2000
    if caller == "support":  # rule 2: support's views are audited, on the provider
        events = (await session.execute(select(AuditEvent).where(AuditEvent.action == "support.bills_viewed",
                                                                 AuditEvent.target_id == world.owner.id))).scalars()
        assert [e.details["surface"] for e in events] == [
            "billing_summary_report" if endpoint == "report" else "invoices"]


async def test_support_viewing_an_empty_report_is_audited_and_logs_no_read(client, factory, session):
    """Rule 2 records every support view of a provider's report, one with no bills in its period too; the access
    log records reads of patients' data, and this one showed none."""
    from billing_api.models import AccessLogEntry

    world = await build_world(factory, segregated=True)
    support = world.users["support"]
    response = await client.get(f"/v1/providers/{world.owner.id}/reports/billing-summary",
                                headers=factory.headers(support), params={"from": "2020-01-01", "to": "2020-01-31"})
    assert response.status_code == 200 and response.json()["totals"]["bill_count"] == 0
    events = list((await session.execute(select(AuditEvent).where(
        AuditEvent.action == "support.bills_viewed", AuditEvent.actor_id == support.id))).scalars())
    assert [(e.target_id, e.company_id, e.details) for e in events] == [(world.owner.id, world.clinic.id, {
        "surface": "billing_summary_report", "date_from": "2020-01-01", "date_to": "2020-01-31"})]
    logged = (await session.execute(select(AccessLogEntry).where(AccessLogEntry.actor_id == support.id))).all()
    assert logged == []


@pytest.fixture
async def ledger(factory, practice):
    """Dr Ada's bills in November in every state, one in December, and another provider's."""
    p = practice
    session = factory.session
    zoe = Patient(id=uuid.uuid4(), company_id=p.clinic.id, first_name="Zoe", last_name="Zimmer",
                  date_of_birth=date(2001, 12, 24))
    session.add(zoe)
    await session.flush()
    paid = await add_bill(factory, p.clinic, p.dr_a, p.patient_a, coverage=Coverage.private,
                          status=BillStatus.paid, total=5000, balance=0, service_date=date(2026, 11, 10))
    partial = await add_bill(factory, p.clinic, p.dr_a, zoe, status=BillStatus.submitted, total=8000, balance=3000,
                             service_date=date(2026, 11, 20))
    december = await add_bill(factory, p.clinic, p.dr_a, zoe, status=BillStatus.submitted, total=999,
                              service_date=date(2026, 12, 5))
    return {"paid": paid, "partial": partial, "december": december, "zoe": zoe}


async def test_the_billing_summary(client, factory, practice, ledger):
    response = await client.get(f"/v1/providers/{practice.dr_a.id}/reports/billing-summary",
                                headers=factory.headers(practice.dr_a), params=PERIOD)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["date_from"] == "2026-11-01" and report["date_to"] == "2026-11-30"
    assert report["provider_name"] == "Dr Ada"
    assert report["totals"] == {"bill_count": 5, "total_cents": 49000, "paid_cents": 10000, "balance_cents": 39000}

    def table(key):
        return {row[key]: (row["bill_count"], row["total_cents"], row["paid_cents"], row["balance_cents"])
                for row in report[f"by_{key}"]}

    assert table("status") == {"draft": (2, 24000, 0, 24000), "submitted": (2, 20000, 5000, 15000),
                               "paid": (1, 5000, 5000, 0)}
    assert table("coverage") == {"insured": (3, 32000, 5000, 27000), "private": (2, 17000, 5000, 12000)}
    assert table("payer") == {"insurer": (3, 32000, 5000, 27000), "patient": (2, 17000, 5000, 12000)}
    cells = {(c["status"], c["coverage"]): (c["payer"], c["bill_count"]) for c in report["cells"]}
    assert cells == {("draft", "insured"): ("insurer", 1), ("draft", "private"): ("patient", 1),
                     ("submitted", "insured"): ("insurer", 2), ("paid", "private"): ("patient", 1)}
    # The seed's warning: patient names and demographics show in reports.
    assert report["patients"] == [
        {"patient_id": str(practice.patient_a.id), "first_name": "Pat", "last_name": "Able",
         "date_of_birth": "1980-05-17", "bill_count": 4, "total_cents": 41000, "paid_cents": 5000,
         "balance_cents": 36000},
        {"patient_id": str(ledger["zoe"].id), "first_name": "Zoe", "last_name": "Zimmer",
         "date_of_birth": "2001-12-24", "bill_count": 1, "total_cents": 8000, "paid_cents": 5000,
         "balance_cents": 3000},
    ]
    empty = await client.get(f"/v1/providers/{practice.dr_a.id}/reports/billing-summary",
                             headers=factory.headers(practice.dr_a), params={"from": "2020-01-01", "to": "2020-01-31"})
    assert empty.json()["totals"]["bill_count"] == 0 and empty.json()["patients"] == []
    one_day = await client.get(f"/v1/providers/{practice.dr_a.id}/reports/billing-summary",
                               headers=factory.headers(practice.dr_a), params={"from": "2026-12-05", "to": "2026-12-05"})
    assert one_day.json()["totals"]["total_cents"] == 999


async def test_invoices_with_payments_balances_and_pages(client, factory, practice, ledger):
    owner = factory.headers(practice.dr_a)
    url = f"/v1/providers/{practice.dr_a.id}/invoices"
    pay = await client.post(f"/v1/bills/{ledger['partial'].id}/payments", headers=owner,
                            json={"amount_cents": 1000, "method": "cheque", "reference": "CHQ 0042"})
    assert pay.status_code == 201, pay.text
    listing = (await client.get(url, headers=owner)).json()
    ids = [i["bill_id"] for i in listing["items"]]
    # Submitted and paid bills, newest first; drafts are not invoices; other providers' bills never show.
    assert set(ids) == {str(b.id) for b in (practice.submitted_a, ledger["paid"], ledger["partial"],
                                            ledger["december"])}
    invoice = {i["bill_id"]: i for i in listing["items"]}[str(ledger["partial"].id)]
    assert invoice["balance_cents"] == 2000 and invoice["paid_cents"] == 6000 and invoice["total_cents"] == 8000
    assert invoice["payer"] == "insurer" and invoice["patient_name"] == "Zoe Zimmer"
    assert [(p["amount_cents"], p["method"], p["reference"]) for p in invoice["payments"]] == [
        (1000, "cheque", "CHQ 0042")]
    outstanding = (await client.get(url, headers=owner, params={"outstanding": "true"})).json()
    assert str(ledger["paid"].id) not in {i["bill_id"] for i in outstanding["items"]}
    assert len(outstanding["items"]) == 3

    pages, cursor = [], None
    while True:
        page = (await client.get(url, headers=owner, params={"limit": 3, **({"cursor": cursor} if cursor else {})}))
        assert page.status_code == 200, page.text
        pages.append([i["bill_id"] for i in page.json()["items"]])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [3, 1] and sum(pages, []) == ids


async def test_payments_bring_the_balance_to_zero_and_the_bill_to_paid(client, factory, session, practice):
    owner = factory.headers(practice.dr_a)
    url = f"/v1/bills/{practice.submitted_a.id}/payments"
    first = await client.post(url, headers=owner, json={"amount_cents": 2000, "method": "card"})
    assert first.status_code == 201, first.text
    assert first.json()["invoice"]["status"] == "submitted" and first.json()["invoice"]["balance_cents"] == 10000
    assert first.json()["payment"]["recorded_by"] == str(practice.dr_a.id)
    before = await snapshot(session)
    problem = assert_problem(await client.post(url, headers=owner, json={"amount_cents": 10001, "method": "card"}),
                             422, "payment_exceeds_balance")
    assert problem["balance_cents"] == 10000 and problem["field"] == "amount_cents"
    assert await snapshot(session) == before
    last = await client.post(url, headers=owner, json={"amount_cents": 10000, "method": "bank_transfer"})
    assert last.status_code == 201, last.text
    assert last.json()["invoice"]["status"] == "paid" and last.json()["invoice"]["balance_cents"] == 0
    assert [p["amount_cents"] for p in last.json()["invoice"]["payments"]] == [2000, 10000]
    bill = await session.get(Bill, practice.submitted_a.id)
    await session.refresh(bill)
    assert (bill.status, bill.balance_cents) == (BillStatus.paid, 0)
    before = await snapshot(session)
    assert_problem(await client.post(url, headers=owner, json={"amount_cents": 1, "method": "card"}), 409,
                   "bill_not_payable")
    assert_problem(await client.post(f"/v1/bills/{practice.draft_a.id}/payments", headers=owner,
                                     json={"amount_cents": 1, "method": "card"}), 409, "bill_not_payable")
    assert await snapshot(session) == before
    events = (await session.execute(select(AuditEvent).where(AuditEvent.action == "payment.recorded",
                                                             AuditEvent.target_id == bill.id))).scalars().all()
    assert [e.details["amount_cents"] for e in events] == [2000, 10000]
    assert events[-1].details["balance_cents"] == 0


async def test_a_void_bill_takes_no_payment(client, factory, session, practice):
    await session.execute(update(Bill).where(Bill.id == practice.submitted_a.id).values(status=BillStatus.void))
    assert_problem(await client.post(f"/v1/bills/{practice.submitted_a.id}/payments",
                                     headers=factory.headers(practice.dr_a),
                                     json={"amount_cents": 1, "method": "card"}), 409, "bill_not_payable")


PAYMENT = {"amount_cents": 1000, "method": "card"}
BAD_PAYMENTS = [
    pytest.param({**PAYMENT, "amount_cents": 0}, id="amount-zero"),
    pytest.param({**PAYMENT, "amount_cents": -5}, id="amount-negative"),
    pytest.param({**PAYMENT, "amount_cents": True}, id="amount-bool"),
    pytest.param({**PAYMENT, "amount_cents": "1000"}, id="amount-string"),
    pytest.param({**PAYMENT, "amount_cents": 10.5}, id="amount-fraction"),
    pytest.param({**PAYMENT, "amount_cents": 10**12}, id="amount-huge"),
    pytest.param({**PAYMENT, "amount_cents": None}, id="amount-null"),
    pytest.param({"method": "card"}, id="amount-missing"),
    pytest.param({"amount_cents": 1000}, id="method-missing"),
    pytest.param({**PAYMENT, "method": "bitcoin"}, id="method-unknown"),
    pytest.param({**PAYMENT, "method": 1}, id="method-number"),
    pytest.param({**PAYMENT, "reference": ""}, id="reference-empty"),
    pytest.param({**PAYMENT, "reference": "x" * 101}, id="reference-too-long"),
    pytest.param({**PAYMENT, "reference": 42}, id="reference-number"),
    pytest.param({**PAYMENT, "status": "paid"}, id="unknown-field"),
    pytest.param([PAYMENT], id="list-body"),
]


@pytest.mark.parametrize("body", BAD_PAYMENTS)
async def test_bad_payment_bodies(client, factory, session, practice, body):
    before = await snapshot(session)
    response = await client.post(f"/v1/bills/{practice.submitted_a.id}/payments", json=body,
                                 headers=factory.headers(practice.dr_a))
    assert_problem(response, 422, "validation_error")
    assert await snapshot(session) == before


async def test_bad_queries_and_ids(client, factory, session, practice):
    owner = factory.headers(practice.dr_a)
    report = f"/v1/providers/{practice.dr_a.id}/reports/billing-summary"
    invoices = f"/v1/providers/{practice.dr_a.id}/invoices"
    before = await snapshot(session)
    cases = [
        ("GET", report, {"from": "2026-11-30", "to": "2026-11-01"}, 422, "invalid_date_range"),
        ("GET", report, {"to": "2026-11-01"}, 422, "validation_error"),
        ("GET", report, {"from": "2026-11-01"}, 422, "validation_error"),
        ("GET", report, {"from": "yesterday", "to": "2026-11-01"}, 422, "validation_error"),
        ("GET", report, {"from": "2026-02-30", "to": "2026-03-01"}, 422, "validation_error"),
        ("GET", report, {"from": "2026-11-01T10:30:00", "to": "2026-11-02"}, 422, "validation_error"),
        ("GET", "/v1/providers/not-a-uuid/reports/billing-summary", PERIOD, 422, "validation_error"),
        ("GET", f"/v1/providers/{uuid.uuid4()}/reports/billing-summary", PERIOD, 404, "provider_not_found"),
        ("GET", f"/v1/providers/{practice.patient_a.id}/invoices", {}, 404, "provider_not_found"),
        ("GET", invoices, {"limit": 0}, 422, "validation_error"),
        ("GET", invoices, {"limit": 201}, 422, "validation_error"),
        ("GET", invoices, {"limit": "true"}, 422, "validation_error"),
        ("GET", invoices, {"cursor": "garbage"}, 422, "invalid_cursor"),
        ("GET", invoices, {"outstanding": "perhaps"}, 422, "validation_error"),
        ("GET", "/v1/providers/12/invoices", {}, 422, "validation_error"),
        ("POST", "/v1/bills/false/payments", None, 422, "validation_error"),
        ("POST", f"/v1/bills/{uuid.uuid4()}/payments", None, 404, "bill_not_found"),
    ]
    for method, path, params, status, code in cases:
        kwargs = {"json": PAYMENT} if method == "POST" else {"params": params}
        assert_problem(await client.request(method, path, headers=owner, **kwargs), status, code)
    assert await snapshot(session) == before
    # Reports and invoices need a token.
    assert_problem(await client.get(report, params=PERIOD), 401)
    assert_problem(await client.get(invoices), 401)
    assert_problem(await client.post(f"/v1/bills/{practice.submitted_a.id}/payments", json=PAYMENT), 401)


async def test_a_provider_of_another_company_is_unknown(client, factory, practice):
    owner = factory.headers(practice.dr_a)
    assert_problem(await client.get(f"/v1/providers/{practice.dr_b.id}/invoices", headers=owner), 404,
                   "provider_not_found")
    assert_problem(await client.post(f"/v1/bills/{practice.submitted_b.id}/payments", headers=owner,
                                     json=PAYMENT), 404, "bill_not_found")
