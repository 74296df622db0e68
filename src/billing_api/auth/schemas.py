from __future__ import annotations

from pydantic import BaseModel, Field

from billing_api.schemas import example


class TokenResponse(BaseModel):
    model_config = example(
        access_token="eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI3ZDRlMmYxYSJ9.c2lnbmF0dXJl",
        token_type="bearer", expires_in=3600,
    )

    access_token: str
    token_type: str = Field(default="bearer", description="Always `bearer`.")
    expires_in: int = Field(description="Seconds until the token expires.")
