"""A customer chats in the embedded widget, then an advisor answers from the advisor page.

Both pages run live over their WebSockets (no polling request is made); a second test
takes the WebSocket away from the browser and checks the polling fallback.

Drives Debian's Chromium with Playwright against a real Uvicorn server on loopback, with an
assistant built on the fake embedder (no model). CI installs Chromium (.ci/run) and the test
must run there; elsewhere it is skipped when Chromium is missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from pydantic import SecretStr

from allo.assistant.session import build_assistant
from allo.config import Settings
from allo.knowledge.service import KnowledgeBase
from allo.web.app import create_app
from tests.acceptance.browser import BROWSER_REQUIRED, launch_chromium, running_server

pytestmark = BROWSER_REQUIRED

ADVISOR_TOKEN = "jeton-de-test-conseiller"
XSS = "<img src=x onerror=alert(1)>"
ADVISOR_REPLY = "Bonjour, ici Julie : je vérifie votre raccordement."
TIMEOUT_MS = 15_000  # polling every 1.5 s, on a loaded CI machine
NO_WEBSOCKET = "delete window.WebSocket;"


def _polls(page: Any) -> list[str]:
    """The URLs of the widget's polling requests (GET of a conversation), as they happen."""
    seen: list[str] = []
    page.on(
        "request",
        lambda r: (
            seen.append(r.url)
            if r.method == "GET" and "/v1/conversations/" in r.url and "after=" in r.url
            else None
        ),
    )
    return seen


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    settings = settings.model_copy(update={"advisor_token": SecretStr(ADVISOR_TOKEN)})
    kb = KnowledgeBase(settings)
    kb.load_demo()
    app = create_app(settings, kb)
    app.state.assistant = build_assistant(kb)  # fake embedder: the classifier trains in seconds
    with running_server(app) as url:
        yield url
    app.state.assistant.close()


