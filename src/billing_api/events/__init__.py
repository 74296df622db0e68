"""The integrators' events feed: `GET /v1/events`, and the one helper the services emit through."""
