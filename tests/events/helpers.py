"""Reading the events feed over HTTP, as an integrator polls it."""

from __future__ import annotations

import httpx


async def poll(client: httpx.AsyncClient, headers: dict[str, str], **params) -> list[dict]:
    """Every event the caller may see, following `next_cursor` while `has_more`."""
    events: list[dict] = []
    while True:
        response = await client.get("/v1/events", headers=headers, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        events += page["items"]
        if not page["has_more"]:
            return events
        params = {**params, "after": page["next_cursor"]}


def of_type(events: list[dict], event_type: str) -> list[dict]:
    return [event for event in events if event["type"] == event_type]
