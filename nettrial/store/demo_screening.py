"""The demo study's screening and enrolment: 60 invented patients, their records, evaluations and consents.

First doses every ~8 days over the ten months before the cut-off, each screening 1-2 weeks before its
first dose; screen failures among them. Each record is eligible stage III but for what the patient's
kind (``demo_data.yaml``) changes; it is evaluated and the evaluation stored, and the eligible are
enrolled through ``screening.enrol``. The screening and enrolment stamps, written at run time, are
moved onto the timeline at the end (``stamp_timeline``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from nettrial.store import audit
from nettrial.store._demo_plan import DAY, Course, Demo, limit, plain_json
from nettrial.store.models import Consent
from nettrial.store.screening import create_patient, enrol, evaluate_patient, save_screening_record


def plan_screening(demo: Demo) -> list[Course]:
    """First doses every ~8 days over ten months, screen failures among them, in screening order."""
    rng, data, today = demo.rng, demo.data, demo.today
    kinds = [k for k, spec in data["kinds"].items() for _ in range(spec["count"]) if spec.get("enrol")]
    rng.shuffle(kinds)
    step = 272 / (len(kinds) - 1)
    slots = [(today - (300 - round(i * step) + rng.randint(-1, 1)) * DAY, k) for i, k in enumerate(kinds)]
    failing = [k for k, spec in data["kinds"].items() if not spec.get("enrol") for _ in range(spec["count"])]
    slots += [(today - rng.randint(20, 300) * DAY, kind) for kind in failing]
    courses, taken = [], set()
    for first, kind in slots:
        sex = rng.choice(("female", "male"))
        baseline = {test: demo.between(*limit(lab, "normal", sex)) for test, lab in data["labs"].items()}
        course = Course(kind, first, first - rng.randint(7, 11) * DAY, sex, baseline)
        name = mrn = ""
        while not name or name in taken or mrn in taken:
            name = f"{rng.choice(data['names']['surnames'])} {rng.choice(data['names'][sex])}"
            mrn = str(rng.randint(20_000_000, 29_999_999))  # eight digits, as the hospital's
        taken |= {name, mrn}
        course.record = _record(demo, course) | {"name": name, "mrn": mrn}
        courses.append(course)
    return sorted(courses, key=lambda c: (c.screened, c.first))


def _record(demo: Demo, course: Course) -> dict[str, Any]:
    """A screening record (schema 1.0): eligible stage III, but for what the patient's kind changes."""
    rng, data, sites = demo.rng, demo.data, demo.data["tumour_sites"]
    kind, first, screened, sex = course.kind, course.first, course.screened, course.sex
    spec = data["defaults"] | data["kinds"][kind]
    age, consented = rng.randint(*spec["age"]), screened - rng.randint(0, 3) * DAY
    site = rng.choices(list(sites), [s["weight"] for s in sites.values()])[0]
    pathology = _pathology(demo, spec, site)
    labs, pressures = _measurements(demo, course, spec)
    days = spec.get("history_days")
    history = [{"kind": kind, "date": first - rng.randint(*days) * DAY}] if days else []
    by, at = data["users"]["investigator"], dt.datetime.combine(screened + 2 * DAY, dt.time(10))
    attestations = {"E9": {"answer": "no", "by": by, "at": at}}
    if "I4" in spec:
        attestations["I4"] = {"answer": "no", "by": by, "at": at, "note": spec["I4"]}
    weight = round(rng.uniform(*{"male": (58, 84), "female": (47, 70)}[sex]), 1)
    procedure, margin = rng.choice(sites[site]["procedures"]), "R0" if rng.random() > 0.08 else "R1"
    born = dt.date(consented.year - age, rng.randint(1, 12), rng.randint(1, 28))
    surgery = first - rng.randint(*spec["surgery_days"]) * DAY
    return plain_json({
        "identity": {"weight": {"value": weight, "unit": "kg", "date": screened}},
        "screening_date": screened, "planned_first_dose": dt.datetime.combine(first, dt.time(9)),
        "surgery": {"date": surgery, "procedure": procedure, "margin": margin}, "pathology": pathology,
        "consent": {"signed": True, "date": consented} if spec.get("consent", True) else {},
        "liver_metastases": False, "symptomatic": rng.random() < 0.1, "labs": labs,
        "supportive_care": {"reviewed": True, "items": []}, "blood_pressure": pressures,
        "history": {"reviewed": True, "events": history}, "reproductive": _reproductive(course, age),
        "attestations": attestations, "born": born,
    })  # fmt: skip


def _pathology(demo: Demo, spec: dict[str, Any], site: str) -> dict[str, Any]:
    """The resected tumour: nodes, Ki-67 and differentiation as the patient's kind sets them."""
    rng, tumour = demo.rng, demo.data["tumour_sites"][site]
    positive = spec["nodes"] == "positive" or (spec["nodes"] == "either" and rng.random() < 0.5)
    findings = tumour["node_positive" if positive else "node_negative"]
    ki67 = rng.randint(*spec["ki67"])
    poor = spec.get("differentiation") == "poor"
    return {
        "site": site, "size_mm": rng.randint(*findings["size_mm"]),
        "extent": rng.choice(findings["extent"]),
        "nodes_positive": rng.randint(1, 6) if positive else 0, "nodes_examined": rng.randint(8, 24),
        "metastasis": [], "ki67_percent": ki67, "differentiation": "poor" if poor else "well",
        "mitoses_per_2mm2": rng.randint(*spec.get("mitoses", (0, 1) if ki67 < 3 else (2, 12))),
        "tumour_type": "nec" if poor else "net", "lymphovascular_invasion": rng.random() < 0.45,
        "perineural_invasion": rng.random() < 0.25,
    } | ({"mesenteric_mass_mm": 0} if site == "small intestine" else {})  # fmt: skip


