"""Idempotency keys for retried writes: the `Idempotency-Key` header, one dependency and one route class."""
