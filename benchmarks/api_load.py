"""API load on loopback: the running service with demo data, 50 concurrent clients.

Creates the demo study, starts the service as ``nettrial serve`` does (uvicorn, one worker process
per core, ``Settings.request_threads`` threads each) and drives it with ``wrk`` from a separate
process: 50 open connections, each sending its next request as soon as the last one is answered.

- **baseline**: ``GET /healthz`` (one database round trip, no authentication), measured in the same
  run against the same server: the ratios say what the application work costs on top of it;
- **read**: the participant page's data, ``GET /participants/{id}`` and ``GET .../schedule``
  (visits with windows and statuses) in turn, over the 35 participants, as the monitor;
- **write**: ``POST /participants/{id}/labs`` (an ALT result, CTCAE-graded, audited) as the
  coordinator.

Reports requests/s, p50/p95/p99 latency and the server's CPU time per request, on SQLite and on
PostgreSQL. By default the clients never pause, which measures the service saturated (the latency is
then the queue: 50 clients / throughput); ``--think-ms`` makes each client pause between requests as
a person would, to see the latency at a given load short of saturation.
Target (issue 5): p95 under 50 ms for reads at 50 concurrent clients on 2 cores, judged saturated.
wrk, the server and PostgreSQL share those two cores, so the figures are pessimistic.

Usage: python benchmarks/api_load.py [--seconds 10] [--connections 50] [--workers N]
       [--databases sqlite,postgresql] [--think-ms 0]  (needs wrk: apt-get install wrk)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POSTGRES = os.environ.get("NETTRIAL_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TARGET_P95_MS = 50.0

# wrk scripts: the request of each kind, and a summary line wrk cannot print by itself (p95).
_SUMMARY = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %.3f %.3f %.3f %.3f\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.duration, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.mean / 1000))
end
"""
_READ = """
local n = 0
request = function()
  n = n + 1
  local id = math.floor(n / 2) % {participants} + 1
  local path = "/api/v1/participants/" .. id
  if n % 2 == 1 then path = path .. "/schedule" end
  return wrk.format("GET", path, {{["Authorization"] = "Bearer {token}"}})
end
"""
_WRITE = """
local n = 0
request = function()
  n = n + 1
  local body = string.format('{{"test":"alt","value":%d,"unit":"U/L","uln":40,"collected_on":"2026-11-20"}}',
    10 + n % 190)
  return wrk.format("POST", "/api/v1/participants/" .. (n % {participants} + 1) .. "/labs",
    {{["Authorization"] = "Bearer {token}", ["Content-Type"] = "application/json"}}, body)
end
"""


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


def _checkpoint(url: str) -> None:
    """Write the demo's data out before measuring: a checkpoint falling inside a run stalls it."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        sqlite = url.startswith("sqlite")
        connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)" if sqlite else "CHECKPOINT"))
    engine.dispose()


def _start(url: str, port: int, workers: int) -> subprocess.Popen:
    nettrial = str(Path(sys.executable).with_name("nettrial"))
    subprocess.run([nettrial, "demo", "--database-url", url], check=True, capture_output=True)
    _checkpoint(url)
    env = os.environ | {"NETTRIAL_DATABASE_URL": url}
    command = [sys.executable, "-m", "uvicorn", "nettrial.api.app:app", "--port", str(port)]
    command += ["--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the service did not start")


def _token(base: str, role: str) -> str:
    form = urllib.parse.urlencode({"username": role, "password": f"{role}-demo"}).encode()
    with urllib.request.urlopen(f"{base}/api/v1/auth/token", data=form) as response:
        return json.load(response)["access_token"]


def _cpu_seconds(server: subprocess.Popen) -> float:
    """User + system CPU of the server and its worker processes (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids, total = [server.pid], 0
    for pid in list(pids):
        children = Path(f"/proc/{pid}/task/{pid}/children")
        pids += [int(p) for p in children.read_text().split()] if children.exists() else []
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def _split(port: int) -> str:
    """How the open client connections fall on the worker processes, e.g. "22/28".

    Each worker serves its own connections, so the busier one sets the tail: with 22/28 its clients
    wait 28/25 of the mean. wrk opens all its connections at once and the workers race to accept
    them, so the split varies from run to run; it is printed to explain the spread of p95.
    """
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True
    ).stdout
    counts = Counter(line.split("pid=")[1].split(",")[0] for line in out.splitlines() if "pid=" in line)
    return "/".join(str(n) for n in sorted(counts.values())) or "?"


