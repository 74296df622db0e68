"""GET /metrics: Prometheus text that parses, with every family the operators rely on."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from billing_api.app import create_app
from billing_api.automation.jobs import run_stage
from billing_api.config import ConfigurationError
from billing_api.db import make_sessionmaker
from billing_api.mail import repository as mail_repository
from billing_api.models import AutomationStage
from tests.helpers import assert_problem

ROOT = Path(__file__).resolve().parents[2]


def families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample(found: dict, family: str, name: str, **labels: str) -> float:
    values = [s.value for s in found[family].samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(values) == 1, (family, name, labels, found[family].samples)
    return values[0]


async def scrape(http: httpx.AsyncClient) -> dict:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return families(response.text)


async def test_metrics_count_requests_by_route_template_and_read_pool_outbox_and_stages(live, live_engine,
                                                                                       settings):
    http, factory = live
    company = await factory.company()
    user = await factory.user(company)
    await factory.session.commit()
    before = await scrape(http)
    missing = f"/v1/bills/{uuid.uuid4()}"
    assert (await http.get(missing, headers=factory.headers(user))).status_code == 404
    assert (await http.get(missing, headers=factory.headers(user))).status_code == 404

    async with make_sessionmaker(live_engine)() as session, session.begin():
        mail_repository.add(session, template="invitation", to_address="ops@example.org", context={})
    async with make_sessionmaker(live_engine)() as session, session.begin():
        await run_stage(session, company.id, date(2026, 11, 20), AutomationStage.bills, settings=settings)

    after = await scrape(http)
    route = {"method": "GET", "route": "/v1/bills/{bill_id}", "status": "404"}
    counted = sample(after, "billing_api_http_requests", "billing_api_http_requests_total", **route)
    assert counted - _or_zero(before, "billing_api_http_requests_total", route) == 2
    assert sample(after, "billing_api_http_request_duration_seconds",
                  "billing_api_http_request_duration_seconds_count", **route) >= 2
    assert not any(missing in str(s.labels) for f in after.values() for s in f.samples)  # templates, not paths
    assert sample(after, "billing_api_db_pool_size", "billing_api_db_pool_size") == live_engine.pool.size()
    assert sample(after, "billing_api_db_pool_checked_out", "billing_api_db_pool_checked_out") >= 0
    assert sample(after, "billing_api_db_pool_overflow", "billing_api_db_pool_overflow") >= 0
    queued = sample(after, "billing_api_outbox_queued_messages", "billing_api_outbox_queued_messages")
    assert queued - sample(before, "billing_api_outbox_queued_messages", "billing_api_outbox_queued_messages") == 1
    assert sample(after, "billing_api_outbox_up", "billing_api_outbox_up") == 1
    assert sample(after, "billing_api_automation_stage_duration_seconds",
                  "billing_api_automation_stage_duration_seconds_count", stage="bills", outcome="completed") >= 1


def _or_zero(found: dict, name: str, labels: dict) -> float:
    return sum(s.value for f in found.values() for s in f.samples
               if s.name == name and labels.items() <= s.labels.items())


async def test_a_metrics_token_when_configured_guards_the_scrape(settings, sessionmaker):
    app = create_app(settings.model_copy(update={"metrics_token": "scrape-secret"}))
    app.state.sessionmaker = sessionmaker
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert_problem(await http.get("/metrics"), 401, "unauthenticated")
        assert_problem(await http.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401)
        allowed = await http.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
        assert allowed.status_code == 200 and "billing_api_http_requests_total" in allowed.text


async def test_metrics_are_not_part_of_the_api_contract(shared_app):
    assert "/metrics" not in shared_app.openapi()["paths"]


def _production(settings, **changes):
    return settings.model_copy(update={"env": "production", "database_url": "postgresql://db.example.org/billing",
                                       "jwt_secret": "production-secret-" + "x" * 40, **changes})


@pytest.mark.parametrize("token", [None, ""])
def test_production_refuses_to_serve_with_open_metrics(settings, token):
    with pytest.raises(ConfigurationError, match="BILLING_API_METRICS_TOKEN") as refused:
        create_app(_production(settings, metrics_token=token))
    assert "\n" not in str(refused.value)
    _production(settings, metrics_token=token).check_production()  # the worker and the CLI serve no metrics
    for env in ("development", "test"):  # open there, as before
        create_app(_production(settings, metrics_token=token, env=env))


async def test_production_with_a_metrics_token_serves_them_to_its_bearer_only(settings, sessionmaker):
    app = create_app(_production(settings, metrics_token="scrape-secret"))
    app.state.sessionmaker = sessionmaker
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert_problem(await http.get("/metrics"), 401, "unauthenticated")
        allowed = await http.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
        assert allowed.status_code == 200 and "billing_api_http_requests_total" in allowed.text


def test_billing_api_serve_in_production_without_a_metrics_token_stops_with_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "BILLING_API_ENV": "production",
           "BILLING_API_DATABASE_URL": "postgresql://db.example.org/billing",
           "BILLING_API_JWT_SECRET": "production-secret-" + "x" * 40}
    env.pop("BILLING_API_METRICS_TOKEN", None)
    done = subprocess.run([sys.executable, "-m", "billing_api", "serve", "--port", "1"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert done.stderr.strip() == ("billing-api: BILLING_API_ENV=production needs BILLING_API_METRICS_TOKEN "
                                   "to be set.")
