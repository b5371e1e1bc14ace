"""API load on loopback: the running service with demo data, 50 concurrent clients.

Starts ``nettrial serve`` (uvicorn) on a fresh demo study, then drives it with N concurrent clients
(asyncio + httpx, default 50) for a fixed number of requests each: a read (the participant page
data: GET /participants/{id} and its schedule) and a write (POST a lab result, CTCAE-graded and
audited). The baseline, measured in the same run against the same server, is GET /healthz (one
database round trip, no authentication): the ratios say what the application work costs on top.
Reports requests/s and p50/p95/p99 latency, on SQLite and on PostgreSQL.
Usage: python benchmarks/api_load.py [--clients 50] [--requests 20] [--workers 2]
       [--databases sqlite,postgresql]
Target (issue 5): p95 under 50 ms for reads at 50 concurrent clients on 2 cores. The load generator
shares the two cores with the server, so the figures are pessimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
POSTGRES = os.environ.get("NETTRIAL_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database(kind: str, folder: Path) -> tuple[str, callable]:
    if kind == "sqlite":
        return f"sqlite:///{folder / 'bench.db'}", lambda: None
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))

    return f"{POSTGRES}?options=-csearch_path%3D{schema}", drop


def _start(url: str, port: int, workers: int) -> subprocess.Popen:
    nettrial = str(Path(sys.executable).with_name("nettrial"))
    subprocess.run([nettrial, "demo", "--database-url", url], check=True, capture_output=True)
    env = os.environ | {"NETTRIAL_DATABASE_URL": url}
    command = [sys.executable, "-m", "uvicorn", "nettrial.api.app:app", "--port", str(port)]
    command += ["--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the service did not start")


async def _drive(base: str, clients: int, per_client: int, request) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0

    async def client(number: int) -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            rng = random.Random(number)
            for _ in range(per_client):
                start = time.perf_counter()
                response = await request(http, rng)
                latencies.append(time.perf_counter() - start)
                errors += response.status_code >= 400

    start = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    return latencies, time.perf_counter() - start, errors


def _report(name: str, latencies: list[float], elapsed: float, errors: int) -> dict[str, float]:
    cuts = statistics.quantiles(latencies, n=100)
    figures = {
        "rps": len(latencies) / elapsed,
        "p50": cuts[49] * 1000,
        "p95": cuts[94] * 1000,
        "p99": cuts[98] * 1000,
    }
    shown = "  ".join(f"{k} {figures[k]:6.1f} ms" for k in ("p50", "p95", "p99"))
    print(f"  {name:<10} {figures['rps']:8.0f} req/s  {shown}  errors {errors}")
    return figures


async def _run(base: str, clients: int, per_client: int) -> None:
    async with httpx.AsyncClient(base_url=base) as http:
        token = (
            await http.post(
                "/api/v1/auth/token", data={"username": "coordinator", "password": "coordinator-demo"}
            )
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        participants = [p["id"] for p in (await http.get("/api/v1/participants", headers=headers)).json()]

    async def health(http, rng):
        return await http.get("/healthz")

    async def read(http, rng):
        pid = rng.choice(participants)
        response = await http.get(f"/api/v1/participants/{pid}", headers=headers)
        return response

    async def write(http, rng):
        pid = rng.choice(participants)
        lab = {
            "test": "alt",
            "value": rng.randint(10, 200),
            "unit": "U/L",
            "uln": 40,
            "collected_on": "2026-11-20",
        }
        return await http.post(f"/api/v1/participants/{pid}/labs", json=lab, headers=headers)

    baseline = _report("baseline", *await _drive(base, clients, per_client, health))
    for name, request in (("read", read), ("write", write)):
        figures = _report(name, *await _drive(base, clients, per_client, request))
        print(f"  {'':<10} p95 ratio to baseline {figures['p95'] / baseline['p95']:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20, help="requests per client and kind")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    for kind in args.databases.split(","):
        with tempfile.TemporaryDirectory() as folder:
            url, drop = _database(kind, Path(folder))
            port = _free_port()
            server = _start(url, port, args.workers)
            try:
                print(f"{kind}: {args.clients} clients x {args.requests} requests, {args.workers} workers")
                asyncio.run(_run(f"http://127.0.0.1:{port}", args.clients, args.requests))
            finally:
                server.terminate()
                server.wait(timeout=30)
                drop()


if __name__ == "__main__":
    main()
