"""Typed dependencies that hand routes an authorization-aware view of the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from billing_api.auth.principal import CurrentPrincipal
from billing_api.authz.actor import Actor, load_actor
from billing_api.db import Session


async def current_actor(session: Session, principal: CurrentPrincipal) -> Actor:
    return await load_actor(session, principal.user)


CurrentActor = Annotated[Actor, Depends(current_actor)]
