"""Low-level packages (what every request and every feature stands on) import no feature package: a feature they
need is handed in (the metrics' outbox backlog, given at app start) or the function lives with them."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "billing_api"
LOW_LEVEL = {"auth", "authz", "observability", "models", "db", "errors", "config", "deps", "pagination", "schemas",
             "body_limit", "header_limit", "embedded_postgres"}
# What puts the application together may import anything.
ROOTS = {"app", "cli", "demo", "worker", "__main__", "contract", "docs_page", "health", "migrations_runner"}


def _package(path: Path) -> str:
    return path.relative_to(SRC).with_suffix("").parts[0]


def _imported(path: Path) -> set[str]:
    """The billing_api packages and modules a file imports, wherever the import is (TYPE_CHECKING included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "billing_api" and len(parts) > 1:
                found.add(parts[1])
            elif parts == ["billing_api"] and isinstance(node, ast.ImportFrom):
                found.update(alias.name for alias in node.names)
    return found


def test_the_walk_sees_every_package():
    packages = {_package(path) for path in SRC.rglob("*.py")}
    assert {"auth", "observability", "identity", "mail", "audit"} <= packages
    assert not LOW_LEVEL - packages


def test_low_level_packages_import_no_feature_package():
    features = {_package(path) for path in SRC.rglob("*.py")} - LOW_LEVEL - ROOTS
    offenders = sorted(
        f"{path.relative_to(SRC)} imports {name}" for path in SRC.rglob("*.py") if _package(path) in LOW_LEVEL
        for name in _imported(path) & features
    )
    assert not offenders, offenders
