"""An operator signs in to the NOC console, sees an incident arrive live and acknowledges it.

The console reads the Server-Sent Events stream with ``fetch`` (the operator token goes in
a header, never in a URL), so this checks the live path end to end: an alarm posted by a
source with its own secret shows up without a reload. Drives Debian's Chromium with
Playwright against a real Uvicorn server on loopback; skipped where Chromium is missing
outside CI, like the other browser tests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from pydantic import SecretStr

from allo.config import PersonalSecret, Settings
from allo.web.app import create_app
from tests.acceptance.browser import BROWSER_REQUIRED, launch_chromium, running_server

pytestmark = BROWSER_REQUIRED

OPERATOR_TOKEN = "jeton-operateur-noc-navigateur"
NINA_TOKEN = "jeton-personnel-de-nina-au-noc"
INGEST_TOKEN = "jeton-source-alarmes-navigateur"
XSS_DEVICE = "<img src=x onerror=alert(1)>"
TIMEOUT_MS = 15_000


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    settings = settings.model_copy(
        update={
            "noc_token": SecretStr(OPERATOR_TOKEN),
            "noc_ingest_token": SecretStr(INGEST_TOKEN),
            "noc_operators": [PersonalSecret(token=SecretStr(NINA_TOKEN), name="nina")],
        }
    )
    with running_server(create_app(settings)) as url:
        yield url


def _requests(page: Any) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    return seen


def test_operator_sees_a_live_incident_and_acknowledges_it(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_context().new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        urls = _requests(page)
        page.goto(server + "/noc")

        # Not signed in: the login form, no data.
        expect(page.locator("#noc-login")).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.locator("#noc-desk")).to_be_hidden()

        # A wrong token is refused and the form comes back.
        page.fill("#noc-token", "pas-le-bon-jeton")
        page.click("#noc-login button[type=submit]")
        expect(page.locator("#status")).to_contain_text("Jeton refusé", timeout=TIMEOUT_MS)
        expect(page.locator("#noc-login")).to_be_visible()

        # Nina signs in with her own secret: the console names her, asks no author.
        page.fill("#noc-token", NINA_TOKEN)
        page.click("#noc-login button[type=submit]")
        expect(page.locator("#live")).to_have_text("en direct", timeout=TIMEOUT_MS)
        expect(page.locator("#operator")).to_have_text(
            "Connecté en tant que nina", timeout=TIMEOUT_MS
        )
        expect(page.locator('#silence-form input[name="created_by"]')).to_be_hidden()

        # A source posts an alarm with its own secret; the incident appears live.
        alarm = {
            "id": "nav-1",
            "device": XSS_DEVICE,
            "alarm_type": "LinkDown",
            "severity": "major",
            "raised_at": time.time(),
        }
        sent = httpx.post(
            server + "/v1/alarms",
            json=alarm,
            headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
            timeout=30,
        )
        assert sent.status_code == 200 and sent.json()["accepted"] == 1
        row = page.locator("#incident-rows tr.incident").first
        expect(row).to_contain_text("LinkDown sur " + XSS_DEVICE, timeout=TIMEOUT_MS)

        # Acknowledge from the console; the server has it.
        # The list shows new incidents by default: the acknowledged one leaves it, and
        # appears under the "acquittés" filter.
        row.get_by_role("button", name="Acquitter").click()
        expect(page.locator("#incident-rows tr.incident")).to_have_count(0, timeout=TIMEOUT_MS)
        page.select_option("#filters select[name=status]", "acknowledged")
        page.click("#filters button[type=submit]")
        expect(page.locator("#incident-rows tr.incident").first).to_contain_text(
            "acquitté", timeout=TIMEOUT_MS
        )
        incidents = httpx.get(
            server + "/v1/incidents", headers={"X-NOC-Token": OPERATOR_TOKEN}, timeout=30
        ).json()
        assert [item["status"] for item in incidents["items"]] == ["acknowledged"]
        detail = httpx.get(
            server + "/v1/incidents/" + incidents["items"][0]["id"],
            headers={"X-NOC-Token": OPERATOR_TOKEN},
            timeout=30,
        ).json()
        assert detail["acknowledged_by"] == "nina"  # recorded by the server, not typed

        # Signing out forgets the token and stops the stream.
        page.click("#noc-logout")
        expect(page.locator("#noc-login")).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('allo.noc.token')") is None
        browser.close()

    assert dialogs == []  # the device name was shown as text, never run
    secrets = (OPERATOR_TOKEN, NINA_TOKEN, INGEST_TOKEN)
    assert not [u for u in urls if any(s in u for s in secrets)]  # no token in a URL
