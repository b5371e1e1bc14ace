"""The study report on the demo study: its numbers are the analyses', it names nobody, it repeats."""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime as dt
import html
import re
import zlib
from pathlib import Path

import pytest
from sqlalchemy import select

import nettrial
from nettrial.analysis.consort import consort_flow
from nettrial.analysis.report import build_report
from nettrial.analysis.rfs import time_to_event
from nettrial.analysis.survival import SurvivalAnalysis
from nettrial.protocol.load import load_protocol
from nettrial.store.models import Patient
from tests.analysis.conftest import DEMO_CUTOFF

PROTOCOL = load_protocol("nct07279532")
FIGURES = ("consort", "km-rfs", "ae-grades", "swimmer")


@pytest.fixture(scope="module")
def built(demo_db, tmp_path_factory):
    """The demo's report, built twice into two directories."""
    first = build_report(demo_db, PROTOCOL, tmp_path_factory.mktemp("report_a"), cutoff=DEMO_CUTOFF)
    second = build_report(demo_db, PROTOCOL, tmp_path_factory.mktemp("report_b"), cutoff=DEMO_CUTOFF)
    return first, second


@pytest.fixture(scope="module")
def page(built) -> str:
    return (built[0].out_dir / "report.html").read_text(encoding="utf-8")


