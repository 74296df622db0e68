"""The integrators' events feed (issue 9): `GET /v1/events`, and the one helper the services emit through."""