def _wrk(base: str, script: str, seconds: int, connections: int, server: subprocess.Popen) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script + _SUMMARY)
    try:
        before = _cpu_seconds(server)
        # A slow answer is a latency, not an error: wrk's own 2 s timeout would drop it from the figures.
        command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", file.name]
        command.append(base)
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as wrk:
            time.sleep(min(1.0, seconds / 2))
            split = _split(urllib.parse.urlsplit(base).port)
            stdout, stderr = wrk.communicate()
        cpu = _cpu_seconds(server) - before
    finally:
        os.unlink(file.name)
    line = next((x for x in stdout.splitlines() if x.startswith("RESULT")), None)
    if wrk.returncode or line is None:
        raise RuntimeError(f"wrk failed: {stderr.strip() or stdout.strip()}")
    requests, errors, micros, p50, p95, p99, _mean = (float(x) for x in line.split()[1:])
    return {
        "rps": requests / (micros / 1e6),
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "errors": int(errors),
        "cpu_ms": cpu * 1000 / max(requests, 1),
        "split": split,
    }


def _show(name: str, figures: dict, baseline: dict | None) -> None:
    ratio = "" if baseline is None else f"  p95 {figures['p95'] / baseline['p95']:.1f}x baseline"
    print(
        f"  {name:<9}{figures['rps']:8.0f} req/s  p50 {figures['p50']:6.1f}  p95 {figures['p95']:6.1f}"
        f"  p99 {figures['p99']:6.1f} ms  server CPU {figures['cpu_ms']:.2f} ms/req"
        f"  errors {figures['errors']}  connections per worker {figures['split']}{ratio}"
    )


def _thinking(script: str, think_ms: int) -> str:
    """Each client waits ``think_ms`` (jittered +/-50 %) before its next request: people, not a loop."""
    if not think_ms:
        return script
    return script + f"delay = function() return math.random({think_ms // 2}, {think_ms * 3 // 2}) end\n"


def run(kind: str, seconds: int, connections: int, workers: int, think_ms: int = 0) -> dict[str, dict]:
    with tempfile.TemporaryDirectory() as folder:
        url, drop = _database(kind, Path(folder))
        port = _free_port()
        server = _start(url, port, workers)
        base = f"http://127.0.0.1:{port}"
        try:
            reader, writer = _token(base, "monitor"), _token(base, "coordinator")
            scripts = {
                "baseline": 'wrk.path = "/healthz"\n',
                "read": _READ.format(participants=35, token=reader),
                "write": _WRITE.format(participants=35, token=writer),
            }
            _wrk(base, scripts["baseline"], 2, connections, server)  # warm up every worker
            pace = f"each pausing ~{think_ms} ms between requests" if think_ms else "no pauses"
            print(f"{kind}: {connections} connections, {pace}, {seconds} s per kind, {workers} workers")
            results: dict[str, dict] = {}
            for name, script in scripts.items():
                results[name] = _wrk(base, _thinking(script, think_ms), seconds, connections, server)
                _show(name, results[name], results.get("baseline") if name != "baseline" else None)
            if not think_ms:  # the target is judged saturated
                verdict = "met" if results["read"]["p95"] < TARGET_P95_MS else "NOT met"
                print(f"  target p95 < {TARGET_P95_MS:.0f} ms for reads, saturated: {verdict}")
            return results
        finally:
            server.terminate()
            server.wait(timeout=30)
            drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--think-ms", type=int, default=0, help="pause per client between requests (0: saturated, the target)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed (a load generator in its own process): apt-get install wrk")
    print(f"{os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.2f}")
    for kind in args.databases.split(","):
        run(kind, args.seconds, args.connections, args.workers, args.think_ms)


if __name__ == "__main__":
    main()
