"""`nettrial ctgov compare` and `nettrial import odm`: the ways into the system from a standard form."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from nettrial.cli import main
from nettrial.export import odm
from tests.analysis.conftest import DEMO_CUTOFF, demo_db  # noqa: F401
from tests.factories import PROTOCOL

RECORD = Path(__file__).parents[1] / "export" / "data" / "NCT07279532.json"


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_compare_lists_the_differences_and_exits_1_when_there_are_any():
    found = _run("ctgov", "compare", str(RECORD), "--json")
    assert found.exit_code == 1, found.output
    report = json.loads(found.output)
    assert report["matches"] is False
    paths = {d["protocol_path"] for d in report["differences"]}
    assert paths == {"identity.brief_title"}  # the registry page shows one title only


def test_compare_refuses_a_file_that_is_not_a_record(tmp_path):
    bad = tmp_path / "record.json"
    bad.write_text(json.dumps({"hasResults": False}), encoding="utf-8")
    refused = _run("ctgov", "compare", str(bad))
    assert refused.exit_code == 2 and "protocolSection" in refused.output


def test_an_odm_export_loads_into_an_empty_database_once(demo_db, tmp_path):  # noqa: F811
    with demo_db.session(write=False) as session:
        odm.export(session, PROTOCOL, tmp_path / "odm", cutoff=DEMO_CUTOFF)
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    loaded = _run("import", "odm", str(tmp_path / "odm" / "odm.xml"), "--database-url", target, "--json")
    assert loaded.exit_code == 0, loaded.output
    counts = json.loads(loaded.output)["counts"]
    assert counts["participant"] == 35 and counts["adverse_event"] == 145
    again = _run("import", "odm", str(tmp_path / "odm" / "odm.xml"), "--database-url", target)
    assert again.exit_code == 2 and "empty" in again.output
    missing = _run("import", "odm", str(tmp_path / "none.xml"), "--database-url", target)
    assert missing.exit_code == 2 and "path" in missing.output
