"""SDTM export of the demo study: files read back, limits, subjects, counts, cut-off, privacy, refusals."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from sqlalchemy import select

from nettrial.analysis.consort import usubjid
from nettrial.exceptions import InputError, RuleDataError
from nettrial.export import exporter, sdtm
from nettrial.store.models import AdverseEvent, DosingPeriod, Participant, Patient
from tests.export.conftest import DEMO_CUTOFF
from tests.factories import PROTOCOL

DOMAINS = ("DM", "EX", "SUPPEX", "AE", "LB", "VS", "DS", "MH", "CM", "TU", "TR", "RS")
EARLY_CUTOFF = dt.date(2026, 7, 1)


def _export(demo_db, out: Path, cutoff: dt.date = DEMO_CUTOFF, **options):
    with demo_db.session(write=False) as session:
        return sdtm.export(session, PROTOCOL, out, cutoff=cutoff, **options)


def _csv(out: Path, domain: str) -> pd.DataFrame:
    return pd.read_csv(out / f"{domain.lower()}.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def identified(demo_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("sdtm_identified")
    return out, _export(demo_db, out)


@pytest.fixture(scope="module")
def pseudonymised(demo_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("sdtm_pseudonymised")
    return out, _export(demo_db, out, pseudonymised=True)


@pytest.fixture(scope="module")
def early(demo_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("sdtm_early")
    return out, _export(demo_db, out, cutoff=EARLY_CUTOFF)


@pytest.fixture(scope="module")
def store(demo_db):
    """Plain facts read from the store for comparison (never from the export)."""
    with demo_db.session(write=False) as session:
        participants = session.execute(
            select(Participant.id, Participant.study_id, Participant.enrolled_at)
        ).all()
        events = session.execute(
            select(AdverseEvent.id, AdverseEvent.participant_id, AdverseEvent.grade, AdverseEvent.onset_date,
                   AdverseEvent.resolved_date)
        ).all()  # fmt: skip
        periods = session.scalars(select(DosingPeriod)).all()
        periods = [
            (p.id, p.participant_id, p.dose_level, p.start_date, p.stop_date, p.missed_doses) for p in periods
        ]
        patients = session.execute(
            select(
                Patient.full_name, Patient.medical_record_number, Patient.date_of_birth, Participant.study_id
            ).outerjoin(Participant, Participant.patient_id == Patient.id)
        ).all()
    return {"participants": participants, "events": events, "periods": periods, "patients": patients}


def _enrolled(store, cutoff: dt.date) -> dict[int, str]:
    return {pid: sid for pid, sid, at in store["participants"] if at.astimezone(dt.UTC).date() <= cutoff}


# --- files ---------------------------------------------------------------------------------------


def test_every_dataset_is_written_as_csv_and_xpt_with_the_listing(identified):
    out, result = identified
    assert tuple(result.counts) == DOMAINS
    for domain in DOMAINS:
        assert (out / f"{domain.lower()}.csv").is_file() and (out / f"{domain.lower()}.xpt").is_file()
        assert result.counts[domain] == len(_csv(out, domain))
    assert result.to_dict()["format"] == "sdtm" and len(result.files) == 2 * len(DOMAINS) + 1
    define = pd.read_csv(out / "define_variables.csv", dtype=str, keep_default_na=False)
    assert tuple(define.columns) == sdtm.DEFINE_COLUMNS
    for domain in DOMAINS:
        assert define[define["dataset"] == domain]["variable"].tolist() == _csv(out, domain).columns.tolist()


def test_every_xpt_reads_back_equal_to_its_csv_values_and_labels(identified):
    out, _ = identified
    standard = sdtm.load_standard()
    define = pd.read_csv(out / "define_variables.csv", dtype=str, keep_default_na=False)
    for domain in DOMAINS:
        frame, meta = pyreadstat.read_xport(str(out / f"{domain.lower()}.xpt"))
        text = _csv(out, domain)
        assert meta.table_name == domain and meta.file_label == standard.domains[domain].label
        listed = define[define["dataset"] == domain]
        assert meta.column_labels == listed["label"].tolist()
        assert frame.columns.tolist() == text.columns.tolist() and len(frame) == len(text)
        for name, kind in zip(listed["variable"], listed["type"], strict=True):
            if kind == "Num":
                expected = [float(x) if x else None for x in text[name]]
                got = [None if pd.isna(x) else float(x) for x in frame[name]]
            else:
                expected, got = text[name].tolist(), frame[name].tolist()
            assert got == expected, f"{domain}.{name}"


def test_names_labels_and_values_within_transport_limits(identified):
    out, _ = identified
    for domain in DOMAINS:
        frame, meta = pyreadstat.read_xport(str(out / f"{domain.lower()}.xpt"))
        assert len(domain) <= 8 and len(meta.file_label) <= 40
        for name, label in zip(frame.columns, meta.column_labels, strict=True):
            assert re.fullmatch(r"[A-Z][A-Z0-9_]{0,7}", name), f"{domain}.{name}"
            assert 0 < len(label) <= 40, f"{domain}.{name}"
        for name in frame.columns:
            if meta.readstat_variable_types[name] == "string":
                assert frame[name].str.len().max() <= 200 if len(frame) else True


def test_a_41_character_label_is_refused_naming_the_variable_and_40_is_accepted(tmp_path, demo_db):
    text = sdtm.VARIABLES_FILE.read_text(encoding="utf-8")
    original = "label: Reported Term for the Adverse Event,"
    assert original in text
    exactly_40 = tmp_path / "forty.yaml"
    exactly_40.write_text(text.replace(original, f"label: {'L' * 40},"), encoding="utf-8")
    assert sdtm.load_standard(exactly_40).domains["AE"].variables[5].label == "L" * 40
    too_long = tmp_path / "forty_one.yaml"
    too_long.write_text(text.replace(original, f"label: {'L' * 41},"), encoding="utf-8")
    with pytest.raises(RuleDataError, match=r"AE\.AETERM: label has 41 characters"):
        sdtm.load_standard(too_long)
    out = tmp_path / "refused"
    with pytest.raises(RuleDataError, match=r"AE\.AETERM"):
        _export(demo_db, out, variables=too_long)
    assert not out.exists()  # nothing written


def test_a_long_name_and_a_value_longer_than_declared_are_refused(tmp_path, demo_db):
    text = sdtm.VARIABLES_FILE.read_text(encoding="utf-8")
    renamed = tmp_path / "name.yaml"
    renamed.write_text(text.replace("{name: AESPID,", "{name: AESPIDENT,"), encoding="utf-8")
    with pytest.raises(RuleDataError, match=r"AE\.AESPIDENT: name must be 1-8"):
        sdtm.load_standard(renamed)
    # DSTERM holds the recorded reasons, some longer than 20 characters.
    short = tmp_path / "short.yaml"
    declared = "{name: DSTERM, label: Reported Term for the Disposition Event, type: Char, length: 200,"
    assert declared in text
    short.write_text(text.replace(declared, declared.replace("200", "20")), encoding="utf-8")
    out = tmp_path / "refused"
    with pytest.raises(InputError, match="more than the 20 declared") as refused:
        _export(demo_db, out, variables=short)
    assert refused.value.field == "DS.DSTERM" and not out.exists()


def test_values_of_the_wrong_type_or_not_ascii_are_refused():
    ae = sdtm.load_standard().domains["AE"]
    row = {"USUBJID": "NCT07279532-NET-001", "AETERM": "Fatigue", "AESTDTC": "2026-01-02"}
    assert sdtm.dataset(ae, [row], "NCT07279532")["AESEQ"].tolist() == [1.0]
    with pytest.raises(InputError, match="not a number") as wrong:
        sdtm.dataset(ae, [{**row, "AESTDY": "3"}], "NCT07279532")
    assert wrong.value.field == "AE.AESTDY"
    with pytest.raises(InputError, match="not ASCII"):
        sdtm.dataset(ae, [{**row, "AETERM": "Fièvre"}], "NCT07279532")
    with pytest.raises(InputError, match="not a variable") as unknown:
        sdtm.dataset(ae, [{**row, "AEFOO": "x"}], "NCT07279532")
    assert unknown.value.field == "AE.AEFOO"


# --- subjects and counts ---------------------------------------------------------------------------


def test_usubjid_sets_agree_across_domains_and_with_the_store(identified, store):
    out, _ = identified
    dm = _csv(out, "DM")
    expected = {usubjid(PROTOCOL, sid) for sid in _enrolled(store, DEMO_CUTOFF).values()}
    assert set(dm["USUBJID"]) == expected and dm["USUBJID"].is_unique and len(dm) == 35
    assert (dm["USUBJID"] == "NCT07279532-" + dm["SUBJID"]).all()
    for domain in DOMAINS[1:]:
        assert set(_csv(out, domain)["USUBJID"]) <= expected, domain
    for domain in ("EX", "LB", "VS", "DS", "RS"):
        assert set(_csv(out, domain)["USUBJID"]) == expected, domain  # every participant has some


@pytest.mark.parametrize("which", ["identified", "early"])
def test_ae_rows_are_the_stored_events_up_to_the_cutoff_with_their_grades(which, request, store):
    out, result = request.getfixturevalue(which)
    cutoff = result.cutoff
    enrolled = _enrolled(store, cutoff)
    events = {eid: ev for eid, *ev in store["events"] if ev[0] in enrolled and ev[2] <= cutoff}
    ae = _csv(out, "AE")
    assert len(ae) == len(events) == result.counts["AE"]
    assert set(ae["AESPID"].astype(int)) == set(events)
    for row in ae.itertuples():
        pid, grade, onset, resolved = events[int(row.AESPID)]
        assert str(grade) == row.AETOXGR and onset.isoformat() == row.AESTDTC
        assert usubjid(PROTOCOL, enrolled[pid]) == row.USUBJID
        # an end after the cut-off had not happened yet
        assert (resolved.isoformat() if resolved and resolved <= cutoff else "") == row.AEENDTC
        if resolved and resolved > cutoff:
            assert row.AEOUT == "NOT RECOVERED/NOT RESOLVED"
    if which == "identified":
        assert len(ae) == 145


def test_nothing_is_dated_after_the_cutoff(early):
    out, result = early
    assert result.counts["DM"] < 35  # some enrolled later
    for domain in DOMAINS:
        frame = _csv(out, domain)
        for name in (c for c in frame.columns if c.endswith("DTC")):
            assert (frame[name].str[:10] <= EARLY_CUTOFF.isoformat()).all(), f"{domain}.{name}"


def test_ex_rows_follow_the_dosing_log(identified, early, store):
    for out, result in (identified, early):
        cutoff = result.cutoff
        enrolled = _enrolled(store, cutoff)
        periods = {p[0]: p for p in store["periods"] if p[1] in enrolled and p[3] <= cutoff}
        ex = _csv(out, "EX")
        assert set(ex["EXSPID"].astype(int)) == set(periods)
        ladder = {lv.level: lv for lv in PROTOCOL.dose_levels.levels}
        days_ex: dict[str, int] = {}
        days_log: dict[str, int] = {}
        for row in ex.itertuples():
            _, _, level, start, stop, _ = periods[int(row.EXSPID)]
            assert start.isoformat() == row.EXSTDTC and float(row.EXDOSE) == ladder[level].dose_mg
            closed = stop is not None and stop <= cutoff
            assert (stop.isoformat() if closed else "") == row.EXENDTC
            lv = ladder[level]
            regimen = "CONTINUOUS" if lv.days_off == 0 else f"{lv.days_on} DAYS ON/{lv.days_off} DAYS OFF"
            assert regimen == row.EXDOSRGM and row.EXDOSFRQ == "QD"
            if closed:
                span = (dt.date.fromisoformat(row.EXENDTC) - dt.date.fromisoformat(row.EXSTDTC)).days + 1
                days_ex[row.USUBJID] = days_ex.get(row.USUBJID, 0) + span
                days_log[row.USUBJID] = days_log.get(row.USUBJID, 0) + (stop - start).days + 1
        assert days_ex == days_log and sum(days_ex.values()) > 0
        # the first period is study day 1 and the subject's reference start
        dm = _csv(out, "DM").set_index("USUBJID")
        first = ex[ex["EXSEQ"] == "1"].set_index("USUBJID")
        assert (first["EXSTDY"] == "1").all() and (first["EXSTDTC"] == dm.loc[first.index, "RFSTDTC"]).all()
        supp = _csv(out, "SUPPEX")
        missed = {p[0]: p[5] for p in periods.values() if p[4] is not None and p[4] <= cutoff}
        assert dict(zip(supp["IDVARVAL"].astype(int), supp["QVAL"].astype(int), strict=True)) == missed


def test_ds_records_the_one_death_as_dm_does(identified):
    out, _ = identified
    ds, dm = _csv(out, "DS"), _csv(out, "DM")
    deaths = ds[ds["DSDECOD"] == "DEATH"]
    assert deaths["USUBJID"].nunique() == 1
    died = dm[dm["DTHFL"] == "Y"]
    assert len(died) == 1 and died["USUBJID"].tolist() == deaths["USUBJID"].unique().tolist()
    assert died["DTHDTC"].iloc[0] == deaths["DSSTDTC"].min()
    allowed = {"COMPLETED", "ADVERSE EVENT", "WITHDRAWAL BY SUBJECT", "LOST TO FOLLOW-UP", "DEATH",
               "PROGRESSIVE DISEASE", "PHYSICIAN DECISION", "OTHER", "INFORMED CONSENT OBTAINED"}  # fmt: skip
    assert set(ds["DSDECOD"]) <= allowed
    assert (ds["DSCAT"] == "PROTOCOL MILESTONE").sum() == 35  # every participant consented


def test_recurrences_are_new_lesions_and_responses(identified):
    out, _ = identified
    tu, tr, rs = _csv(out, "TU"), _csv(out, "TR"), _csv(out, "RS")
    recurred = rs[rs["RSORRES"] == "RECURRENCE"]
    assert set(rs["RSORRES"]) == {"NED", "RECURRENCE"}
    assert set(tu["USUBJID"]) == set(recurred["USUBJID"]) and recurred["USUBJID"].nunique() == 7
    assert (tu["TUORRES"] == "NEW").all() and set(tu["TULOC"]) <= {
        "PRIMARY SITE", "LYMPH NODE", "LIVER", "OTHER DISTANT SITE"}  # fmt: skip
    assert set(zip(tr["USUBJID"], tr["TRLNKID"], strict=True)) == set(
        zip(tu["USUBJID"], tu["TULNKID"], strict=True)
    )


def test_an_empty_domain_is_written_with_its_variables_and_a_note(identified):
    out, result = identified
    assert result.counts["MH"] == 0  # the demo's enrolled participants have no history events
    assert _csv(out, "MH").columns.tolist()[:4] == ["STUDYID", "DOMAIN", "USUBJID", "MHSEQ"]
    assert any(note.startswith("MH: no source records") for note in result.notes)
    frame, meta = pyreadstat.read_xport(str(out / "mh.xpt"))
    assert frame.empty and meta.table_name == "MH"


# --- privacy and determinism ------------------------------------------------------------------------


def test_pseudonymised_dm_has_years_of_birth_and_no_names_anywhere(identified, pseudonymised, store):
    born = {sid: dob for _, _, dob, sid in store["patients"] if sid is not None}
    for (out, result), full in ((identified, True), (pseudonymised, False)):
        dm = _csv(out, "DM")
        expected = [born[s].isoformat() if full else f"{born[s].year:04d}" for s in dm["SUBJID"]]
        assert dm["BRTHDTC"].tolist() == expected
        assert result.pseudonymised is not full
    out, _ = pseudonymised
    names = [name for name, *_ in store["patients"]]
    numbers = {mrn for _, mrn, _, _ in store["patients"]}
    dobs = {dob.isoformat() for _, _, dob, _ in store["patients"]}
    assert len(names) == 60
    for path in sorted(out.iterdir()):
        content = path.read_bytes().decode("latin-1")
        assert not [n for n in names if n in content], path.name
        assert not [d for d in dobs if d in content], path.name
        if path.suffix == ".csv":
            fields = {f for row in pd.read_csv(path, dtype=str, keep_default_na=False).itertuples(index=False)
                      for f in row}  # fmt: skip
            assert not fields & numbers, path.name


def test_the_same_database_gives_byte_identical_csvs(identified, demo_db, tmp_path):
    first, _ = identified
    again = _export(demo_db, tmp_path / "again")
    csvs = sorted(p.name for p in first.glob("*.csv"))
    assert len(csvs) == len(DOMAINS) + 1
    for name in csvs:
        assert (first / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    assert again.counts == identified[1].counts


def test_the_format_is_registered_for_the_command_line():
    assert exporter("sdtm") is sdtm.export
