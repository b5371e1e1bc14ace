"""``nettrial export``: the role of the user ``--as`` decides the form, every export is audited, and
a refusal exits 2 with its reason and writes nothing."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from importlib.util import find_spec

import pytest
from click.testing import CliRunner
from fhir.resources.R4B.bundle import Bundle

from nettrial.cli import main
from nettrial.export import FORMATS
from nettrial.store import exports
from tests import factories


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def study(db):
    users = factories.seed(db)
    factories.enrolled(db, users["coordinator"])
    return db


def _exports(db):
    with db.session(write=False) as session:
        return exports.recent_exports(session)


def test_the_statistician_gets_a_pseudonymised_export_recorded_in_their_name(study, tmp_path):
    out = tmp_path / "fhir"
    done = run(
        "export", "fhir", "--out", str(out), "--as", "statistician", "--database-url", study.url, "--json"
    )
    assert done.exit_code == 0, done.output
    shown = json.loads(done.output)
    assert shown["format"] == "fhir" and shown["pseudonymised"] is True
    assert shown["cutoff"] == dt.datetime.now(dt.UTC).date().isoformat()
    bundle = Bundle.model_validate_json((out / "fhir-bundle.json").read_text(encoding="utf-8"))
    assert sum(e.resource.get_resource_type() == "ResearchSubject" for e in bundle.entry) == 1
    (recorded,) = _exports(study)
    assert (recorded.username, recorded.format, recorded.pseudonymised) == ("statistician", "fhir", True)
    assert recorded.files == ("fhir-bundle.json",)


def test_the_investigator_gets_identified_unless_asking_for_pseudonymised(study, tmp_path):
    plain = run(
        "export", "fhir", "--out", str(tmp_path / "a"), "--as", "investigator", "--database-url", study.url
    )
    assert plain.exit_code == 0, plain.output
    assert "fhir export (identified, data cut-off" in plain.output
    assert "recorded in the audit trail as investigator (investigator)" in plain.output
    asked = run(
        "export", "fhir", "--out", str(tmp_path / "b"), "--as", "investigator", "--pseudonymised",
        "--cutoff", "2026-01-01", "--database-url", study.url,
    )  # fmt: skip
    assert asked.exit_code == 0, asked.output
    assert "fhir export (pseudonymised, data cut-off 2026-01-01)" in asked.output
    assert [(r.username, r.pseudonymised, r.cutoff) for r in _exports(study)] == [
        ("investigator", True, dt.date(2026, 1, 1)),
        ("investigator", False, dt.date.fromisoformat(_today())),
    ]


def _today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


@pytest.mark.parametrize(
    ("role", "extra", "reason"),
    [
        ("statistician", ("--identified",), "the statistician role may not export.identified"),
        ("coordinator", (), "the coordinator role may not export.identified or export.pseudonymised"),
        ("admin", ("--pseudonymised",), "the admin role may not export.identified or export.pseudonymised"),
    ],
)
def test_a_role_without_the_action_is_refused_with_the_reason(study, tmp_path, role, extra, reason):
    out = tmp_path / "refused"
    refused = run("export", "fhir", "--out", str(out), "--as", role, *extra, "--database-url", study.url)
    assert refused.exit_code == 2
    assert reason in refused.output
    assert not out.exists() and _exports(study) == []


def test_bad_input_exits_2_and_writes_nothing(study, tmp_path):
    out = str(tmp_path / "out")
    url = ("--database-url", study.url)
    nobody = run("export", "fhir", "--out", out, "--as", "nobody", *url)
    assert nobody.exit_code == 2 and "error: as: 'nobody' is not an active user" in nobody.output
    missing_as = run("export", "fhir", "--out", out, *url)
    assert missing_as.exit_code == 2 and "--as" in missing_as.output
    future = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)).isoformat()
    late = run("export", "fhir", "--out", out, "--as", "monitor", "--cutoff", future, *url)
    assert late.exit_code == 2 and "cutoff" in late.output and "future" in late.output
    unknown = run("export", "csv", "--out", out, "--as", "monitor", *url)
    assert unknown.exit_code == 2 and "csv" in unknown.output
    assert not (tmp_path / "out").exists() and _exports(study) == []


def test_a_database_without_a_study_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'none.db'}"
    refused = run("export", "fhir", "--out", str(tmp_path / "o"), "--as", "monitor", "--database-url", url)
    assert refused.exit_code == 2 and "holds no study" in refused.output
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize("name", [n for n in FORMATS if n != "fhir"])
def test_every_other_format_runs_through_the_same_command_or_says_it_is_not_installed(study, tmp_path, name):
    out = tmp_path / name
    done = run("export", name, "--out", str(out), "--as", "monitor", "--database-url", study.url, "--json")
    if find_spec(FORMATS[name][0]) is None:
        assert done.exit_code == 2
        assert f"{name} export is not available in this installation" in done.output
        assert _exports(study) == []
        return
    assert done.exit_code == 0, done.output
    written = json.loads(done.output)
    assert written["format"] == name and written["files"]
    (recorded,) = _exports(study)
    assert (recorded.username, recorded.format, recorded.pseudonymised) == ("monitor", name, False)


def test_loading_the_command_imports_no_format_module():
    code = "import sys, nettrial.cli; print([m for m in sys.modules if m.startswith('nettrial.export.')])"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"
