"""A person asks a question in a real browser, reads a cited answer and opens its source.

Drives Debian's Chromium with Playwright against a real Uvicorn server on loopback. CI
installs Chromium (.ci/run) and the test must run there; elsewhere it is skipped when
Chromium is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from allo.config import Settings
from allo.knowledge.service import KnowledgeBase
from allo.web.app import create_app
from tests.acceptance.browser import BROWSER_REQUIRED, launch_chromium, running_server

pytestmark = BROWSER_REQUIRED

GUIDE = """---
title: Activer votre eSIM
---
# Activer votre eSIM

## Étapes

1. Ouvrez Réglages puis Données cellulaires.
2. Scannez le QR code reçu par e-mail.
3. Redémarrez le téléphone <script>alert("x")</script>.
"""


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[str]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "esim.md").write_text(GUIDE, encoding="utf-8")
    kb = KnowledgeBase(settings)
    kb.ingest([docs])
    with running_server(create_app(settings, kb)) as url:
        yield url


def test_ask_read_and_open_the_source(server: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(server + "/")
        assert page.locator("html").get_attribute("lang") == "fr"
        page.fill("#question", "Comment activer mon eSIM ?")
        page.click("#ask-button")
        page.wait_for_selector("#sources li a")
        answer = page.inner_text("#answer")
        assert "2. Scannez le QR code reçu par e-mail." in answer
        assert "[1]" in answer
        assert page.inner_text("#sources li a") == "Activer votre eSIM"
        page.click("#sources li a")
        page.wait_for_selector(".chunk.cited")
        assert "Scannez le QR code" in page.inner_text(".chunk.cited")
        assert dialogs == []  # the <script> in the document was shown as text, never run

        page.goto(server + "/")
        page.fill("#question", "Quelle est la recette de la blanquette de veau ?")
        page.click("#ask-button")
        page.wait_for_function("document.getElementById('answer').textContent.length > 0")
        assert "conseiller" in page.inner_text("#answer")
        assert page.locator("#sources-block").is_hidden()
        browser.close()
