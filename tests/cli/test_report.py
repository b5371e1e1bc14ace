"""``nettrial report``: writes the report for a cut-off it names, refuses bad input with exit 2."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from nettrial.cli import main
from nettrial.store import migrate
from nettrial.store.db import connect
from nettrial.store.demo import create_demo_study
from tests.analysis.conftest import DEMO_CUTOFF


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory) -> str:
    """A SQLite file with the demo study cut off at ``DEMO_CUTOFF`` (read only here)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('cli_report') / 'demo.db'}"
    database = connect(url)
    migrate.upgrade(database)
    create_demo_study(database, today=DEMO_CUTOFF)
    database.dispose()
    return url


def run(*args: str):
    return CliRunner().invoke(main, ["report", *args])


def test_report_writes_the_files_it_lists_and_names_the_cutoff(demo_url, tmp_path):
    out = tmp_path / "report"
    result = run("--out", str(out), "--database-url", demo_url, "--cutoff", DEMO_CUTOFF.isoformat())
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "data cut-off 2026-11-23"
    written = [line.removeprefix("wrote ") for line in lines if line.startswith("wrote ")]
    assert written[:2] == [str(out / "report.html"), str(out / "report.pdf")]
    assert len(written) == 10 and all((out / p).is_file() for p in written)
    assert lines[-1].startswith("10 files in ") and lines[-1].endswith(" s")
    assert "2026-11-23" in (out / "report.html").read_text()


def test_without_a_cutoff_the_report_is_cut_off_today_and_says_so(demo_url, tmp_path):
    result = run("--out", str(tmp_path), "--database-url", demo_url, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["cutoff"] == dt.date.today().isoformat()
    assert data["protocol_version"] == "1.0" and data["protocol_id"] == "NCT07279532"
    assert data["files"][0] == str(tmp_path / "report.html") and data["seconds"] >= 0
    assert f"Data cut-off</dt><dd>{data['cutoff']}" in (tmp_path / "report.html").read_text()


@pytest.mark.parametrize("cutoff", ["2026-13-01", "23/11/2026", "today"])
def test_a_bad_cutoff_exits_2_naming_the_option(demo_url, tmp_path, cutoff):
    result = run("--out", str(tmp_path / "r"), "--database-url", demo_url, "--cutoff", cutoff)
    assert result.exit_code == 2
    assert result.output.startswith("error: cutoff:") and cutoff in result.output
    assert not (tmp_path / "r").exists()


def test_a_missing_database_is_refused_not_created(tmp_path):
    missing = tmp_path / "nothing.db"
    result = run(
        "--out", str(tmp_path / "r"), "--database-url", f"sqlite:///{missing}", "--cutoff", "2026-11-23"
    )
    assert result.exit_code == 2
    assert "error: database_url:" in result.output
    assert not missing.exists()


def test_an_empty_database_is_refused(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    result = run(
        "--out", str(tmp_path / "r"), "--database-url", f"sqlite:///{empty}", "--cutoff", "2026-11-23"
    )
    assert result.exit_code == 2
    assert "error: database_url:" in result.output and "nettrial db upgrade" in result.output
