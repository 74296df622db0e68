"""The nightly run's bill statements. The scope is the provider's own (BILLS_SAVE to create, INVOICES_PAY to
charge, built by authz for the provider as actor): automation writes bills exactly as the provider would. Every
statement re-checks the scope and is limited to the scope's own provider."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    ColumnElement, Date, DateTime, Executable, Integer, SmallInteger, Text, and_, any_, bindparam, case, cast, column,
    exists, func, insert, literal, null, select, true, update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID, aggregate_order_by
from sqlalchemy.dialects.postgresql import array as postgresql_array
from sqlalchemy.orm.attributes import set_committed_value

from billing_api.bills.repository.scoped import ScopedRepository
from billing_api.codes.schemas import MAX_DIAGNOSES
from billing_api.models import (
    AutomatedEncounter, Bill, BillLine, BillSource, BillStatus, Coverage, Encounter, EncounterLine, Patient, Payment,
)


class AutomationBillRepository(ScopedRepository):
    async def create_automated_bills(
        self, company_id: uuid.UUID, date_from: date, date_to: date, *, per_patient: bool, now: datetime
    ) -> list[tuple[uuid.UUID, uuid.UUID, int, datetime, Coverage, uuid.UUID | None]]:
        """Bill the provider's unbilled, non-imported encounters with billable services (a line with a CPT code)
        in [date_from, date_to]: one bill per encounter, or (`per_patient`) one per patient for the period.
        Each encounter is linked to its bill in `automated_encounter` (primary key: billed at most once; a second
        attempt fails the transaction). Bills are issued (`submitted`, balance = total), `source = automation`.
        A patient with a payer of record gets insured bills to that payer, any other private ones.
        Returns (bill id, patient id, total cents, created at, coverage, payer id)."""
        if not await self.permits(self.scope.actor_id, company_id):
            raise PermissionError("this scope may not create bills for that provider")
        statement = self._statement("create_automated_bills", per_patient,
                                    build=lambda: self._automated_bills_statement(per_patient))
        rows = [(r[0], r[1], int(r[2]), r[3], r[4], r[5]) for r in (await self._run(
            statement, company_id=company_id, provider_id=self.scope.actor_id, date_from=date_from, date_to=date_to,
            now=now)).all()]
        if rows:
            bill_ids = [r[0] for r in rows]
            diagnoses = self._statement("automated_bill_diagnoses",
                                        build=lambda: _automated_diagnoses_statement(self._visible()))
            await self._run(diagnoses, bill_ids=bill_ids)
            lines = self._statement("automated_bill_lines", build=_automated_lines_statement)
            await self._run(lines, bill_ids=bill_ids)
        return rows

    def _automated_bills_statement(self, per_patient: bool) -> Executable:
        """Candidates, their bills (grouped per encounter or per patient) and the encounter -> bill links, in one
        statement returning (id, patient id, total cents, created at, coverage, payer id) of each bill. The scope
        is checked again in it, on the provider and company the bills are created for. Any bill on an encounter excludes it, whoever's
        it is: that test is unscoped on purpose (an encounter is billed once) and shows nothing."""
        encounter, line, link, bill, patient = (Encounter.__table__, EncounterLine.__table__,
                                                AutomatedEncounter.__table__, Bill.__table__, Patient.__table__)
        company_id = bindparam("company_id", type_=UUID(as_uuid=True))
        provider_id = bindparam("provider_id", type_=UUID(as_uuid=True))
        now = bindparam("now", type_=DateTime(timezone=True))
        billable = and_(line.c.encounter_id == encounter.c.id, line.c.code.is_not(None))
        candidates = (
            select(encounter.c.id, encounter.c.patient_id, encounter.c.visit_id, encounter.c.service_date,
                   select(func.sum(line.c.units * line.c.fee_cents)).where(billable).scalar_subquery().label("total"))
            .where(encounter.c.company_id == company_id, encounter.c.provider_id == provider_id,
                   ~encounter.c.imported,
                   encounter.c.service_date.between(bindparam("date_from", type_=Date),
                                                    bindparam("date_to", type_=Date)),
                   exists().where(billable), ~exists().where(link.c.encounter_id == encounter.c.id),
                   ~exists().where(bill.c.encounter_id == encounter.c.id),
                   self.scope.allows(provider_id, company_id))
            .cte("candidates")
            .prefix_with("MATERIALIZED")
        )
        key = candidates.c.patient_id if per_patient else candidates.c.id
        no_id = cast(null(), UUID(as_uuid=True))

        def any_of(column):  # PostgreSQL has no min(uuid)
            return cast(func.min(cast(column, Text)), UUID(as_uuid=True))

        grouped = (
            select(func.gen_random_uuid().label("bill_id"), key.label("key"),
                   any_of(candidates.c.patient_id).label("patient_id"),
                   (no_id if per_patient else any_of(candidates.c.id)).label("encounter_id"),
                   (no_id if per_patient else any_of(candidates.c.visit_id)).label("visit_id"),
                   func.max(candidates.c.service_date).label("service_date"),
                   func.sum(candidates.c.total).label("total"))
            .group_by(key)
            .cte("grouped")
            .prefix_with("MATERIALIZED")  # one gen_random_uuid() per bill, read by both inserts
        )
        bills = (
            insert(bill)
            .from_select(
                ["id", "company_id", "provider_id", "patient_id", "encounter_id", "visit_id", "coverage", "payer_id",
                 "status", "source", "service_date", "total_cents", "balance_cents", "submitted_at", "created_at",
                 "updated_at"],
                select(grouped.c.bill_id, company_id, provider_id, grouped.c.patient_id, grouped.c.encounter_id,
                       grouped.c.visit_id,
                       case((patient.c.payer_id.is_(None), literal(Coverage.private, bill.c.coverage.type)),
                            else_=literal(Coverage.insured, bill.c.coverage.type)),
                       patient.c.payer_id,
                       literal(BillStatus.submitted, bill.c.status.type),
                       literal(BillSource.automation, bill.c.source.type),
                       grouped.c.service_date, grouped.c.total, grouped.c.total, now, now, now)
                .select_from(grouped.join(patient, patient.c.id == grouped.c.patient_id)),
                include_defaults=False)
            .returning(bill.c.id, bill.c.patient_id, bill.c.total_cents, bill.c.created_at, bill.c.coverage,
                       bill.c.payer_id)
            .cte("bills")
        )
        links = (
            insert(link)
            .from_select(["encounter_id", "bill_id", "company_id", "created_at"],
                         select(candidates.c.id, grouped.c.bill_id, company_id, now)
                         .select_from(candidates.join(grouped, grouped.c.key == key)),
                         include_defaults=False)
            .cte("links")
        )
        return select(bills.c.id, bills.c.patient_id, bills.c.total_cents, bills.c.created_at, bills.c.coverage,
                      bills.c.payer_id).add_cte(bills, links)

    async def outstanding_for_patients(self, company_id: uuid.UUID, patient_ids: list[uuid.UUID]) -> list[Bill]:
        """The scope's provider's issued bills with a balance for these patients, locked (oldest first).
        The provider's open bills are listed first and kept by patient here, then only those are locked, by
        id: a list of many patients in the SQL is matched row by row under a generic plan (about a second a
        provider at 22,000 patients)."""
        wanted = set(patient_ids)
        if not wanted:
            return []
        candidates = self._statement("outstanding_candidates", build=lambda: (
            select(Bill.id, Bill.patient_id)
            .where(Bill.company_id == bindparam("company_id"), Bill.provider_id == bindparam("provider_id"),
                   Bill.status == BillStatus.submitted, Bill.balance_cents > 0, self._visible())
        ))
        bill_ids = [bill_id for bill_id, patient_id in (await self._run(
            candidates, company_id=company_id, provider_id=self.scope.actor_id)).all() if patient_id in wanted]
        if not bill_ids:
            return []
        # Locked, the conditions are checked again: the rows are the ones as they stand now.
        statement = self._statement("outstanding_locked", build=lambda: (
            select(Bill)
            .where(Bill.id == any_(bindparam("bill_ids", type_=ARRAY(UUID(as_uuid=True)))),
                   Bill.provider_id == bindparam("provider_id"), Bill.status == BillStatus.submitted,
                   Bill.balance_cents > 0, self._visible())
            .order_by(Bill.created_at, Bill.id)
            .with_for_update(of=Bill)
        ))
        return list((await self._run(statement, bill_ids=bill_ids, provider_id=self.scope.actor_id)).scalars())

    async def open_bills_through(self, company_id: uuid.UUID, service_date_to: date) -> list[tuple]:
        """The scope's provider's issued bills with a balance for services up to `service_date_to`, for
        statements: (bill id, patient id, provider id, service date, total cents, balance cents)."""
        statement = self._statement("open_bills_through", build=lambda: (
            select(Bill.id, Bill.patient_id, Bill.provider_id, Bill.service_date, Bill.total_cents,
                   Bill.balance_cents)
            .where(Bill.company_id == bindparam("company_id"), Bill.provider_id == bindparam("provider_id"),
                   Bill.status == BillStatus.submitted, Bill.balance_cents > 0,
                   Bill.service_date <= bindparam("service_date_to"), self._visible())
            .order_by(Bill.patient_id, Bill.service_date, Bill.id)
        ))
        return [tuple(r) for r in (await self._run(statement, company_id=company_id, provider_id=self.scope.actor_id,
                                                   service_date_to=service_date_to)).all()]

    async def add_payments(self, paid: list[tuple[Bill, Payment]]) -> set[uuid.UUID]:
        """`add_payment` for many bills in two statements (AutoPay): each bill (locked by the caller, with this
        scope) is updated only if it is still submitted with the balance read; the payments of the bills
        updated are inserted. Returns the ids of the bills paid; the others are left untouched."""
        rows = [(bill, payment, bill.balance_cents - payment.amount_cents) for bill, payment in paid
                if payment.bill_id == bill.id and 0 < payment.amount_cents <= bill.balance_cents]
        if not rows:
            return set()
        statement = self._statement("add_payments", build=self._add_payments_statement)
        updated = dict((await self._run(statement, bill_ids=[r[0].id for r in rows],
                                        before=[r[0].balance_cents for r in rows],
                                        after=[r[2] for r in rows])).all())
        payments = []
        for bill, payment, balance in rows:
            if bill.id in updated:
                set_committed_value(bill, "balance_cents", balance)
                set_committed_value(bill, "status", BillStatus.paid if balance == 0 else BillStatus.submitted)
                set_committed_value(bill, "updated_at", updated[bill.id])
                payments.append(payment)
        self.session.add_all(payments)
        await self.session.flush()
        return set(updated)

    def _add_payments_statement(self) -> Executable:
        paid = func.unnest(
            bindparam("bill_ids", type_=ARRAY(UUID(as_uuid=True))), bindparam("before", type_=ARRAY(Integer)),
            bindparam("after", type_=ARRAY(Integer)),
        ).table_valued(column("bill_id", UUID(as_uuid=True)), column("balance_before", Integer),
                       column("balance_after", Integer)).render_derived(name="paid")
        status = cast(case((paid.c.balance_after == 0, literal(BillStatus.paid.value)),
                           else_=literal(BillStatus.submitted.value)), Bill.__table__.c.status.type)
        return (
            update(Bill)
            .where(Bill.id == paid.c.bill_id, Bill.status == BillStatus.submitted,
                   Bill.balance_cents == paid.c.balance_before, self._visible())
            .values(balance_cents=paid.c.balance_after, status=status)
            .returning(Bill.id, Bill.updated_at)
            .execution_options(synchronize_session=False)
        )


def _merged_diagnoses() -> tuple:
    """The diagnoses of the new automated bills (`bill_ids`): those of each bill's encounters, each once, in order
    of first appearance (by service date, encounter, position), numbered from 1 (`merged`); and for each
    encounter's diagnosis its position on the bill, among the first twelve (`pointer`)."""
    encounter, link = Encounter.__table__, AutomatedEncounter.__table__
    element = (func.jsonb_array_elements(encounter.c.diagnoses)
               .table_valued(column("value", JSONB), with_ordinality="n").render_derived(name="element"))
    occurrence = (
        select(link.c.bill_id, link.c.encounter_id, element.c.n, element.c.value,
               func.row_number().over(partition_by=link.c.bill_id,
                                      order_by=(encounter.c.service_date, encounter.c.id, element.c.n)).label("seen"))
        # A function in FROM sees the items before it (LATERAL is implied): each encounter's own diagnoses.
        .select_from(link.join(encounter, encounter.c.id == link.c.encounter_id).join(element, true()))
        .where(link.c.bill_id == any_(bindparam("bill_ids", type_=ARRAY(UUID(as_uuid=True)))))
        .cte("occurrence")
    )
    merged = (
        select(occurrence.c.bill_id, occurrence.c.value,
               func.row_number().over(partition_by=occurrence.c.bill_id,
                                      order_by=func.min(occurrence.c.seen)).label("position"))
        .group_by(occurrence.c.bill_id, occurrence.c.value)
        .cte("merged")
    )
    pointer = (
        select(occurrence.c.encounter_id, occurrence.c.n, merged.c.position)
        .select_from(occurrence.join(merged, and_(merged.c.bill_id == occurrence.c.bill_id,
                                                  merged.c.value == occurrence.c.value)))
        .where(merged.c.position <= MAX_DIAGNOSES)
        .cte("pointer")
    )
    return merged, pointer


