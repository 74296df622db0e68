"""Idempotency keys for retried writes (issue 9): the `Idempotency-Key` header, one dependency and one route class."""
