"""`billing-api serve` with two workers, for real: JSON log lines on stderr, and metrics summed over the workers."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import wait_until_answering
from tests.support.smtp import free_port

ROOT = Path(__file__).resolve().parents[2]


def serve_env(live_engine, tmp_path: Path, log_level: str) -> dict[str, str]:
    """`billing-api serve` on the run's already migrated database (real commits), with no mail sender."""
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "BILLING_API_MAIL_SENDER_ENABLED": "false",
            "BILLING_API_DATABASE_URL": live_engine.url.render_as_string(hide_password=False),
            "BILLING_API_JWT_SECRET": "serve-test-" + "x" * 40, "BILLING_API_LOG_LEVEL": log_level,
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}


async def test_serve_with_two_workers_logs_json_lines_and_sums_metrics_over_workers(live_engine, tmp_path):
    # The run's already migrated database for real commits; these requests write nothing, and no mail sender runs.
    port = free_port()
    env = serve_env(live_engine, tmp_path, "info")
    stderr = tmp_path / "stderr.log"
    with stderr.open("w") as err:
        process = subprocess.Popen([sys.executable, "-m", "billing_api", "serve", "--port", str(port),
                                    "--workers", "2", "--log-format", "json"], env=env, cwd=tmp_path,
                                   stdout=subprocess.DEVNULL, stderr=err)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            await wait_until_answering(http, "/readyz", stderr.read_text)
            requests = 40
            answers = await asyncio.gather(*(http.get("/v1/me", headers={"X-Request-ID": f"serve-{n}"})
                                             for n in range(requests)))
            assert {a.status_code for a in answers} == {401}
            assert {a.headers["x-request-id"] for a in answers} == {f"serve-{n}" for n in range(requests)}
            scraped = (await http.get("/metrics")).text
    finally:
        process.terminate()
        process.wait(timeout=60)

    counted = [s.value for f in text_string_to_metric_families(scraped) for s in f.samples
               if s.name == "billing_api_http_requests_total" and s.labels["route"] == "/v1/me"]
    assert counted == [requests]  # every worker's requests, whichever answered the scrape
    lines = [json.loads(line) for line in stderr.read_text().splitlines() if line.strip()]  # every line is JSON
    access = [line for line in lines if line["logger"] == "billing_api.access" and line["route"] == "/v1/me"]
    assert sorted(line["request_id"] for line in access) == sorted(f"serve-{n}" for n in range(requests))
    assert all(line["status"] == 401 and line["method"] == "GET" for line in access)
    assert len({line["logger"] for line in lines} & {"uvicorn.error"}) == 1  # uvicorn's own lines, same format
