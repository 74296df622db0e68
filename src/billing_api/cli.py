"""`billing-api`: serve | migrate | worker | openapi | demo | create-company | create-user | verify-audit."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import json
import os
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api import embedded_postgres
from billing_api.config import ConfigurationError, Settings, get_settings
from billing_api.db import make_engine, make_sessionmaker, resolve_database_url

T = TypeVar("T")

DEFAULT_OPENAPI_PATH = Path("openapi/openapi.json")
# uvicorn restarts a worker that does not answer its supervisor within this time; its default (5 s) is shorter
# than a worker's start on a busy machine, which then restarts workers forever.
WORKER_HEALTHCHECK_SECONDS = 60
# How long an idle keep-alive connection stays open. uvicorn's default (5 s) equals httpx's and many clients'
# own idle expiry, so a client can send on a connection in the instant the server closes it (ReadError at the
# client; bench/load.py saw it at 128 clients). Longer than the client's, and than a load balancer's usual 60 s
# idle timeout, so the client or the balancer is always the side that closes.
KEEP_ALIVE_SECONDS = 65


def openapi_document() -> str:
    from billing_api.app import create_app

    return json.dumps(create_app(Settings(env="development")).openapi(), indent=2, sort_keys=False) + "\n"


async def _in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrate, then run `work` in one transaction."""
    from billing_api.migrations_runner import upgrade

    url = resolve_database_url(settings)
    await upgrade(url)
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    from billing_api.migrations_runner import upgrade

    asyncio.run(upgrade(resolve_database_url(settings)))
    print("database is at the latest migration")


def cmd_openapi(args: argparse.Namespace, settings: Settings) -> None:
    document = openapi_document()
    if args.output == "-":
        sys.stdout.write(document)
        return
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document)
    print(f"wrote {path}")


def _print_demo_logins(logins) -> None:
    from billing_api.demo import DEMO_PASSWORD

    print(f"demo logins (password for all: {DEMO_PASSWORD}):")
    for login in logins:
        print(f"  {login.username:<16} {login.role}")


def cmd_demo(args: argparse.Namespace, settings: Settings) -> None:
    from billing_api.demo import load_demo

    logins = asyncio.run(_in_session(settings, lambda session: load_demo(session, settings)))
    _print_demo_logins(logins)


def cmd_create_company(args: argparse.Namespace, settings: Settings) -> None:
    from pydantic import TypeAdapter, ValidationError

    from billing_api.companies import repository
    from billing_api.companies.schemas import CompanyName, TimeZone
    from billing_api.identity.bootstrap import ensure_company

    try:  # the API's own rules for a name and an IANA zone (the nightly run reads the zone)
        TypeAdapter(CompanyName).validate_python(args.name)
        TypeAdapter(TimeZone).validate_python(args.time_zone)
    except ValidationError as error:
        raise SystemExit("; ".join(problem["msg"] for problem in error.errors())) from None

    async def work(session: AsyncSession) -> str:
        parent = await repository.get_company(session, args.parent_id) if args.parent_id else None
        if args.parent_id and parent is None:
            raise SystemExit(f"no company with id {args.parent_id}")
        if parent is not None and parent.parent_id is not None:
            raise SystemExit(f"{parent.name} is a child company and cannot have children (one level only)")
        company = await ensure_company(session, args.name, time_zone=args.time_zone, parent=parent)
        return str(company.id)

    print(asyncio.run(_in_session(settings, work)))


