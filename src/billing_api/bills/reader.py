"""The only way a route shows bills: a reader the guard builds from the caller's scope, whose every read records
what it returns (support's view in the audit trail, every view in the access log) before handing it over."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from billing_api.access_log.service import AccessLog, ReadLog
from billing_api.authz.dependencies import BillsView
from billing_api.authz.scope import BillScope
from billing_api.bills import service
from billing_api.bills.repository import BillFilters, BillRepository
from billing_api.bills.schemas import BillRead
from billing_api.db import Session
from billing_api.models import Bill, BillLine, Coverage
from billing_api.pagination import next_cursor


class BillReader:
    def __init__(self, repository: BillRepository, scope: BillScope, log: ReadLog) -> None:
        self._repository = repository
        self._scope = scope
        self._log = log

    async def page(self, filters: BillFilters, limit: int, after, surface: str) -> dict:
        """A page of bills, newest first, as the API's JSON (`items`, `next_cursor`). The hottest response: the
        rows come with their lines in one statement and go out as they are, without building models."""
        rows = await self._repository.presented_page(filters, limit, after)
        bills = rows[:limit]
        await self._shown(surface, bills)
        return {"items": service.presented_items(bills), "next_cursor": next_cursor(rows, limit)}

    async def bill(self, bill_id: uuid.UUID) -> BillRead:
        """One bill the scope sees; any other is not found."""
        bill = await service.visible_bill(self._repository, bill_id)
        (presented,) = await service.present(self._repository, [bill])
        await self._shown("bill", [bill])
        return presented

    async def bill_rows(self, bill_id: uuid.UUID, surface: str) -> tuple[Bill, list[BillLine]]:
        """One bill the scope sees as its rows, with its lines (what a document is made of), its read recorded as
        `surface`; any other bill is not found, as for `bill`."""
        bill = await service.visible_bill(self._repository, bill_id)
        lines = (await self._repository.lines([bill.id])).get(bill.id, [])
        await self._shown(surface, [bill])
        return bill, lines

    async def of_encounter(self, encounter_id: uuid.UUID) -> list[BillRead]:
        bills = await self._repository.for_encounter(encounter_id)
        presented = await service.present(self._repository, bills)
        await self._shown("encounter", bills)
        return presented

    async def of_visits(self, visit_ids: list[uuid.UUID], coverage: Coverage | None) -> dict[uuid.UUID,
                                                                                              list[BillRead]]:
        """The bills of each visit that the scope sees (of `coverage` only, when given)."""
        by_visit = await self._repository.for_visits(visit_ids, coverage)
        bills = [bill for of_visit in by_visit.values() for bill in of_visit]
        presented = {bill.id: bill for bill in await service.present(self._repository, bills)}
        await self._shown("visits_dashboard", bills)
        return {visit_id: [presented[bill.id] for bill in of_visit] for visit_id, of_visit in by_visit.items()}

    async def may_show_fees(self, encounter) -> bool:
        """Whether the caller may see what `encounter`'s lines charge: fees are billing information, shown to
        those who may view the provider's bills in the encounter's company."""
        return await self._repository.permits(encounter.provider_id, encounter.company_id)

    async def encounter_fees(self, encounter, lines: list) -> bool:
        """`may_show_fees`, a read that shows some recorded (`encounter_fees`)."""
        shown = await self.may_show_fees(encounter)
        if shown and lines:
            await self._log.record(self._scope, "encounter_fees",
                                   [(encounter.provider_id, encounter.company_id, encounter.patient_id)])
        return shown

    async def _shown(self, surface: str, bills: list) -> None:
        await self._log.record(self._scope, surface, service.shown(bills))


async def bills_reader(session: Session, log: AccessLog, scope: BillsView) -> BillReader:
    return BillReader(BillRepository(session, scope), scope, log)


BillsReader = Annotated[BillReader, Depends(bills_reader)]
