"""Web pages: how fast the study team's pages load, on the running service with demo data.

Two views of the same pages (dashboard, participant list, one participant's page, screening log):

- **server**: wrk from its own process, with a signed-in session cookie, 10 and 50 open connections
  (a site's staff, and the API target's load); p50/p95 and server CPU per page. Baseline: ``/healthz``
  in the same run.
- **browser**: headless Chromium (Debian's, driven by Playwright) loads each page 15 times as the
  coordinator; the median time to the ``load`` event (HTML, CSS and JavaScript in), against the same
  browser loading ``/healthz``.

Usage: python benchmarks/page_load.py [--seconds 5] [--database sqlite|postgresql]
       (needs wrk and chromium: apt-get install wrk chromium)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

from api_load import _database, _free_port, _start, _wrk

PAGES = {
    "dashboard": "/",
    "participants": "/participants",
    "participant": "/participants/NET-001",
    "screening": "/screening",
}
CHROMIUM = os.environ.get("NETTRIAL_CHROMIUM", "/usr/bin/chromium")


def _session_cookie(base: str, role: str) -> str:
    """Sign in through the login form; the session cookie it sets (redirects not followed)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    form = urllib.parse.urlencode({"username": role, "password": f"{role}-demo", "next": "/"}).encode()
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(f"{base}/login", data=form)
    except urllib.error.HTTPError as redirect:  # 303 to the dashboard carries the cookie
        cookie = redirect.headers["set-cookie"]
        return cookie.split(";", 1)[0]
    raise RuntimeError("sign-in did not redirect")


def _server_side(base: str, cookie: str, seconds: int, server) -> None:
    for connections in (10, 50):
        baseline = _wrk(base, 'wrk.path = "/healthz"\n', seconds, connections, server)
        print(f"  server, {connections} connections (baseline /healthz p95 {baseline['p95']:.1f} ms):")
        for name, path in PAGES.items():
            script = f'wrk.path = "{path}"\nwrk.headers["Cookie"] = "{cookie}"\n'
            got = _wrk(base, script, seconds, connections, server)
            print(
                f"    {name:<13}{got['rps']:7.0f} pages/s  p50 {got['p50']:6.1f}  p95 {got['p95']:6.1f} ms"
                f"  ({got['p95'] / baseline['p95']:.1f}x baseline)  server CPU {got['cpu_ms']:.2f} ms/page"
                f"  errors {got['errors']}"
            )


def _browser_side(base: str, cookie: str, loads: int = 15) -> None:
    from playwright.sync_api import sync_playwright

    name, value = cookie.split("=", 1)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        context = browser.new_context()
        context.add_cookies([{"name": name, "value": value, "url": base}])
        page = context.new_page()

        def median_load(path: str) -> float:
            times = []
            for _ in range(loads):
                page.goto(base + path, wait_until="load")
                times.append(page.evaluate("performance.getEntriesByType('navigation')[0].duration"))
            return statistics.median(times)

        baseline = median_load("/healthz")
        print(f"  browser, median of {loads} loads to the load event (baseline /healthz {baseline:.1f} ms):")
        for label, path in PAGES.items():
            took = median_load(path)
            print(f"    {label:<13}{took:7.1f} ms  ({took / baseline:.1f}x baseline)")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--database", default="sqlite", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    missing = [tool for tool in ("wrk",) if shutil.which(tool) is None]
    if missing or not Path(CHROMIUM).exists():
        sys.exit("wrk and chromium are needed: apt-get install wrk chromium")
    with tempfile.TemporaryDirectory() as folder:
        url, drop = _database(args.database, Path(folder))
        port = _free_port()
        workers = os.cpu_count() or 1
        server = _start(url, port, workers)
        base = f"http://127.0.0.1:{port}"
        try:
            print(f"{args.database}: {workers} worker processes; load average {os.getloadavg()[0]:.2f}")
            cookie = _session_cookie(base, "coordinator")
            _server_side(base, cookie, args.seconds, server)
            _browser_side(base, cookie)
        finally:
            server.terminate()
            server.wait(timeout=30)
            drop()


if __name__ == "__main__":
    main()
