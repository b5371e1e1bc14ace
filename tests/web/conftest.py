"""Browser tests: the real service on a SQLite file, driven by Debian's Chromium through Playwright.

``live`` starts the service in a thread on a free loopback port with one user per role; ``page`` is a
fresh browser page; ``shot(page, name)`` saves a screenshot under out/screenshots/<test>/. Chromium
comes from Debian (``/usr/bin/chromium``, installed by .ci/run when missing); without it the browser
tests skip locally and fail in CI.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from nettrial.api.main import build_app
from nettrial.store import migrate
from nettrial.store.db import connect
from tests import factories
from tests.conftest import IN_CI, REPO

CHROMIUM = os.environ.get("NETTRIAL_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = REPO / "out" / "screenshots"


class Live:
    """The running service: its base URL and database."""

    def __init__(self, url: str, db) -> None:
        self.url, self.db = url, db


@pytest.fixture
def live(tmp_path):
    db = connect(f"sqlite:///{tmp_path / 'web.db'}")
    migrate.upgrade(db)
    factories.seed(db)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build_app(db, factories.PROTOCOL), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield Live(f"http://127.0.0.1:{port}", db)
    server.should_exit = True
    thread.join(timeout=10)
    db.dispose()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium; .ci/run installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    opened.screenshot_dir = SCREENSHOTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    yield opened
    context.close()


def shot(page, name: str) -> Path:
    """Save a full-page screenshot of the current state under out/screenshots/<test>/<name>.png."""
    page.screenshot_dir.mkdir(parents=True, exist_ok=True)
    path = page.screenshot_dir / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page, live: Live, role: str) -> None:
    page.goto(f"{live.url}/login")
    page.get_by_label("Username").fill(role)
    page.get_by_label("Password").fill(factories.password(role))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live.url}/")