def table_rows(page: str, table_id: str) -> list[list[str]]:
    """The body rows of ``<table id=...>`` as lists of cell texts (unescaped, stripped)."""
    found = re.search(rf'<table id="{table_id}">(.*?)</table>', page, re.S)
    assert found, f"no table {table_id!r} in the report"
    body = found.group(1).split("<tbody>", 1)[1]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [[html.unescape(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows]


def pdf_text(path: Path) -> str:
    """The PDF's page contents (text operators), decoded: reportlab writes ASCII85 over Flate."""
    data = path.read_bytes()
    parts = []
    for stream in re.findall(rb"\bstream\r?\n(.*?)\s*endstream", data, re.S):
        stream = stream.strip()
        if stream.endswith(b"~>"):
            stream = base64.a85decode(stream[:-2])
        with contextlib.suppress(zlib.error):  # not every stream is compressed
            stream = zlib.decompress(stream)
        if b" Tj" in stream:  # a page's text, not an image's pixels
            parts.append(stream)
    return b"\n".join(parts).decode("latin-1")


def test_a_rebuild_gives_the_same_bytes_in_every_file(built):
    first, second = built
    names = sorted(p.relative_to(first.out_dir) for p in first.out_dir.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(second.out_dir) for p in second.out_dir.rglob("*") if p.is_file())
    assert {str(n) for n in names} >= {"report.html", "report.pdf"} | {
        f"figures/{f}.{ext}" for f in FIGURES for ext in ("png", "svg")
    }
    for name in names:
        assert (first.out_dir / name).read_bytes() == (second.out_dir / name).read_bytes(), name
    assert [p.relative_to(first.out_dir) for p in first.files] == [
        p.relative_to(second.out_dir) for p in second.files
    ]


def test_the_report_states_cutoff_protocol_and_software(built, page):
    identity = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", page))
    assert identity["Data cut-off"] == DEMO_CUTOFF.isoformat() == "2026-11-23"
    assert identity["Protocol version"] == PROTOCOL.protocol_version
    assert identity["Software"] == f"nettrial {nettrial.__version__}"
    assert identity["Protocol"].startswith("NCT07279532")
    result = built[0]
    assert result.cutoff == DEMO_CUTOFF and result.protocol_version == PROTOCOL.protocol_version
    assert "2026-11-23" in result.explain()
    text = pdf_text(result.out_dir / "report.pdf")
    assert "2026-11-23" in text and f"nettrial {nettrial.__version__}" in text


def test_rfs_numbers_are_the_survival_analysis_of_the_rfs_table(demo_db, page):
    with demo_db.session(write=False) as session:
        rfs = time_to_event(session, PROTOCOL, DEMO_CUTOFF, parameter="RFS")
    analysis = SurvivalAnalysis(landmarks=(12, 24, 36)).fit(rfs, time="AVAL", event="EVENT")
    rows = {r[0]: r for r in table_rows(page, "rfs-landmarks")}
    assert set(rows) == {"12", "24", "36"}
    for point in analysis.landmarks_:
        row = rows[str(point["time"])]
        assert row[1] == str(int(analysis.at_risk_.loc[point["time"], "all"]))
        if point["survival"] is None:  # the demo's follow-up is shorter than the landmark
            assert row[2:] == ["not estimable", "-"]
        else:
            assert row[2] == f"{100 * point['survival']:.1f}"
            assert row[3] == f"{100 * point['lower']:.1f} to {100 * point['upper']:.1f}"
    summary = dict((r[0], r[1]) for r in table_rows(page, "rfs-summary"))
    assert summary["Participants analysed"] == str(len(rfs)) == "35"
    assert summary["Events"] == str(int(rfs["EVENT"].sum()))
    follow_up = analysis.follow_up_
    expected = f"{follow_up['estimate']:.1f} ({follow_up['lower']:.1f} to {follow_up['upper']:.1f})"
    assert summary["Median follow-up, months (reverse Kaplan-Meier, 95% CI)"] == expected


def test_landmarks_within_follow_up_are_estimated_and_shown(demo_db, tmp_path):
    # The protocol's landmarks (12-36 months) lie beyond the demo's follow-up: a protocol with
    # landmarks at 3 and 6 months shows estimates, each equal to the analysis of the RFS table.
    endpoints = copy.deepcopy(PROTOCOL.endpoints)
    endpoints["primary"][0] |= {"landmarks_months": [3, 6], "primary_landmark_months": 6}
    protocol = PROTOCOL.model_copy(update={"endpoints": endpoints})
    result = build_report(demo_db, protocol, tmp_path, cutoff=DEMO_CUTOFF)
    with demo_db.session(write=False) as session:
        rfs = time_to_event(session, protocol, DEMO_CUTOFF, parameter="RFS")
    analysis = SurvivalAnalysis(landmarks=(3, 6)).fit(rfs, time="AVAL", event="EVENT")
    rows = {r[0]: r for r in table_rows((tmp_path / "report.html").read_text(), "rfs-landmarks")}
    six = next(p for p in analysis.landmarks_ if p["time"] == 6)
    assert six["survival"] is not None and six["survival"] < 1  # an estimate, after events
    assert rows["6"][2] == f"{100 * six['survival']:.1f}"
    assert rows["6"][3] == f"{100 * six['lower']:.1f} to {100 * six['upper']:.1f}"
    assert "the primary statistic is the 6-month" in (tmp_path / "report.html").read_text().lower()
    assert result.primary["landmarks"] == analysis.to_dict()["landmarks"]


def test_consort_numbers_in_the_table_and_the_figure(demo_db, built, page):
    with demo_db.session(write=False) as session:
        flow = consort_flow(session, PROTOCOL, DEMO_CUTOFF)
    rows = table_rows(page, "consort")
    assert [(r[0].removeprefix("- "), r[1]) for r in rows] == [(b.label, str(b.n)) for b in flow.boxes]
    shown = {r[0]: r[1] for r in rows}
    assert shown["Screened"] == "60" and shown["Enrolled"] == "35"  # the demo study as created
    svg = (built[0].out_dir / "figures" / "consort.svg").read_text()
    for box in flow.boxes:
        assert f"{box.label} (n = {box.n})" in svg
    populations = {r[0]: r[2] for r in table_rows(page, "populations")}
    assert populations == {"Screened": "60", "Enrolled (ITT)": "35", "Safety": "35", "RFS analysis set": "35"}


def test_figures_are_embedded_as_the_files_written(built, page):
    figures = built[0].out_dir / "figures"
    for name in FIGURES:
        found = re.search(
            rf'<figure id="figure-{name}">\s*<img src="data:image/svg\+xml;base64,([^"]+)"', page
        )
        assert found, name
        assert base64.b64decode(found.group(1)) == (figures / f"{name}.svg").read_bytes()
    assert "<link" not in page and "<script" not in page  # one self-contained file


def test_no_name_record_number_or_birth_date_anywhere(demo_db, built, page):
    with demo_db.session(write=False) as session:
        people = session.execute(
            select(Patient.full_name, Patient.medical_record_number, Patient.date_of_birth)
        ).all()
    assert len(people) == 60
    result = built[0]
    svgs = "".join((result.out_dir / "figures" / f"{n}.svg").read_text() for n in FIGURES)
    pdf = pdf_text(result.out_dir / "report.pdf")
    assert "Screened" in pdf and "NET-001" in svgs  # the texts searched are the real ones
    for name, record_number, born in people:
        forbidden = (
            name,
            record_number,
            born.isoformat(),
            born.strftime("%d/%m/%Y"),
            born.strftime("%Y%m%d"),
        )
        for text in forbidden:
            assert text not in page, text
            assert text not in pdf, text
            assert text not in svgs, text


def test_pdf_is_a_pdf_with_pages(built):
    data = (built[0].out_dir / "report.pdf").read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type /Page\b", data)) >= 3
    assert b"/Subtype /Image" in data  # the PNG figures
    # reportlab's invariant mode: a fixed creation date, not the time of the build.
    assert b"/CreationDate (D:20000101000000+00'00')" in data
    assert dt.date.today().strftime("D:%Y%m%d").encode() not in data


def test_a_cutoff_before_any_enrolment_still_gives_a_report(demo_db, tmp_path):
    result = build_report(demo_db, PROTOCOL, tmp_path, cutoff=PROTOCOL.identity.start_date)
    page = (tmp_path / "report.html").read_text()
    assert "No participant is in the RFS analysis set" in page
    assert not (tmp_path / "figures" / "km-rfs.svg").exists()
    assert result.primary == {}
