"""The `billing-api` command line and the demo data set."""

import asyncio
import json
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from sqlalchemy import func, select

from billing_api import cli
from billing_api.demo import DEMO_LOGINS, DEMO_PASSWORD, load_demo
from billing_api.models import AccountType, Company, Group, User

ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ["serve", "migrate", "worker", "openapi", "demo", "create-company", "create-user", "verify-audit"]


def test_the_parser_offers_every_subcommand():
    parser = cli.build_parser()
    (commands,) = [action for action in parser._actions if action.dest == "command"]
    assert set(commands.choices) == set(SUBCOMMANDS)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_of_every_subcommand(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: billing-api {command}")
    assert len(out.splitlines()) > 3


def test_the_help_says_what_the_worker_runs(capsys):
    # The worker runs the nightly automation and housekeeping besides the mail sender.
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--help"])
    listing = " ".join(capsys.readouterr().out.split())
    summary = listing.split(" worker ", 1)[1].split(" openapi ", 1)[0]  # the line of `worker` in the command list
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["worker", "--help"])
    description = " ".join(capsys.readouterr().out.split())
    for text in (summary, description):
        assert "mail" in text and "nightly billing automation" in text and "housekeeping" in text, text


def test_the_console_script_is_installed_and_points_at_main():
    (script,) = entry_points(group="console_scripts", name="billing-api")
    assert script.load() is cli.main
    assert Path(sys.executable).with_name("billing-api").exists()


def test_openapi_command_writes_the_document(tmp_path, capsys):
    target = tmp_path / "contract.json"
    cli.main(["openapi", "--output", str(target)])
    spec = json.loads(target.read_text())
    assert spec["info"]["title"] == "billing-api"
    assert {"/v1/auth/token", "/v1/users", "/v1/groups/{group_id}/members", "/v1/profiles/me"} <= set(spec["paths"])
    assert str(target) in capsys.readouterr().out


def test_no_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args([])
    assert exit_.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


async def test_demo_loader_is_idempotent(session, settings, client):
    first = await load_demo(session, settings)
    users_after_first = (await session.execute(select(func.count()).select_from(User))).scalar_one()
    companies_after_first = (await session.execute(select(func.count()).select_from(Company))).scalar_one()
    second = await load_demo(session, settings)
    assert first == second == DEMO_LOGINS
    assert (await session.execute(select(func.count()).select_from(User))).scalar_one() == users_after_first
    assert (await session.execute(select(func.count()).select_from(Company))).scalar_one() == companies_after_first

    usernames = [login.username for login in DEMO_LOGINS]
    users = {u.username: u for u in (await session.execute(select(User).where(User.username.in_(usernames))))
             .scalars()}
    assert set(users) == set(usernames)  # each demo user exactly once
    assert {"barney", "betty", "support"} <= set(users)
    assert users["betty"].account_type == AccountType.company_admin
    assert users["barney"].account_type == AccountType.standard
    assert users["support"].account_type == AccountType.support

    west = (await session.execute(select(Company).where(Company.name == "West EMS Transport"))).scalar_one()
    children = (await session.execute(select(Company.name).where(Company.parent_id == west.id))).scalars().all()
    assert len(children) == 4
    assert users["betty"].company_id == west.id and users["barney"].company_id == west.id
    biller = (await session.execute(select(Group).where(Group.company_id == west.id, Group.name == "Biller")))
    assert biller.scalar_one().permissions

    # The printed logins work, and Betty reaches West EMS Transport's children (the EMS seed's story).
    login = await client.post("/v1/auth/token", data={"username": "betty", "password": DEMO_PASSWORD})
    assert login.status_code == 200, login.text
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert len(me.json()["reachable_companies"]) == 5


@pytest.mark.parametrize(("name", "time_zone", "message"), [
    ("Clinic", "Mars/Olympus_Mons", "unknown IANA time zone"),
    (" ", "UTC", "pattern"),
])
def test_create_company_refuses_what_the_api_refuses(settings, name, time_zone, message):
    arguments = cli.build_parser().parse_args(["create-company", "--name", name, "--time-zone", time_zone])
    with pytest.raises(SystemExit) as exit_:
        cli.cmd_create_company(arguments, settings)
    assert message in str(exit_.value.code)


async def test_create_company_under_a_child_is_a_message_not_a_traceback(live, settings):
    _, factory = live
    parent = await factory.company(name="Parent for the CLI")
    child = await factory.company(name="Child for the CLI", parent=parent)
    await factory.session.commit()
    url = factory.session.bind.engine.url.render_as_string(hide_password=False)
    arguments = cli.build_parser().parse_args(["create-company", "--name", "Grandchild", "--parent-id", str(child.id)])
    with pytest.raises(SystemExit) as exit_:
        await asyncio.to_thread(cli.cmd_create_company, arguments, settings.model_copy(update={"database_url": url}))
    assert "Child for the CLI is a child company" in str(exit_.value.code)
