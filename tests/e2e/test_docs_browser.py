"""The docs page in a real browser (Debian's chromium, headless, driven by Playwright), offline.

Every request the page makes is routed through the test: anything not on this machine is blocked and recorded,
and the test fails if there was any. Then a clinic person's path: Authorize with a demo login (OAuth2 password
flow against POST /v1/auth/token), and Try it out / Execute GET /v1/me and GET /v1/bills.

Without /usr/bin/chromium the test skips; with BILLING_API_REQUIRE_BROWSER=1 (CI) it fails instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from billing_api.demo import DEMO_PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (Debian package `chromium`: `make browser` installs it)"
        if os.environ.get("BILLING_API_REQUIRE_BROWSER") == "1":
            pytest.fail(f"BILLING_API_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return CHROMIUM


async def execute(page, operation_id: str) -> tuple[str, str]:
    """Open an operation, Try it out, Execute; return the status and body the page shows."""
    operation = page.locator(f"[id$='-{operation_id}']").first  # id: operations-<tag>-<operationId>
    await operation.locator(".opblock-summary").first.click()
    await operation.locator("button.try-out__btn").click()
    await operation.locator("button.execute").click()
    response = operation.locator(".live-responses-table tbody tr.response")
    await response.wait_for()
    status = (await response.locator("td.response-col_status").inner_text()).strip()
    body = await response.locator("td.response-col_description .microlight").first.inner_text()
    return status, body


async def test_docs_page_works_offline_and_runs_requests_with_a_demo_login(live_service, chromium, tmp_path):
    from playwright.async_api import async_playwright

    outside: list[str] = []
    local: list[str] = []

    async def only_this_machine(route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOCAL_HOSTS:
            local.append(url)
            await route.continue_()
        else:
            outside.append(url)
            await route.abort("blockedbyclient")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(chromium), headless=True, args=FLAGS)
        try:
            await browser.route("**/*", only_this_machine)
            page = browser.pages[0] if browser.pages else await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(f"{live_service.base_url}/docs")
            await page.locator(".swagger-ui .info .title").filter(has_text="billing-api").wait_for()

            # Authorize: the OAuth2 password flow's form posts to the login operation.
            await page.locator(".scheme-container button.authorize").click()
            dialog = page.locator(".dialog-ux .modal-ux")
            await dialog.locator("#oauth_username").fill("dr.wu")
            await dialog.locator("#oauth_password").fill(DEMO_PASSWORD)
            await dialog.locator("button.authorize").click()
            await dialog.locator("button", has_text="Logout").wait_for()  # shown once a token came back
            await dialog.locator("button.btn-done").click()

            status, body = await execute(page, "get_me")
            assert status == "200", body
            assert '"username": "dr.wu"' in body

            status, body = await execute(page, "list_bills")
            assert status == "200", body
            assert '"items"' in body and '"provider_id"' in body  # Dr. Wu's demo bills (his own, whatever the clinic's segregation)
            await page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)
        finally:
            await browser.close()

    assert outside == [], f"the docs page reached beyond this machine: {outside}"
    assert any("/docs/static/swagger-ui-bundle.js" in url for url in local)
    assert any(url.endswith("/v1/auth/token") for url in local)
    assert errors == []
