"""Dependencies shared by every domain: settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from billing_api.config import Settings


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


AppSettings = Annotated[Settings, Depends(get_app_settings)]
