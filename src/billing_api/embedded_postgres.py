"""The embedded PostgreSQL (pgserver) of a data folder: its whole lifecycle, in one place.

Each process that needs the server starts it or joins it; the last process to leave stops it, however it leaves
(a normal exit, Ctrl-C, SIGTERM from `kill`, docker stop or systemd). A start after a crash adopts the server
the crashed process left running, so there is never a second server on one folder (PostgreSQL's own
postmaster.pid lock refuses one anyway).

pgserver keeps the pids of the processes using a folder in `<pgdata>/.handle_pids.json` and stops the server
from an atexit hook when the last one leaves. That alone left the server running for good:
- SIGTERM's default action ends a process without running atexit hooks: `stopped_on_exit` turns SIGTERM into an
  exception, so the stop runs, then ends the process by SIGTERM as before;
- a process killed outright (SIGKILL, a crash) never removes its pid, so no later process was ever the last
  one: pids of processes that no longer run are dropped on every start and stop.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import subprocess
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil

logger = logging.getLogger("billing_api.embedded_postgres")

STOP_SECONDS = 30  # PostgreSQL's fast shutdown takes well under a second unless the machine is very busy
HANDLES_FILE = ".handle_pids.json"  # pgserver's list of the pids using a folder (pgserver 0.1.4)

_servers: dict[Path, object] = {}  # pgdata -> pgserver's PostgresServer, for the folders this process joined


def _pgserver():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RuntimeDirWarning when XDG_RUNTIME_DIR is unset
        import pgserver
        from pgserver.postgres_server import PostgresServer
    return pgserver, PostgresServer


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # a zombie has died, only not been reaped
    except psutil.Error:
        return False


def _handles(pgdata: Path):
    from pgserver.utils import DiskList

    return DiskList(pgdata / HANDLES_FILE)


def _forget_dead_handles(pgdata: Path) -> list[int]:
    """Drop the pids of processes that died without leaving (and this process's own); the others. Call it
    holding pgserver's inter-process lock, which every change of the list is made under."""
    handles = _handles(pgdata)
    others = [pid for pid in handles.get() if pid != os.getpid() and _running(pid)]
    handles.put(others)
    return others


def url(pgdata: Path) -> str:
    """Start the server of `pgdata`, or join the one running there (a crashed process's included); its URL."""
    pgserver, server_class = _pgserver()
    pgdata = pgdata.resolve()
    server = _servers.get(pgdata)
    if server is None:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        if (pgdata / HANDLES_FILE).exists():
            with server_class._lock:
                _forget_dead_handles(pgdata)
        # pgserver adopts a server that runs (postmaster.pid names a live process) and starts one otherwise.
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        atexit.unregister(server._cleanup)  # `leave` replaces it: it also counts out processes that died
        if not _servers:
            atexit.register(leave_all)  # a normal exit without `stopped_on_exit` (tests, library use)
        _servers[pgdata] = server
    return server.get_uri()


def leave(pgdata: Path) -> None:
    """This process stops using the server of `pgdata`; stop the server if no other live process uses it."""
    server = _servers.pop(pgdata, None)
    if server is None:
        return
    _, server_class = _pgserver()
    with server_class._lock:  # no other process joins or leaves meanwhile
        server_class._instances.pop(pgdata, None)
        if _forget_dead_handles(pgdata):
            return
        logger.info("stopping the embedded PostgreSQL in %s", pgdata)
        _stop(pgdata, server.system_user)


def _stop(pgdata: Path, system_user: str | None) -> None:
    from pgserver import pg_ctl
    from pgserver.utils import PostmasterInfo

    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=system_user, timeout=STOP_SECONDS)
        return
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        pass
    # Run as root, pg_ctl runs as pgserver's system user, and fails if that user lost its way to the folder
    # meanwhile (a parent folder's mode changed). Then signal the postmaster ourselves, as pg_ctl would have:
    # SIGINT is PostgreSQL's fast shutdown.
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
        if info is None or not info.is_running() or info.process.name() != "postgres":
            return  # stopped already (a stale postmaster.pid may name another process since)
        info.process.send_signal(signal.SIGINT)
        info.process.wait(STOP_SECONDS)
    except psutil.NoSuchProcess:
        pass  # it stopped meanwhile
    except (psutil.Error, OSError, AssertionError, ValueError) as error:  # pgserver asserts the file's shape
        logger.warning("could not stop the embedded PostgreSQL in %s: %r", pgdata, error)


def leave_all() -> None:
    for pgdata in list(_servers):
        leave(pgdata)


class Terminated(SystemExit):
    """SIGTERM, raised as an exception so that `finally` blocks (the server's stop) run."""


@contextmanager
def stopped_on_exit() -> Iterator[None]:
    """Run a command; then leave the embedded servers it joined, also when SIGINT or SIGTERM ended it.

    A SIGTERM that ends the command ends the process by SIGTERM after the stop, as it would have without us
    (systemd and docker count that as a clean stop)."""
    before = set(_servers)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: make forwards SIGTERM to its child a second time
        raise Terminated(128 + signum)

    if main_thread:
        signal.signal(signal.SIGTERM, on_sigterm)
    terminated = False
    try:
        yield
    except Terminated:
        terminated = True
    finally:
        if main_thread:  # a second Ctrl-C or SIGTERM must not cut the stop short (pg_ctl inherits this too)
            signals = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for pgdata in set(_servers) - before:
                leave(pgdata)
        finally:
            if main_thread:
                signals[signal.SIGTERM] = previous
                for sig, handler in signals.items():
                    signal.signal(sig, handler)
    if terminated:
        if previous in (signal.SIG_DFL, None):
            with suppress(OSError):
                os.kill(os.getpid(), signal.SIGTERM)  # the default action: the process ends here
        raise SystemExit(128 + signal.SIGTERM)