def _measurements(demo: Demo, course: Course, spec: dict[str, Any]) -> tuple[list, list]:
    """The screening labs (near the patient's baseline, but the test the kind fails) and two pressures."""
    rng, data, kind, screened = demo.rng, demo.data, course.kind, course.screened
    labs = []
    for test in data["screening_labs"]:
        lab = data["labs"][test]
        value = demo.between(*spec["lab"]) if test == kind else course.baseline[test]
        limits = {k: limit(lab, k, course.sex) for k in ("lln", "uln") if k in lab}
        day = screened + rng.randint(0, 1) * DAY
        labs.append({"test": test, "value": value, "unit": lab["unit"], "date": day} | limits)
    treated = "blood_pressure" in data["kinds"][kind] or rng.random() < 0.25
    systolic, diastolic = spec["blood_pressure"]
    pressures = [
        {"date": screened, "systolic": rng.randint(*systolic), "diastolic": rng.randint(*diastolic),
         "on_treatment": treated}
        for _ in range(2)
    ]  # fmt: skip
    return labs, pressures


def _reproductive(course: Course, age: int) -> dict[str, Any]:
    """Childbearing potential, a negative pregnancy test the day before the first dose, contraception."""
    fertile, young = course.sex == "female" and age < 50, age < 50
    reproductive = {"partner_childbearing_potential": young} if course.sex == "male" else {
        "childbearing_potential": fertile, "pregnant": False, "lactating": False}  # fmt: skip
    if fertile:
        taken = dt.datetime.combine(course.first - DAY, dt.time(8, 30))
        reproductive["pregnancy_test"] = {"type": "serum", "result": "negative", "taken_at": taken}
    return reproductive | ({"contraception_agreed": True} if young else {})


def screen(demo: Demo, courses: list[Course]) -> None:
    """Patients, records and stored evaluations in screening order; the eligible enrolled in turn."""
    session, protocol, site = demo.session, demo.protocol, demo.data["site"]["code"]
    coordinator, investigator = demo.users["coordinator"], demo.users["investigator"]
    for course in courses:
        record, spec = dict(course.record), demo.data["kinds"][course.kind]
        name, mrn, born = record.pop("name"), record.pop("mrn"), dt.date.fromisoformat(record.pop("born"))
        audit.acting_as(session, coordinator.id, coordinator.username)
        patient = create_patient(session, site_code=site, full_name=name, medical_record_number=mrn,
                                 date_of_birth=born, sex=course.sex)  # fmt: skip
        if signed := record["consent"].get("date"):
            consent = Consent(
                patient_id=patient.id, form_version="1.0", signed_on=dt.date.fromisoformat(signed)
            )
            session.add(consent)
            course.rows["consent"] = consent
        saved = save_screening_record(session, patient=patient, record=record, user_id=coordinator.id)
        audit.acting_as(session, investigator.id, investigator.username)
        evaluation = evaluate_patient(session, patient=patient, protocol=protocol, user_id=investigator.id)
        course.rows |= {"patient": patient, "saved": saved, "evaluation": evaluation}
        wanted = "INCOMPLETE" if spec.get("consent") is False else "INELIGIBLE"
        wanted = "ELIGIBLE" if spec.get("enrol") else wanted
        if evaluation.decision != wanted:  # the data file and the criteria disagree: a bug, not a patient
            problem = evaluation.result["failed"] or evaluation.result["missing"]
            raise RuntimeError(f"demo {course.kind} record is {evaluation.decision}: {problem}")
        if wanted == "ELIGIBLE":
            course.rows["participant"] = enrol(
                session, patient=patient, protocol=protocol, user_id=investigator.id
            )
        elif wanted == "INELIGIBLE":
            with audit.because(session, f"screen failure: {', '.join(evaluation.result['failed'])}"):
                patient.status = "screen_failed"


def stamp_timeline(demo: Demo, courses: list[Course]) -> None:
    """Screening and enrolment stamps on the timeline (written at run time): 09:00-13:00 in Hangzhou."""
    audit.acting_as(demo.session, None, "demo")
    with audit.because(demo.session, "demo study: dates set on the synthetic timeline"):
        for user in demo.users.values():
            user.created_at = dt.datetime.combine(demo.today - 330 * DAY, dt.time(1), tzinfo=dt.UTC)
        for course in courses:
            rows, screened = course.rows, dt.datetime.combine(course.screened, dt.time(1), tzinfo=dt.UTC)
            rows["patient"].created_at = screened
            rows["saved"].saved_at = screened + dt.timedelta(days=2, hours=1)
            rows["evaluation"].evaluated_at = screened + dt.timedelta(days=2, hours=2)
            if "participant" in rows:
                rows["participant"].enrolled_at = screened + dt.timedelta(days=2, hours=4)