def cmd_create_user(args: argparse.Namespace, settings: Settings) -> None:
    from billing_api.auth.passwords import check_new_password
    from billing_api.companies import repository
    from billing_api.errors import Unprocessable
    from billing_api.identity.bootstrap import ensure_user
    from billing_api.models import AccountType

    password = os.environ.get("BILLING_API_NEW_USER_PASSWORD") or getpass.getpass("password for the new user: ")
    try:
        check_new_password(password, args.username, args.email)
    except Unprocessable as error:
        raise SystemExit(error.detail) from None

    async def work(session: AsyncSession) -> str:
        company = await repository.get_company(session, args.company_id)
        if company is None:
            raise SystemExit(f"no company with id {args.company_id}")
        user = await ensure_user(
            session, settings, company, args.username, display_name=args.display_name or args.username,
            password=password, email=args.email, account_type=AccountType(args.account_type),
            billing_number=args.billing_number, permissions=args.permission,
        )
        return str(user.id)

    print(asyncio.run(_in_session(settings, work)))


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    from billing_api.migrations_runner import upgrade
    from billing_api.observability import logs

    settings.check_production(serving=True)  # one line now, rather than a traceback from each worker
    url = resolve_database_url(settings)
    asyncio.run(upgrade(url))
    if args.demo:
        from billing_api.demo import load_demo

        _print_demo_logins(asyncio.run(_in_session(settings, lambda session: load_demo(session, settings))))
        _catch_demo_mail(settings)
    # Workers read the resolved URL and secret, so they share this process's embedded server and tokens.
    os.environ["BILLING_API_DATABASE_URL"] = url
    os.environ["BILLING_API_JWT_SECRET"] = settings.resolved_jwt_secret()
    if args.log_format:
        os.environ["BILLING_API_LOG_FORMAT"] = settings.log_format = args.log_format
    if args.log_level:
        os.environ["BILLING_API_LOG_LEVEL"] = settings.log_level = args.log_level
    if args.workers > 1:
        _share_metrics_between_workers()
    shown_host = "localhost" if args.host in ("0.0.0.0", "127.0.0.1") else args.host
    print(f"billing-api docs: http://{shown_host}:{args.port}/docs", flush=True)
    # Our middleware writes one access line per request (with the request id), so uvicorn's own is off.
    uvicorn.run("billing_api.app:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_config=logs.logging_config(settings), access_log=False,
                proxy_headers=True, timeout_keep_alive=KEEP_ALIVE_SECONDS,
                timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
                # h11, not httptools: httptools buffers a header of any size (header_limit.py).
                http="billing_api.header_limit:HeadLimitedH11Protocol",
                h11_max_incomplete_event_size=settings.max_request_head_bytes)


def _catch_demo_mail(settings: Settings) -> None:
    """The demo keeps its mail in the data folder (mail/catcher.py), unless a mail server is configured."""
    if "smtp_host" in settings.model_fields_set:
        return
    from billing_api.mail import catcher

    folder = (settings.data_dir / "mail").resolve()
    _, port = catcher.start(folder)
    # Every worker process's mail sender reads these, as it reads the database URL.
    os.environ |= {"BILLING_API_SMTP_HOST": catcher.HOST, "BILLING_API_SMTP_PORT": str(port),
                   "BILLING_API_SMTP_STARTTLS": "false", "BILLING_API_SMTP_USE_TLS": "false"}
    settings.smtp_host, settings.smtp_port = catcher.HOST, port
    settings.smtp_starttls = settings.smtp_use_tls = False
    print(f"demo mail is not sent: each message is written to {folder}/ as a .eml file", flush=True)


