"""The real service in a subprocess: uvicorn on a free loopback port, on a test database.

Tests that need what an in-process client cannot give (several connections at once, a server that
dies with SIGKILL and is started again on the same database) use ``Server``. The database is
migrated already (the ``db`` fixture does that); ``seeded`` adds the site and one user per role.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from nettrial.store.db import Database
from tests import factories

REPO = Path(__file__).resolve().parents[2]
API = "/api/v1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``python -m uvicorn nettrial.api.app:app`` on ``database_url``; its output goes to ``log``."""

    def __init__(self, database_url: str, log: Path) -> None:
        self.database_url = database_url
        self.log = log
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0, attempts: int = 3) -> Server:
        """Start the service and return once GET /healthz answers 200.

        A port found free can be taken by someone else before uvicorn binds it: the service then
        exits at once, and is started again on another port.
        """
        assert self.process is None, "already running"
        for _ in range(attempts):
            if self._start_once(timeout):
                return self
        raise RuntimeError(f"the service exited at start:\n{self.output()}")

    def _start_once(self, timeout: float) -> bool:
        self.port = free_port()
        env = os.environ | {"NETTRIAL_DATABASE_URL": self.database_url}
        command = [sys.executable, "-m", "uvicorn", "nettrial.api.app:app"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        with self.log.open("ab") as log:
            log.write(f"\n--- start on port {self.port} ---\n".encode())
            log.flush()
            self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                return False
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"the service did not answer /healthz within {timeout} s:\n{self.output()}")

    def stop(self, timeout: float = 15.0) -> int | None:
        """Graceful shutdown (SIGTERM: uvicorn finishes the requests in flight); SIGKILL if it hangs."""
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.process = None
        return code

    def kill(self) -> None:
        """SIGKILL: the process dies at once, with whatever transactions it had open."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def client(self, token: str | None = None, timeout: float = 60.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url + API, headers=headers, timeout=timeout)

    def login(self, role: str) -> str:
        """A bearer token for the seeded user of ``role``."""
        response = httpx.post(
            f"{self.base_url}{API}/auth/token",
            data={"username": role, "password": factories.password(role)},
            timeout=30.0,
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def __enter__(self) -> Server:
        return self.start() if self.process is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def seeded(db: Database, log: Path) -> tuple[Server, dict[str, int]]:
    """A (not yet started) server on ``db`` after seeding one site and one user per role."""
    return Server(db.url, log), factories.seed(db)