def _automated_diagnoses_statement(visible: ColumnElement[bool]) -> Executable:
    """The new automated bills' diagnoses (only bills whose encounters have some are written)."""
    merged, _ = _merged_diagnoses()
    of_bill = (
        select(merged.c.bill_id, func.jsonb_agg(aggregate_order_by(merged.c.value, merged.c.position))
               .label("diagnoses"))
        .where(merged.c.position <= MAX_DIAGNOSES)
        .group_by(merged.c.bill_id)
        .subquery("of_bill")
    )
    return (
        update(Bill)
        .where(Bill.id == of_bill.c.bill_id, visible)
        # Part of the bill's creation, not a change to it: `updated_at` stays the creation's.
        .values(diagnoses=of_bill.c.diagnoses, updated_at=Bill.updated_at)
        .execution_options(synchronize_session=False)
    )


# What a bill line takes from its encounter's line, besides its pointers.
_COPIED = ("code_system", "code", "modifiers", "description", "units", "fee_cents")


def _automated_lines_statement() -> Executable:
    """The new automated bills' lines: their encounters' lines with a code, numbered per bill by service date,
    encounter and line position (the bills were created by this scope in the same transaction), with their codes
    and modifiers, and their pointers moved to their diagnoses' positions on the bill (the same as on the
    encounter when a bill has one encounter)."""
    encounter, line, link = Encounter.__table__, EncounterLine.__table__, AutomatedEncounter.__table__
    _, pointer = _merged_diagnoses()
    position = func.row_number().over(partition_by=link.c.bill_id,
                                      order_by=(encounter.c.service_date, encounter.c.id, line.c.position))
    sent = (func.unnest(line.c.diagnosis_pointers)
            .table_valued(column("n", SmallInteger), with_ordinality="k").render_derived(name="sent"))
    pointers = (
        select(func.coalesce(func.array_agg(aggregate_order_by(cast(pointer.c.position, SmallInteger), sent.c.k)),
                             cast(postgresql_array([], type_=SmallInteger), ARRAY(SmallInteger))))
        .select_from(sent.join(pointer, and_(pointer.c.encounter_id == line.c.encounter_id,
                                             pointer.c.n == sent.c.n)))
        .scalar_subquery()
    )
    return insert(BillLine.__table__).from_select(
        ["id", "bill_id", "position", *_COPIED, "diagnosis_pointers"],
        select(func.gen_random_uuid(), link.c.bill_id, position, *(line.c[name] for name in _COPIED), pointers)
        .select_from(link.join(encounter, encounter.c.id == link.c.encounter_id)
                     .join(line, and_(line.c.encounter_id == encounter.c.id, line.c.code.is_not(None))))
        .where(link.c.bill_id == any_(bindparam("bill_ids", type_=ARRAY(UUID(as_uuid=True))))),
        include_defaults=False,
    )
