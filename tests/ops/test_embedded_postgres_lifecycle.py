"""Stopping the service stops its embedded PostgreSQL, and a start after a crash recovers.

Each test runs the real command (`billing-api serve`, `billing-api worker`, `make run`) as a subprocess on a fresh
data folder of its own with no database URL, so the command starts an embedded PostgreSQL (pgserver) there. The
postmaster of that folder is found by its command line (`postgres -D <folder>`); each test sees it running before
it sends the signal, so "none remains" cannot pass without a server having been there. Only the postmasters of
these temporary folders are ever touched: other test runs use the shared `.billing-api-data/test` at the same time.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import START_GUARD_SECONDS
from tests.support.smtp import free_port

ROOT = Path(__file__).resolve().parents[2]
BILLING_API = str(Path(sys.executable).with_name("billing-api"))
STOP_SECONDS = 15  # the requirement: the embedded server is gone this soon after the signal


def postmasters(pgdata: Path) -> list[int]:
    """Pids of the PostgreSQL postmasters whose data folder is `pgdata`. A backend renames itself (`postgres:
    postgres db [local] idle`) just after the postmaster forks it; until then it has the postmaster's command line,
    so processes whose parent is such a postmaster are left out."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # ended meanwhile
            continue
        if args[0].endswith(b"/postgres") and b"-D" in args and args.index(b"-D") + 1 < len(args) \
                and args[args.index(b"-D") + 1] == str(pgdata).encode():
            try:
                found[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    return sorted(pid for pid, parent in found.items() if parent not in found)


class Service:
    """One command on the test's data folder; its output goes to a log file that failures show."""

    def __init__(self, data: Path, log_name: str):
        self.data, self.pgdata = data, (data / "postgres").resolve()
        self.log = data.parent / log_name
        self.port = free_port()
        self.env = {name: value for name, value in os.environ.items() if not name.startswith("BILLING_API_")}
        self.env |= {"PYTHONPATH": str(ROOT / "src"), "BILLING_API_DATA_DIR": str(data), "PORT": str(self.port),
                     "BILLING_API_JWT_SECRET": "lifecycle-test-" + "x" * 40, "BILLING_API_LOG_FORMAT": "text",
                     "BILLING_API_ARGON2_TIME_COST": "1", "BILLING_API_ARGON2_MEMORY_COST_KIB": "8",
                     "BILLING_API_ARGON2_PARALLELISM": "1"}
        self.process: subprocess.Popen | None = None

    def start(self, kind: str) -> None:
        command = {
            "serve": [BILLING_API, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            "serve --workers 2": [BILLING_API, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                                  "--workers", "2"],
            "worker": [BILLING_API, "worker"],
            "make run": ["make", "--no-print-directory", "run"],
        }[kind]
        with self.log.open("ab") as out:
            out.write(f"\n=== {kind}\n".encode())
            out.flush()
            # A session of its own: the process group that a terminal's Ctrl-C or `kill -- -PGID` reaches.
            self.process = subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.kind = kind
        self._wait_up()

    def _wait_up(self) -> None:
        deadline = time.monotonic() + START_GUARD_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"{self.kind} exited with {self.process.returncode}:\n{self.output()}"
            if self._up():
                return
            time.sleep(0.3)
        raise AssertionError(f"{self.kind} not up within {START_GUARD_SECONDS}s:\n{self.output()}")

    def _up(self) -> bool:
        if self.kind == "worker":  # the sender logs this once migrations ran and its loop runs
            return "mail sender started" in self.log.read_text()
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def output(self) -> str:
        return self.log.read_text()[-6000:]

    def signal(self, signum: int, *, group: bool = False) -> None:
        if group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)

    def wait_stopped(self) -> float:
        """Wait until the command's whole process group and the folder's postmaster are gone; the seconds."""
        began = time.monotonic()
        while time.monotonic() - began < STOP_SECONDS:
            self.process.poll()
            if self.process.returncode is not None and not _group_alive(self.process.pid) \
                    and not postmasters(self.pgdata):
                return time.monotonic() - began
            time.sleep(0.1)
        raise AssertionError(f"after {STOP_SECONDS}s: {self.kind} exit code {self.process.poll()}, postmasters "
                             f"{postmasters(self.pgdata)}:\n{self.output()}")

    def clean_up(self) -> None:
        """After a failure: nothing of this test stays running (its own group, its own folder's server)."""
        if self.process is not None and _group_alive(self.process.pid):
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for pid in postmasters(self.pgdata):
            os.kill(pid, signal.SIGQUIT)  # PostgreSQL's immediate shutdown
        deadline = time.monotonic() + 30
        while postmasters(self.pgdata) and time.monotonic() < deadline:
            time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def service():
    # Not under pytest's tmp_path: every pytest run starting meanwhile sets its base folder back to mode 0700,
    # which locks out the `pgserver` system user that runs PostgreSQL when the tests run as root.
    root = Path(tempfile.mkdtemp(prefix="billing-api-lifecycle-"))
    service = Service(root / "data", "commands.log")
    yield service
    service.clean_up()
    shutil.rmtree(root, ignore_errors=True)


def _start_stop_and_start_again(service: Service) -> None:
    """The stop left the folder as a next start wants it: it starts and serves, and stops again."""
    service.start("serve")
    assert len(postmasters(service.pgdata)) == 1
    service.signal(signal.SIGTERM)
    service.wait_stopped()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("kind", ["serve", "serve --workers 2", "worker", "make run"])
def test_a_signal_to_the_command_stops_its_embedded_postgres(service, kind, signum):
    service.start(kind)
    assert len(postmasters(service.pgdata)) == 1, service.output()

    # `make run` as a terminal's Ctrl-C or `kill -- -PGID` reaches it: make and every process it started.
    service.signal(signum, group=kind == "make run")
    service.wait_stopped()

    _start_stop_and_start_again(service)


def test_a_start_after_a_crash_adopts_the_orphaned_server_and_a_clean_stop_then_stops_it(service):
    service.start("serve")
    (orphan,) = postmasters(service.pgdata)
    service.signal(signal.SIGKILL)
    service.process.wait()
    time.sleep(1)
    assert postmasters(service.pgdata) == [orphan]  # a crash cannot stop it: the server outlives the service

    service.start("serve")  # the crashed process's pid is still in pgserver's list of the folder's users
    assert postmasters(service.pgdata) == [orphan]  # adopted: one server on the folder, never two
    service.signal(signal.SIGTERM)
    service.wait_stopped()

    _start_stop_and_start_again(service)
