"""Payer and facility rules (the EMS seed). Reading: whoever reaches the company. Changing at the parent level
(a top-level company): company administrators only, whatever permissions their roles hold, which keeps the
shared lists free of duplicates; at a child level: holders of payers:manage / facilities:manage who reach it,
and company administrators. Copying a parent-level record down is idempotent and all or nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.audit.service import record as audit
from billing_api.auth.principal import Principal
from billing_api.authz.actor import Actor
from billing_api.authz.permissions import Permission
from billing_api.authz.policies import may_manage_company_records
from billing_api.companies import repository as company_repository
from billing_api.companies import service as company_service
from billing_api.errors import Conflict, Forbidden, NotFound, Unprocessable
from billing_api.models import Company, Facility, Payer
from billing_api.payers_facilities import repository
from billing_api.payers_facilities.repository import Record
from billing_api.payers_facilities.schemas import CopyOutcome, CopyResult, CopyStatus
from billing_api.schemas import InputModel


@dataclass(frozen=True)
class Kind:
    model: type[Payer] | type[Facility]
    noun: str
    permission: Permission
    # What a copy takes over from its source.
    fields: tuple[str, ...]


PAYERS = Kind(Payer, "payer", Permission.PAYERS_MANAGE, ("name", "payer_code", "address"))
FACILITIES = Kind(Facility, "facility", Permission.FACILITIES_MANAGE, ("name", "npi", "address"))


def _level(company: Company) -> str:
    return "parent" if company.parent_id is None else "child"


def _check_manage(actor: Actor, company: Company, kind: Kind) -> None:
    parent_level = company.parent_id is None
    if may_manage_company_records(actor, company.id, parent_level=parent_level, permission=kind.permission):
        return
    if actor.is_support:
        raise Forbidden("Support accounts are read-only.", code="support_read_only")
    if parent_level:
        raise Forbidden(f"Only company administrators create, edit, delete or copy {kind.noun} records at the "
                        "parent level.", code="company_admin_required")
    raise Forbidden(f"You need {kind.permission.value} to change this company's {kind.noun} records.",
                    code="permission_denied", extra={"permission": kind.permission.value})


async def _name_free(session: AsyncSession, kind: Kind, company_id: uuid.UUID, name: str,
                     except_id: uuid.UUID | None = None) -> None:
    if await repository.companies_with_name(session, kind.model, [company_id], name, except_id=except_id):
        raise Conflict(f"The company has a {kind.noun} of that name.", code=f"{kind.noun}_name_taken",
                       extra={"field": "name"})


async def list_records(
    session: AsyncSession, actor: Actor, kind: Kind, company_id: uuid.UUID, limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Record]:
    company = await company_service.visible_company(session, actor, company_id)
    return await repository.list_records(session, kind.model, company.id, limit, after)


async def visible_record(session: AsyncSession, actor: Actor, kind: Kind, company_id: uuid.UUID,
                         record_id: uuid.UUID) -> Record:
    company = await company_service.visible_company(session, actor, company_id)
    found = await repository.get_record(session, kind.model, company.id, record_id)
    if found is None:
        raise NotFound(f"No such {kind.noun}.", code=f"{kind.noun}_not_found")
    return found


async def _for_change(session: AsyncSession, actor: Actor, kind: Kind, company_id: uuid.UUID,
                      record_id: uuid.UUID) -> tuple[Company, Record]:
    company = await company_service.visible_company(session, actor, company_id)
    found = await repository.get_record(session, kind.model, company.id, record_id, for_update=True)
    if found is None:
        raise NotFound(f"No such {kind.noun}.", code=f"{kind.noun}_not_found")
    _check_manage(actor, company, kind)
    return company, found


async def create_record(session: AsyncSession, principal: Principal, actor: Actor, kind: Kind,
                        company_id: uuid.UUID, data: BaseModel) -> Record:
    company = await company_service.visible_company(session, actor, company_id)
    _check_manage(actor, company, kind)
    values = data.model_dump()
    await _name_free(session, kind, company.id, values["name"])
    created = kind.model(id=uuid.uuid4(), company_id=company.id, **values)
    await repository.add(session, [created])
    audit(session, principal, f"{kind.noun}.created", company_id=company.id, target_type=kind.noun,
          target_id=created.id, details={"name": created.name, "level": _level(company)})
    return created


async def update_record(session: AsyncSession, principal: Principal, actor: Actor, kind: Kind,
                        company_id: uuid.UUID, record_id: uuid.UUID, data: InputModel) -> Record:
    company, found = await _for_change(session, actor, kind, company_id, record_id)
    changes: dict[str, Any] = data.changes("name")
    if "name" in changes:
        await _name_free(session, kind, company.id, changes["name"], except_id=found.id)
    for field, value in changes.items():
        setattr(found, field, value)
    await session.flush()
    audit(session, principal, f"{kind.noun}.updated", company_id=company.id, target_type=kind.noun,
          target_id=found.id, details={"changes": changes, "level": _level(company)})
    return found


async def delete_record(session: AsyncSession, principal: Principal, actor: Actor, kind: Kind,
                        company_id: uuid.UUID, record_id: uuid.UUID) -> None:
    """Copies in child companies stay (they are the children's own now), unlinked from the source."""
    company, found = await _for_change(session, actor, kind, company_id, record_id)
    if kind is PAYERS and await repository.payer_in_use(session, found.id):
        raise Conflict("Bills or patients name this payer; it can no longer be deleted.", code="payer_in_use")
    await repository.remove(session, found)
    audit(session, principal, f"{kind.noun}.deleted", company_id=company.id, target_type=kind.noun,
          target_id=found.id, details={"name": found.name, "level": _level(company)})


async def copy_record(session: AsyncSession, principal: Principal, actor: Actor, kind: Kind,
                      company_id: uuid.UUID, record_id: uuid.UUID, company_ids: list[uuid.UUID]) -> CopyResult:
    """Copy a record down to child companies of its company. Everything is checked before anything is written:
    a company that is not a child (422 `company_not_a_child`) or a child holding another record of that name
    (409) refuses the whole copy. A child that already has a copy is reported `already_present`."""
    # Locking the source makes concurrent copies of it take turns (so neither duplicates the other's).
    company, source = await _for_change(session, actor, kind, company_id, record_id)
    wanted = set(company_ids)
    if len(wanted) != len(company_ids):
        twice = sorted({str(c) for c in company_ids if company_ids.count(c) > 1})
        raise Unprocessable("A company is listed twice.", code="duplicate_company",
                            extra={"company_id": twice[0], "company_ids": twice})
    children = {child.id for child in await company_repository.children_of(session, company.id)}
    outside = sorted(str(c) for c in wanted - children)
    if outside:
        raise Unprocessable(f"Company {outside[0]} is not a child company of {company.name}: {kind.noun} records "
                            "are copied down to child companies only; nothing was copied.",
                            code="company_not_a_child",
                            extra={"company_id": outside[0], "company_ids": outside, "parent_id": str(company.id)})
    existing = await repository.copies_of(session, kind.model, source.id, company_ids)
    to_copy = [c for c in company_ids if c not in existing]
    clashing = await repository.companies_with_name(session, kind.model, to_copy, source.name)
    if clashing:
        clash = sorted(map(str, clashing))
        raise Conflict(f"Company {clash[0]} already has another {kind.noun} named {source.name!r}; nothing was "
                       "copied.", code=f"{kind.noun}_name_taken",
                       extra={"field": "name", "company_id": clash[0], "company_ids": clash})
    copies = {
        child: kind.model(id=uuid.uuid4(), company_id=child, copied_from_id=source.id,
                          **{field: getattr(source, field) for field in kind.fields})
        for child in to_copy
    }
    await repository.add(session, list(copies.values()))
    if copies:
        audit(session, principal, f"{kind.noun}.copied", company_id=company.id, target_type=kind.noun,
              target_id=source.id, details={"copied_to": [str(c) for c in copies],
                                            "already_present": [str(c) for c in existing],
                                            "copies": [str(copy.id) for copy in copies.values()]})
    items = [
        CopyOutcome(company_id=c, status=CopyStatus.already_present, id=existing[c].id) if c in existing
        else CopyOutcome(company_id=c, status=CopyStatus.copied, id=copies[c].id)
        for c in company_ids
    ]
    return CopyResult(source_id=source.id, items=items)


async def billable_payer(session: AsyncSession, payer_id: uuid.UUID, company_id: uuid.UUID, *,
                         field: str = "payer_id") -> Payer:
    """The payer, if it is one of the company's own: a bill (or a patient's payer of record) names a payer of its
    own company. A parent-level payer must be copied down first: the copy is the child's record, with the
    child's own details, and a bill keeps pointing at it whatever happens to the parent's list."""
    payer = await repository.get_payer(session, payer_id)
    if payer is not None and payer.company_id == company_id:
        return payer
    company = await company_repository.get_company(session, company_id)
    if payer is not None and company is not None and payer.company_id == company.parent_id:
        copies = await repository.copies_of(session, Payer, payer.id, [company_id])
        if company_id in copies:
            raise Unprocessable(f"{payer.name!r} is the parent company's payer; name its copy in this company, "
                                f"{copies[company_id].id}.", code="payer_not_in_company",
                                extra={"field": field, "copy_id": str(copies[company_id].id)})
        raise Unprocessable(f"{payer.name!r} is the parent company's payer and has not been copied down to this "
                            f"company: copy it first (POST /v1/companies/{payer.company_id}/payers/{payer.id}/copy "
                            f"with this company's id), then name the copy.", code="payer_not_copied_down",
                            extra={"field": field, "copy_down": {
                                "path": f"/v1/companies/{payer.company_id}/payers/{payer.id}/copy",
                                "company_ids": [str(company_id)]}})
    # Another company's payer, or none: the same answer, which says nothing of other companies.
    raise Unprocessable("`payer_id` is not a payer of this company.", code="payer_not_in_company",
                        extra={"field": field})
