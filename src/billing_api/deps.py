"""Dependencies shared by every domain: settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from billing_api.config import Settings


async def get_app_settings(request: Request) -> Settings:
    # async: FastAPI runs a plain `def` dependency in a worker thread, a hop that costs more than the read.
    return request.app.state.settings


AppSettings = Annotated[Settings, Depends(get_app_settings)]
