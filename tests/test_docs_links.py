"""The documentation stands on its own: every Markdown link in README.md and docs/ points at a file (and heading)
that exists, the README stays a short first page, and no file points outside the repository or at an issue
tracker (notes kept elsewhere, issue numbers)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
README_MAX_LINES = 200

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, ...

# Where a file may not point: notes kept outside the repository, and issue trackers.
FORBIDDEN = {
    "notes outside the repository": re.compile(r"STACK-NOTES|PERF-NOTES|DESIGN\.md|DESIGN\s*§|\.\./shared\b"),
    "an issue number": re.compile(r"\bissues?\s*#?\s*\d+|(?:^|[\s(\[,;])#\d+\b", re.IGNORECASE | re.MULTILINE),
}
SCANNED = ["README.md", "Makefile", "Dockerfile", "pyproject.toml", "src", "tests", "bench", "docs", "migrations",
           "tools", ".ci"]
SKIPPED_DIRS = {"static", "node_modules", "__pycache__", ".data", ".pytest_cache"}  # static: vendored swagger-ui


def _prose(text: str) -> str:
    """The text without fenced code blocks and code spans, where brackets are code, not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    prose = _prose(text)
    return INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def anchors(page: Path) -> set[str]:
    """The heading anchors a Markdown page offers, as GitHub makes them (a repeated heading gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", FENCE.sub("", page.read_text()), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page.read_text()):
        if EXTERNAL.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.exists():
            broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    return broken


def scanned_files() -> list[Path]:
    files = []
    for name in SCANNED:
        top = ROOT / name
        candidates = [top] if top.is_file() else sorted(top.rglob("*")) if top.is_dir() else []
        for path in candidates:
            relative = path.relative_to(ROOT)
            if (path.is_file() and path != Path(__file__).resolve()
                    and not any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in relative.parts)):
                files.append(path)
    return files


def forbidden_references(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except (UnicodeDecodeError, OSError):
        return []  # not text
    return [f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}: {what}: {match.group().strip()!r}"
            for what, pattern in FORBIDDEN.items() for match in pattern.finditer(text)]


def test_every_link_in_the_readme_and_the_docs_resolves():
    assert len(PAGES) > 5
    assert [problem for page in PAGES for problem in broken_links(page)] == []


def test_the_readme_is_a_short_first_page():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move reference material into docs/"


def test_no_file_points_outside_the_repository_or_at_an_issue():
    files = scanned_files()
    assert any(path.name == "README.md" for path in files) and any(path.suffix == ".py" for path in files)
    assert [problem for path in files for problem in forbidden_references(path)] == []


# The checks themselves: each catches what it is for.

def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Some `code` here\n")
    page = tmp_path / "README.md"
    page.write_text("[ok](docs/a.md) [ok](docs/a.md#some-code-here) [web](https://example.org/x.md)\n"
                    "```sh\n[not a link](nowhere.md)\n```\n"
                    "[gone](docs/gone.md) [bad anchor](docs/a.md#no-such-heading)\n")
    assert broken_links(page) == ["README.md: docs/gone.md (no such file)",
                                  "README.md: docs/a.md#no-such-heading (no such heading)"]


@pytest.mark.parametrize("text", ["see ../shared/notes.md", "STACK-NOTES trap 5", "PERF-NOTES.md", "DESIGN.md §3",
                                  "fixed in issue 13", "Issue #14", "(#14)", "see #7 for why"])
def test_the_reference_check_finds_each_kind(tmp_path, monkeypatch, text):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    path = tmp_path / "module.py"
    path.write_text(f"# {text}\n")
    assert forbidden_references(path) != []


@pytest.mark.parametrize("text", ["# 1. The suite runs in random order", "color: #fff", "a tissue 3 cm",
                                  "this issue", "&#123;", "/v1/bills#top"])
def test_the_reference_check_lets_ordinary_text_be(tmp_path, monkeypatch, text):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    path = tmp_path / "module.py"
    path.write_text(f"{text}\n")
    assert forbidden_references(path) == []