def _share_metrics_between_workers() -> None:
    """prometheus-client's multiprocess mode: each worker writes its samples under PROMETHEUS_MULTIPROC_DIR and
    a scrape of any worker sums them. The folder must start empty (a fresh one per start, unless given)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        for stale in Path(folder).glob("*.db"):
            stale.unlink()
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="billing-api-metrics-")


def cmd_worker(args: argparse.Namespace, settings: Settings) -> None:
    from billing_api.worker import main as worker_main

    worker_main(settings)


def cmd_verify_audit(args: argparse.Namespace, settings: Settings) -> None:
    from billing_api.access_log.repository import verify_chains

    reports = asyncio.run(_in_session(settings, verify_chains))
    for report in reports:
        print(json.dumps({"table": report.table, "ok": report.ok, "rows": report.rows,
                          "heads": [dataclasses.asdict(head) for head in report.heads],
                          "broken_chain": report.broken_chain, "broken_at": report.broken_at,
                          "problem": report.problem, "cuts": [dataclasses.asdict(cut) for cut in report.cuts],
                          "default_partition_rows": report.default_partition_rows}))
    if not all(report.ok for report in reports):
        raise SystemExit(1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="billing-api",
        description="Billing data access for medical and billing practices. Configuration: BILLING_API_* "
        "environment variables (see README). With no BILLING_API_DATABASE_URL an embedded PostgreSQL is "
        "started in BILLING_API_DATA_DIR (default ./.billing-api-data).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="apply migrations, then run the HTTP server",
                                description="Apply migrations, then serve the API with uvicorn.")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    serve.add_argument("--demo", action="store_true",
                       help="load the demo data set first (idempotent); unless BILLING_API_SMTP_HOST is set, mail is "
                       "not sent but written to the data folder's mail/")
    serve.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"],
                       help="default BILLING_API_LOG_LEVEL (info)")
    serve.add_argument("--log-format", choices=["json", "text"],
                       help="one JSON object per line, or text (default BILLING_API_LOG_FORMAT: json)")
    serve.set_defaults(func=cmd_serve)

    migrate = commands.add_parser("migrate", help="apply database migrations up to the latest",
                                  description="Apply the Alembic migrations up to head.")
    migrate.set_defaults(func=cmd_migrate)

    worker = commands.add_parser(
        "worker", help="run the background work until interrupted: mail, the nightly billing automation, "
        "housekeeping",
        description="Apply migrations, then run the background loops until SIGINT or SIGTERM: the outbox mail "
        "sender (SMTP settings: BILLING_API_SMTP_*), the nightly billing automation (bills, AutoPay, superbills, "
        "statements, delayed sharing; a Procrastinate worker) and the housekeeping of expired idempotency keys and "
        "failure counters. Run as many as you like; they share the work, and each night's run happens once.",
    )
    worker.set_defaults(func=cmd_worker)

    openapi = commands.add_parser("openapi", help="write the OpenAPI contract",
                                  description="Write the OpenAPI document (the contract) as JSON.")
    openapi.add_argument("--output", "-o", default=str(DEFAULT_OPENAPI_PATH),
                         help=f"file to write, or - for stdout (default {DEFAULT_OPENAPI_PATH})")
    openapi.set_defaults(func=cmd_openapi)

    demo = commands.add_parser("demo", help="load the demo data set (idempotent) and print its logins",
                               description="Load the demo companies, users and groups; print the logins.")
    demo.set_defaults(func=cmd_demo)

    company = commands.add_parser("create-company", help="create a company; prints its id",
                                  description="Create a company (top-level, or a child with --parent-id).")
    company.add_argument("--name", required=True)
    company.add_argument("--time-zone", default="UTC", help="IANA time zone (default UTC)")
    company.add_argument("--parent-id", type=uuid.UUID, help="make it a child of this company")
    company.set_defaults(func=cmd_create_company)

    verify = commands.add_parser(
        "verify-audit", help="verify the hash chains of the audit events and the access log",
        description="Walk the append-only hash chains of audit_event (one chain) and access_log (several); print "
        "one JSON line per table (rows, each chain's head to keep elsewhere, the first broken link; for the access "
        "log, the months the retention dropped, where its chains were cut, and the rows in its default partition) "
        "and exit 1 if any chain is broken.",
    )
    verify.set_defaults(func=cmd_verify_audit)

    user = commands.add_parser(
        "create-user", help="create a user; prints its id",
        description="Create a user. The password is read from BILLING_API_NEW_USER_PASSWORD or asked for.",
    )
    user.add_argument("--company-id", type=uuid.UUID, required=True)
    user.add_argument("--username", required=True)
    user.add_argument("--email")
    user.add_argument("--display-name")
    user.add_argument("--account-type", default="standard", choices=["standard", "company_admin", "support"])
    user.add_argument("--billing-number", help="makes the user a provider")
    user.add_argument("--permission", action="append", default=[], help="a permission to hold (repeatable)")
    user.set_defaults(func=cmd_create_user)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        with embedded_postgres.stopped_on_exit():  # the embedded server stops with us, also on SIGTERM
            args.func(args, get_settings())
    except ConfigurationError as error:
        raise SystemExit(f"billing-api: {error}") from None
