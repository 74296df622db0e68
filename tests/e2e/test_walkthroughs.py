"""The walk-throughs of docs/walkthroughs.md, run as written: each walk-through's ```sh blocks (after the
"Before you start" helpers) in one bash, against a service of its own freshly started with the demo data (the doc
promises they do not depend on each other), in the folder of its own Maildir (./mail, as the doc's mail catcher
writes it). Each ```text block after a ```sh block lists lines
that block must print, in order. The doc and this test read the same blocks, so they cannot drift apart."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field

import pytest
from aiosmtpd.handlers import Mailbox

from tests.conftest import ROOT
from tests.support import smtp

DOC = ROOT / "docs" / "walkthroughs.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
SETUP = "Before you start"
MARK = "@@walkthrough-block"


@dataclass
class Block:
    script: str
    expected: list[str] = field(default_factory=list)


def sections() -> dict[str, list[Block]]:
    """Level-2 sections of the doc, each with its sh blocks and the text block that follows each."""
    found: dict[str, list[Block]] = {}
    for part in re.split(r"^## ", DOC.read_text(), flags=re.MULTILINE)[1:]:
        title, _, body = part.partition("\n")
        blocks: list[Block] = []
        for match in FENCE.finditer(body):
            kind, text = match.groups()
            if kind == "sh":
                blocks.append(Block(text))
            elif kind == "text":
                assert blocks and not blocks[-1].expected, f"a text block without its sh block in {title!r}"
                blocks[-1].expected = [line.strip() for line in text.splitlines() if line.strip()]
        found[title.strip()] = blocks
    return found


WALKTHROUGHS = [title for title in sections() if title.startswith("Walk-through")]


def test_the_doc_has_the_five_walkthroughs_each_checked():
    assert [title.split(":")[0] for title in WALKTHROUGHS] == [f"Walk-through {n}" for n in (1, 2, 3, 4, 5)]
    for title in WALKTHROUGHS:
        blocks = sections()[title]
        assert blocks and all(block.expected for block in blocks), f"{title}: every sh block needs its output"


def outputs_by_block(stdout: str, count: int) -> list[list[str]]:
    parts = stdout.split(f"{MARK}\n")
    return [[line.strip() for line in part.splitlines()] for part in parts[1:count + 1]]


@pytest.fixture
async def fresh_demo_service(start_live_service, tmp_path):
    """A service with the demo data as `make run` loads it, mailing to a Maildir of its own in tmp_path."""
    mail_server, mail_port = smtp.start(Mailbox(tmp_path / "mail"))
    try:
        yield await start_live_service({"BILLING_API_SMTP_HOST": "127.0.0.1", "BILLING_API_SMTP_PORT": str(mail_port),
                                        "BILLING_API_SMTP_STARTTLS": "false"})
    finally:
        mail_server.stop()


@pytest.mark.parametrize("title", WALKTHROUGHS)
def test_walkthrough_runs_as_written(title, fresh_demo_service, tmp_path):
    folder = tmp_path
    assert shutil.which("curl") and shutil.which("python3"), "the walk-throughs need curl and python3"
    setup = "\n".join(block.script for block in sections()[SETUP])
    blocks = sections()[title]
    script = "set -euo pipefail\n" + setup + "".join(f"\necho {MARK}\n{block.script}" for block in blocks)
    result = subprocess.run(["bash", "-c", script], cwd=folder, env={"PATH": "/usr/local/bin:/usr/bin:/bin",
                            "BASE": fresh_demo_service.base_url, "HOME": str(folder)}, capture_output=True, text=True,
                            timeout=120, check=False)
    outputs = outputs_by_block(result.stdout, len(blocks))
    assert result.returncode == 0 and len(outputs) == len(blocks), (
        f"{title}: block {len(outputs)} failed (exit {result.returncode}):\n"
        f"{blocks[len(outputs) - 1].script if outputs else setup}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}")
    for number, (block, printed) in enumerate(zip(blocks, outputs, strict=True), start=1):
        position = 0
        for line in block.expected:
            assert line in printed[position:], (
                f"{title}, block {number}: expected {line!r} (in order) in\n" + "\n".join(printed))
            position = printed.index(line, position) + 1
