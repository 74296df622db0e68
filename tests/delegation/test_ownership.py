"""Delegation owns its lists: every write of a list's entries or version is in delegation/repository.py, and the
version moves on in one function there."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "billing_api"
OWNER = SRC / "delegation" / "repository.py"
# The demo data set seeds lists directly, as it seeds everything else.
SEEDS = SRC / "demo.py"


def test_list_entries_and_versions_are_written_only_by_delegation():
    statement = re.compile(r"\b(insert|update|delete)\(\s*(DelegationEntry|DelegationList)\b")
    offenders = [str(path.relative_to(SRC)) for path in SRC.rglob("*.py")
                 if path not in (OWNER, SEEDS) and statement.search(path.read_text())]
    assert not offenders, f"delegation list SQL outside delegation/repository.py: {offenders}"
    moves = re.findall(r"DelegationList\.version \+ 1", OWNER.read_text())
    assert len(moves) == 1, "one function moves a list's version on"