def test_tutorial_then_handoff_to_an_advisor(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        dialogs: list[str] = []
        customer = browser.new_context().new_page()
        customer.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        polls = _polls(customer)
        customer.goto(server + "/chat")
        assert customer.locator("html").get_attribute("lang") == "fr"

        # The one script tag injected the button; the panel opens on click.
        launcher = customer.locator(".allo-w-launcher")
        expect(launcher).to_have_text("Une question ?")
        launcher.click()
        expect(customer.locator(".allo-w-panel")).to_be_visible()

        # A typed message starts the Livebox installation tutorial.
        customer.fill(".allo-w-input", "Comment installer ma nouvelle Livebox ?")
        customer.click(".allo-w-send")
        replies = customer.locator(".allo-w-quick .allo-w-reply")
        expect(
            customer.locator(".allo-w-bot").filter(has_text="Installons ensemble")
        ).to_be_visible(timeout=TIMEOUT_MS)
        # The tutorial's picture of the box label, served by the API, with its alt text.
        picture = customer.locator(".allo-w-log img.allo-w-img")
        expect(picture).to_have_count(1)
        expect(picture).to_have_attribute("alt", re.compile("Installons ensemble"))
        customer.wait_for_function(
            "() => document.querySelector('img.allo-w-img').naturalWidth > 0", timeout=TIMEOUT_MS
        )
        # Completed through the quick-reply buttons.
        for label in ("Oui, tout y est", "Fibre", "Blanc fixe"):
            button = replies.filter(has_text=label)
            expect(button).to_be_visible(timeout=TIMEOUT_MS)
            button.click()
        expect(
            customer.locator(".allo-w-bot").filter(has_text="Votre Livebox 6 est installée")
        ).to_be_visible(timeout=TIMEOUT_MS)
        expect(replies).to_have_count(0)
        expect(customer.locator(".allo-w-typing")).to_be_hidden()
        expect(customer.locator(".allo-w-customer").filter(has_text="Blanc fixe")).to_be_visible()

        # Then asks for a human; while waiting, sends markup, which is shown as text.
        customer.fill(".allo-w-input", "Je voudrais parler à un conseiller")
        customer.click(".allo-w-send")
        expect(customer.locator(".allo-w-note").filter(has_text="Un conseiller")).to_be_visible(
            timeout=TIMEOUT_MS
        )
        customer.fill(".allo-w-input", XSS)
        customer.click(".allo-w-send")
        expect(customer.locator(".allo-w-customer .allo-w-text").last).to_have_text(XSS)
        expect(customer.locator(".allo-w-typing")).to_be_hidden(timeout=TIMEOUT_MS)
        assert customer.locator(".allo-w-log img:not(.allo-w-img)").count() == 0

        # An advisor, in another browser context, signs in, takes it and replies.
        advisor = browser.new_context().new_page()
        advisor.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        advisor.goto(server + "/advisor")
        advisor.fill("#advisor-token", ADVISOR_TOKEN)
        advisor.fill("#advisor-name", "Julie")
        advisor.click("#login-button")
        item = advisor.locator(".queue-item").filter(has_text="installer ma nouvelle Livebox")
        expect(item).to_be_visible(timeout=TIMEOUT_MS)
        expect(item).to_contain_text("demande explicite")
        expect(item).to_contain_text(XSS)  # the last customer message, as text
        item.locator("button.take").click()
        expect(advisor.locator("#summary")).to_contain_text("installation_livebox")
        expect(advisor.locator("#turns .turn-customer").last).to_contain_text(XSS)
        assert advisor.locator("#turns img").count() == 0
        expect(
            advisor.locator("#turns .turn-customer").filter(has_text="Blanc fixe")
        ).to_have_count(1)
        # Typing shows the customer that the advisor is writing, live.
        advisor.locator("#reply-text").press_sequentially("Bonjour", delay=50)
        expect(customer.locator(".allo-w-typing")).to_be_visible(timeout=TIMEOUT_MS)
        advisor.fill("#reply-text", ADVISOR_REPLY)
        advisor.click("#reply-button")
        expect(advisor.locator("#turns .turn-advisor").last).to_contain_text(ADVISOR_REPLY)

        # The customer's widget receives the reply over its socket, without polling.
        message = customer.locator(".allo-w-advisor .allo-w-text")
        expect(message).to_have_text(ADVISOR_REPLY, timeout=TIMEOUT_MS)
        expect(customer.locator(".allo-w-typing")).to_be_hidden()
        assert polls == []

        # The customer answers; the advisor's page shows it live, without polling either.
        advisor_polls: list[str] = []
        advisor.on("request", lambda r: advisor_polls.append(r.url) if r.method == "GET" else None)
        customer.fill(".allo-w-input", "Merci Julie")
        customer.click(".allo-w-send")
        expect(advisor.locator("#turns .turn-customer").last).to_contain_text("Merci Julie")
        assert advisor_polls == []

        # A reload resumes the same conversation from sessionStorage.
        customer.reload()
        customer.locator(".allo-w-launcher").click()
        expect(message).to_have_text(ADVISOR_REPLY, timeout=TIMEOUT_MS)
        expect(
            customer.locator(".allo-w-customer .allo-w-text").filter(has_text=XSS)
        ).to_have_count(1)
        # Past button choices show their labels, not the payloads stored for them.
        expect(
            customer.locator(".allo-w-customer .allo-w-text").filter(has_text="Blanc fixe")
        ).to_have_count(1)
        assert customer.locator(".allo-w-customer .allo-w-text", has_text="blanc_fixe").count() == 0
        assert customer.locator(".allo-w-log img:not(.allo-w-img)").count() == 0

        assert dialogs == []  # the markup was shown as text on both pages, never run
        browser.close()


def test_polling_when_the_browser_has_no_websocket(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context()
        context.add_init_script(NO_WEBSOCKET)
        customer = context.new_page()
        polls = _polls(customer)
        customer.goto(server + "/chat")
        customer.locator(".allo-w-launcher").click()
        customer.fill(".allo-w-input", "Je voudrais parler à un conseiller")
        customer.click(".allo-w-send")
        expect(customer.locator(".allo-w-note").filter(has_text="Un conseiller")).to_be_visible(
            timeout=TIMEOUT_MS
        )
        conversation = customer.evaluate(
            "() => JSON.parse(sessionStorage.getItem('allo.widget.conversation')).id"
        )
        headers = {"X-Advisor-Token": ADVISOR_TOKEN, "X-Advisor-Name": "Paul"}
        with httpx.Client(base_url=server, headers=headers) as api:
            assert api.post(f"/v1/advisor/conversations/{conversation}/take").is_success
            said = api.post(
                f"/v1/advisor/conversations/{conversation}/messages", json={"text": "Ici Paul."}
            )
            assert said.is_success
        expect(customer.locator(".allo-w-advisor .allo-w-text")).to_have_text(
            "Ici Paul.", timeout=TIMEOUT_MS
        )
        assert polls  # the reply came by polling
        browser.close()
