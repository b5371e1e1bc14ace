"""The exports page without a browser: who sees which forms, downloads in the form the role allows,
CSRF on every form, and every download in the audit trail."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import sys
import types
import zipfile
from importlib.machinery import ModuleSpec
from importlib.util import find_spec

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import func, select

from nettrial.api.main import build_app
from nettrial.export import FORMATS, ExportResult
from nettrial.store import exports
from nettrial.store.models import AuditEntry
from nettrial.store.users import ROLES
from nettrial.web.i18n import catalogue
from nettrial.web.pages import exports as page
from nettrial.web.session import csrf_token
from tests import factories

TODAY = dt.datetime.now(dt.UTC).date().isoformat()
ENGLISH = catalogue("en")


@pytest.fixture
def study(db):
    """One participant (NET-001, "Test Patient"), and a signed-in client per role."""
    users = factories.seed(db)
    factories.enrolled(db, users["coordinator"])
    app = build_app(db, factories.PROTOCOL)
    return db, {role: factories.web_client(app, role) for role in ROLES}


def _post(client: TestClient, name: str, **form: str):
    return client.post(
        f"/exports/{name}", data={"csrf_token": factories.csrf(client), **form}, follow_redirects=False
    )


def _recorded(db) -> list[exports.ExportRecord]:
    with db.session(write=False) as session:
        return exports.recent_exports(session)


def _entries(db) -> int:
    with db.session(write=False) as session:
        return session.scalar(select(func.count(AuditEntry.id)))


def _forms(html: str) -> list[str]:
    return re.findall(r'<form method="post" action="/exports/([^"]+)"', html)


def test_the_statistician_downloads_a_pseudonymised_fhir_bundle(study):
    db, clients = study
    statistician = clients["statistician"]
    shown = statistician.get("/exports")
    assert shown.status_code == 200
    assert "fhir" in _forms(shown.text)
    assert 'name="identity" value="identified"' not in shown.text  # no choice: pseudonymised only
    assert '<input type="hidden" name="identity" value="pseudonymised">' in shown.text
    assert ENGLISH["exports.only_pseudonymised"] in shown.text
    got = _post(statistician, "fhir", cutoff=TODAY, identity="pseudonymised")
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("application/fhir+json")
    assert got.headers["content-disposition"] == 'attachment; filename="fhir-bundle.json"'
    bundle = Bundle.model_validate_json(got.content)
    assert [e.resource.get_resource_type() for e in bundle.entry] == [
        "ResearchStudy",
        "Patient",
        "ResearchSubject",
    ]
    assert "Test Patient" not in got.text and "1965-05-10" not in got.text and "MRN-" not in got.text
    (recorded,) = _recorded(db)
    assert (recorded.username, recorded.format, recorded.pseudonymised, recorded.cutoff.isoformat()) == (
        "statistician",
        "fhir",
        True,
        TODAY,
    )


def test_the_statistician_cannot_get_an_identified_export(study):
    db, clients = study
    before = _entries(db)
    for form in ({"identity": "identified"}, {"identity": "identified", "cutoff": TODAY}):
        refused = _post(clients["statistician"], "fhir", **form)
        assert refused.status_code == 403
        assert "may not export.identified" in refused.text
    assert _entries(db) == before


def test_the_investigator_sees_every_format_with_the_choice_of_form(study):
    _, clients = study
    shown = clients["investigator"].get("/exports").text
    installed = [name for name in FORMATS if find_spec(FORMATS[name][0]) is not None]
    assert "fhir" in installed
    assert _forms(shown) == installed  # a form for every format that can run, in the order
    for name in FORMATS:
        key = page.catalogue_key(name)
        assert f'id="export-{name}"' in shown
        assert ENGLISH[f"exports.{key}"] in shown
    if len(installed) < len(FORMATS):  # a format not installed yet says so, without a button
        assert ENGLISH["exports.unavailable"] in shown
    for name in installed:
        assert f'id="{name}-identity-identified"' in shown and f'id="{name}-identity-pseudonymised"' in shown


def test_the_investigator_downloads_either_form(study):
    db, clients = study
    identified = _post(clients["investigator"], "fhir", cutoff=TODAY, identity="identified")
    pseudonymised = _post(clients["investigator"], "fhir", cutoff=TODAY, identity="pseudonymised")
    assert identified.status_code == pseudonymised.status_code == 200
    assert [r.pseudonymised for r in _recorded(db)] == [True, False]  # newest first


def test_a_role_without_export_rights_sees_no_form_and_is_refused(study):
    db, clients = study
    shown = clients["coordinator"].get("/exports")
    assert shown.status_code == 200
    assert _forms(shown.text) == []
    assert "<button" not in shown.text.split('id="main"', 1)[1]  # no button of any kind in the page
    assert ENGLISH["exports.not_for_role"] in shown.text
    assert clients["admin"].get("/exports").status_code == 403
    before = _entries(db)
    for role in ("coordinator", "admin"):
        refused = _post(clients[role], "fhir", cutoff=TODAY, identity="pseudonymised")
        assert refused.status_code == 403, role
    assert _entries(db) == before


def test_a_post_without_the_csrf_token_or_with_another_sessions_is_refused(study):
    db, clients = study
    before = _entries(db)
    monitor = clients["monitor"]
    missing = monitor.post("/exports/fhir", data={"cutoff": TODAY, "identity": "identified"})
    wrong = monitor.post(
        "/exports/fhir", data={"cutoff": TODAY, "identity": "identified", "csrf_token": csrf_token("another")}
    )
    other = monitor.post(
        "/exports/fhir",
        data={
            "cutoff": TODAY,
            "identity": "identified",
            "csrf_token": factories.csrf(clients["investigator"]),
        },
    )
    assert missing.status_code == wrong.status_code == other.status_code == 403
    assert "Not allowed" in missing.text
    assert _entries(db) == before


def test_every_download_appears_in_the_audit_log_and_on_the_page(study):
    db, clients = study
    assert _post(clients["statistician"], "fhir", identity="pseudonymised").status_code == 200
    assert _post(clients["monitor"], "fhir", cutoff="2026-06-30", identity="identified").status_code == 200
    with db.session(write=False) as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.entity == "export").order_by(AuditEntry.id)
        ).all()
    assert [(e.username, e.field, json.loads(e.new_value)["cutoff"]) for e in entries] == [
        ("statistician", "export (pseudonymised)", TODAY),  # no cut-off given: today
        ("monitor", "export (identified)", "2026-06-30"),
    ]
    everyone = clients["investigator"].get("/exports").text  # reads the audit trail: every export
    rows = re.findall(r'<tr class="export-record">(.*?)</tr>', everyone, re.S)
    assert len(rows) == 2
    assert "monitor" in rows[0] and "2026-06-30" in rows[0] and "identified" in rows[0]
    assert "statistician" in rows[1] and "pseudonymised" in rows[1]
    own = clients["statistician"].get("/exports").text  # does not: only their own
    rows = re.findall(r'<tr class="export-record">(.*?)</tr>', own, re.S)
    assert len(rows) == 1 and "statistician" in rows[0]
    assert ENGLISH["exports.recent_own"] in own


def test_a_bad_cutoff_is_shown_beside_the_field_and_nothing_is_exported(study):
    db, clients = study
    before = _entries(db)
    future = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)).isoformat()
    for cutoff, message in (("30/06/2026", "is not a date"), (future, "is in the future")):
        refused = _post(clients["monitor"], "fhir", cutoff=cutoff, identity="identified")
        assert refused.status_code == 422
        assert 'id="fhir-cutoff-error"' in refused.text and message in refused.text
        assert 'id="fhir-cutoff"' in refused.text and 'aria-invalid="true"' in refused.text
        assert f'value="{cutoff}"' in refused.text  # what was entered is kept
    assert _entries(db) == before


def test_an_unknown_format_is_not_found(study):
    _, clients = study
    assert _post(clients["monitor"], "csv", identity="identified").status_code == 404


def test_a_format_of_several_files_is_sent_as_a_repeatable_zip(study, monkeypatch):
    """A stand-in for a format that writes a folder (as SDTM does), so the zip path runs here."""
    db, clients = study

    def export(session, protocol, out, *, cutoff, pseudonymised=False):
        (out / "xpt").mkdir(parents=True)
        (out / "dm.csv").write_text("STUDYID,USUBJID\n", encoding="utf-8")
        (out / "xpt" / "dm.xpt").write_bytes(b"HEADER RECORD")
        files = (out / "dm.csv", out / "xpt" / "dm.xpt")
        return ExportResult("sdtm", files, {"DM": 1}, cutoff, pseudonymised)

    module = types.ModuleType("tests.web.stand_in_sdtm")
    module.export = export
    module.__spec__ = ModuleSpec(module.__name__, None)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(FORMATS, "sdtm", (module.__name__, FORMATS["sdtm"][1]))
    first = _post(clients["investigator"], "sdtm", cutoff="2026-06-30", identity="pseudonymised")
    second = _post(clients["investigator"], "sdtm", cutoff="2026-06-30", identity="pseudonymised")
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/zip"
    assert first.headers["content-disposition"] == 'attachment; filename="NCT07279532-sdtm-2026-06-30.zip"'
    archive = zipfile.ZipFile(io.BytesIO(first.content))
    assert archive.namelist() == ["dm.csv", "xpt/dm.xpt"]
    assert archive.read("xpt/dm.xpt") == b"HEADER RECORD"
    assert all(info.date_time == (2026, 6, 30, 0, 0, 0) for info in archive.infolist())
    assert first.content == second.content  # same export, same bytes
    assert _recorded(db)[0].files == ("dm.csv", "xpt/dm.xpt")  # by their place in the export


def test_the_texts_built_from_codes_exist_in_english_and_chinese():
    # test_i18n.py checks the literal keys of the template; these are built from formats and forms.
    used = {f"exports.{page.catalogue_key(name)}" for name in FORMATS}
    used |= {f"exports.{page.catalogue_key(name)}_what" for name in FORMATS}
    used |= {f"exports.{kind}_{form}" for kind in ("form", "only") for form in exports.FORMS}
    for language in ("en", "zh"):
        assert sorted(used - catalogue(language).keys()) == [], language
