"""HTTP for access reviews: a provider's review (JSON pages, or the whole of it as CSV), attestations, and the
company's overview."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from billing_api.access_review import service
from billing_api.access_review.schemas import AccessReviewPage, AttestationCreate, AttestationRead, CompanyReviewPage
from billing_api.auth.principal import CurrentPrincipal
from billing_api.authz.dependencies import CurrentActor
from billing_api.db import Session
from billing_api.deps import AppSettings
from billing_api.errors import problem_responses
from billing_api.idempotency.service import Idempotent, IdempotentRoute
from billing_api.pagination import MAX_LIMIT, decode_name_cursor, encode_cursor

CSV = "text/csv"

router = APIRouter(prefix="/v1", route_class=IdempotentRoute, tags=["access"])

_REVIEW_RESPONSES = {
    200: {"description": "The review as JSON (a page of people), or with `Accept: text/csv` the whole review, one "
                         "line per grant (`user_id`, `display_name`, ..., `dormant`, `removable`; no paging).",
          "content": {CSV: {"schema": {"type": "string", "maxLength": 100_000_000}}}},
    **problem_responses(401, 403, 404, 422),
}


@router.get("/providers/{provider_id}/access-review", response_model=AccessReviewPage, responses=_REVIEW_RESPONSES)
async def get_access_review(
    provider_id: uuid.UUID,
    session: Session,
    actor: CurrentActor,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> AccessReviewPage | Response:
    """Everyone who can see or work this provider's bills (groups expanded, deactivated people named on the list
    included), each grant with when and by whom it was made, when it was last used and how often lately, and
    whether it is dormant; the list entries to consider removing (by a list save over `list_version`); the last
    attestation and whether one is overdue. For the provider and those who manage the list (as `GET .../access`)."""
    if accept and CSV in accept:
        body = await service.provider_review_csv(session, actor, provider_id)
        return Response(body, media_type=f"{CSV}; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="access-review-{provider_id}.csv"'})
    after = decode_name_cursor(cursor) if cursor else None
    page, more = await service.provider_review(session, actor, provider_id, limit, after)
    if more:
        page.next_cursor = encode_cursor(page.items[-1].display_name, page.items[-1].user_id)
    return page


@router.post("/providers/{provider_id}/access-review/attestations", dependencies=[Idempotent],
             response_model=AttestationRead, status_code=status.HTTP_201_CREATED,
             responses=problem_responses(400, 401, 403, 404, 409, 422, 429))
async def attest_access_review(provider_id: uuid.UUID, data: AttestationCreate, session: Session,
                               settings: AppSettings, principal: CurrentPrincipal,
                               actor: CurrentActor) -> AttestationRead:
    """Confirm that the provider's access was reviewed, over the `list_version` the review showed: needs your
    password (403 and nothing recorded if wrong) and a current version (409 if the list changed since). The
    provider stops being overdue until the company's review interval has passed again."""
    return await service.attest(session, settings, principal, actor, provider_id, data)


@router.get("/companies/{company_id}/access-review", response_model=CompanyReviewPage,
            responses=problem_responses(401, 403, 404, 422))
async def get_company_access_review(
    company_id: uuid.UUID,
    session: Session,
    actor: CurrentActor,
    overdue: bool | None = None,
    has_dormant: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> CompanyReviewPage:
    """Every provider of the company and of the child companies you manage, by name: how many people and grants,
    how many dormant, the last attestation and whether one is overdue. `overdue` and `has_dormant` filter. For
    company administrators and delegation list managers."""
    after = decode_name_cursor(cursor) if cursor else None
    items, more = await service.company_review(session, actor, company_id, overdue=overdue,
                                               has_dormant=has_dormant, limit=limit, after=after)
    next_cursor = encode_cursor(items[-1].display_name, items[-1].provider_id) if more else None
    return CompanyReviewPage(company_id=company_id, items=items, next_cursor=next_cursor)
