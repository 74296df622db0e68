"""Fixtures for the mail tests. The `collector`, `smtp_settings`, `deliver` and `practice` fixtures they use are
the root conftest's."""

from __future__ import annotations

import pytest

from tests.support import smtp


@pytest.fixture(scope="session")
def refuser():
    """A real SMTP server on loopback that refuses every recipient, as a server with no such mailbox does."""
    yield from smtp.serving(smtp.Refuser())
