"""The synthetic demo study: one site, one account per role, 60 screened patients, 35 participants.

Everything is invented and laid out relative to ``today``, the data cut-off: first doses every ~8
days over the ten months before it, each screening 1-2 weeks before its first dose, then every
course up to that day. One ``random.Random(seed)`` makes every choice, so a seed and a day give the
same study. The tables are ``demo_data.yaml``; the clinical engines decide the rest: each screening
record is evaluated and the evaluation stored, enrolment goes through ``screening.enrol``, results
and events are graded by ``safety.ctcae``, and the dosing log follows ``safety.dosing.recommend``.

A course: visits on the protocol's schedule (``safety.schedule.plan_visits``), a few missed or late;
recurrences (likelier in G3), one death after the earliest, a withdrawal and a loss to follow-up;
adverse events in exact counts per term and worst grade, each starting at the visit whose result
shows it (a clinical event on any day); dosing from the first dose to the end of six cycles, the
recurrence or the withdrawal, interrupted, reduced or stopped as the dose rules recommend for the
events (an event a discontinuation would hide is moved before it, so the counts hold); imaging
every three months; dispositions. The coordinator enters visits, results and dosing, the
investigator eligibility, enrolment, events, imaging and dispositions, all in one transaction, so
the audit trail holds every field; the screening and enrolment stamps, written at run time, are
then moved onto the timeline with that reason.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nettrial._yaml import load_yaml
from nettrial.eligibility.context import add_months
from nettrial.exceptions import ConflictError
from nettrial.protocol import load_protocol
from nettrial.safety.ctcae import GradeResult
from nettrial.safety.ctcae import grade as ctcae_grade
from nettrial.safety.dosing import DoseRecommendation, Interruption, recommend
from nettrial.safety.schedule import plan_visits
from nettrial.store import audit
from nettrial.store.db import Database, lock_writes
from nettrial.store.models import (
    AdverseEvent,
    Consent,
    Disposition,
    DosingPeriod,
    LabResult,
    Patient,
    TumourAssessment,
    User,
    Visit,
    VitalSigns,
)
from nettrial.store.screening import (
    create_patient,
    create_site,
    enrol,
    evaluate_patient,
    save_screening_record,
)
from nettrial.store.users import ROLES, create_user

DAY = dt.timedelta(days=1)
# The participant status a disposition implies (as store.assessments sets it).
_IMPLIED = {
    "treatment": "follow_up",
    "withdrawn": "off_study",
    "lost_to_follow_up": "off_study",
    "death": "died",
}


@cache
def _data() -> dict[str, Any]:
    return load_yaml(Path(__file__).with_name("demo_data.yaml").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class DemoSummary:
    """What ``create_demo_study`` made; ``explain`` lists it with the demo accounts."""

    seed: int
    today: dt.date
    site: str
    users: tuple[tuple[str, str], ...]  # (username, password); the username is the role
    patients: int
    participants: int
    screen_failures: int
    incomplete: int
    treatment: tuple[tuple[str, int], ...]  # (ongoing | completed | adverse_event | ..., participants)
    adverse_events: int
    serious_adverse_events: int
    recurrences: int
    deaths: int

    def explain(self) -> str:
        ended = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in self.treatment)
        lines = [
            f"demo study NCT07279532 (synthetic; seed {self.seed}, data cut-off {self.today})",
            f"  site {self.site}",
            f"  {self.patients} patients screened: {self.participants} enrolled (NET-001..NET-"
            f"{self.participants:03d}), {self.screen_failures} screen failures, {self.incomplete} incomplete",
            f"  treatment: {ended}",
            f"  {self.adverse_events} adverse events ({self.serious_adverse_events} serious), "
            f"{self.recurrences} recurrences, {self.deaths} death(s)",
            "demo users (change these passwords before any real use):",
        ]
        return "\n".join(lines + [f"  {name:<13} password {password}" for name, password in self.users])


def is_empty(db: Database) -> bool:
    """True when the database holds no patient and no user (a demo study may be created)."""
    with db.session(write=False) as session:
        return not _count(session, Patient) and not _count(session, User)


def create_demo_study(db: Database, *, seed: int = 20261123, today: dt.date | None = None) -> DemoSummary:
    """Create the demo study in one transaction; ``ConflictError`` unless the database is empty."""
    today = today or dt.date.today()
    with db.session() as session:
        lock_writes(session)
        if _count(session, Patient) or _count(session, User):
            raise ConflictError("database", "the demo study needs an empty database; this one holds a study")
        courses = _Builder(session, seed, today).build()
    enrolled = [c for c in courses if "participant" in c.rows]
    events = [e.row for c in enrolled for e in c.events]
    site = _data()["site"]
    return DemoSummary(
        seed=seed,
        today=today,
        site=f"{site['code']} ({site['name']})",
        users=tuple((role, f"{role}-demo") for role in ROLES),
        patients=len(courses),
        participants=len(enrolled),
        screen_failures=sum(c.rows["patient"].status == "screen_failed" for c in courses),
        incomplete=sum(c.rows["evaluation"].decision == "INCOMPLETE" for c in courses),
        treatment=tuple(Counter(c.stopped[0] if c.stopped else "ongoing" for c in enrolled).most_common()),
        adverse_events=len(events),
        serious_adverse_events=sum(e.serious for e in events),
        recurrences=sum(c.recurrence is not None for c in enrolled),
        deaths=sum(c.death is not None for c in enrolled),
    )


def _count(session: Session, table: type) -> int:
    return session.scalar(select(func.count()).select_from(table)) or 0


@dataclass
class _Event:
    """An adverse event as planned: grade, onset, end, the value that shows it, what was done."""

    spec: dict[str, Any]
    grade: int
    onset: dt.date
    ends: dt.date
    value: Any = None
    action: str = "none"
    advice: dict[str, Any] | None = None
    row: AdverseEvent | None = None


@dataclass
class _Course:
    """One patient's screening and, once enrolled, course, planned before its rows are written."""

    kind: str  # a key of the data's ``kinds``
    first: dt.date  # the planned first dose, given on that day
    screened: dt.date
    sex: str
    baseline: dict[str, float]
    record: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, Any] = field(default_factory=dict)  # patient, saved, evaluation, consent, participant
    # (code, the last day of its window, the day done or None when missed, note)
    visits: list[tuple[str, dt.date, dt.date | None, str | None]] = field(default_factory=list)
    scans: list[tuple[str, dt.date]] = field(default_factory=list)
    events: list[_Event] = field(default_factory=list)
    periods: list[list[Any]] = field(default_factory=list)  # [level, start, stop, reason, event]
    panels: dict[dt.date, dict[str, float]] = field(default_factory=dict)
    cut: dt.date = dt.date.max  # the planned end of dosing: six cycles, recurrence or withdrawal
    ended: dt.date = dt.date.max  # the end of dosing (cut, or an earlier discontinuation)
    stopped: tuple[str, str] | None = None  # the treatment disposition (status, reason); None: ongoing
    recurrence: tuple[dt.date, list[str]] | None = None
    death: dt.date | None = None
    withdrawn: dt.date | None = None
    lost: dt.date | None = None

    @property
    def follow_end(self) -> dt.date:
        return min(d or dt.date.max for d in (self.death, self.withdrawn, self.lost))


def _limit(spec: dict[str, Any], key: str, sex: str) -> Any:
    value = spec.get(key)
    return value[sex] if isinstance(value, dict) else value


class _Builder:
    """Plans the study from one random source, the data tables and the protocol, then writes it."""

    def __init__(self, session: Session, seed: int, today: dt.date) -> None:
        self.session, self.today, self.rng = session, today, random.Random(seed)
        self.data, self.protocol = _data(), load_protocol("nct07279532")
        self.users: dict[str, User] = {}

    def build(self) -> list[_Course]:
        session, data, site = self.session, self.data, self.data["site"]
        audit.acting_as(session, None, "demo")
        create_site(session, code=site["code"], name=site["name"])
        for role in ROLES:
            name, password = data["users"][role], f"{role}-demo"
            self.users[role] = create_user(
                session, username=role, password=password, role=role, full_name=name, site_code=site["code"]
            )
        courses = self.plan_screening()
        self.screen(courses)
        enrolled = [c for c in courses if "participant" in c.rows]
        self.plan_courses(enrolled)
        for course in enrolled:
            hidden = self.dose(course)
            for _ in range(3):  # an event a discontinuation would hide moves to its last day; dose again
                for event in hidden:
                    if days := [d for d in self.onset_days(course, event.spec) if d <= course.ended]:
                        event.onset, event.ends = days[-1], days[-1] + (event.ends - event.onset)
                hidden = hidden and self.dose(course)
            course.events = [e for e in course.events if e.advice is not None]
        self.write(enrolled)
        self.set_dates(courses)
        return courses

    def between(self, low: float, high: float) -> float:
        value = self.rng.uniform(low, high)
        return round(value) if high >= 50 else round(value, 2)

    def pick(self, items: list, n: int, weights: list[float]) -> list:
        """``n`` items without replacement, likelier by weight (Efraimidis-Spirakis keys)."""
        keys = [self.rng.random() ** (1 / w) for w in weights]
        return [items[i] for i in sorted(range(len(items)), key=lambda i: -keys[i])[:n]]

    # --- screening -------------------------------------------------------------------------------

    def plan_screening(self) -> list[_Course]:
        """First doses every ~8 days over ten months, screen failures among them, in screening order."""
        rng, data, today = self.rng, self.data, self.today
        kinds = [k for k, spec in data["kinds"].items() for _ in range(spec["count"]) if spec.get("enrol")]
        rng.shuffle(kinds)
        step = 272 / (len(kinds) - 1)
        slots = [(today - (300 - round(i * step) + rng.randint(-1, 1)) * DAY, k) for i, k in enumerate(kinds)]
        failing = [
            k for k, spec in data["kinds"].items() if not spec.get("enrol") for _ in range(spec["count"])
        ]
        slots += [(today - rng.randint(20, 300) * DAY, kind) for kind in failing]
        courses, taken = [], set()
        for first, kind in slots:
            sex = rng.choice(("female", "male"))
            baseline = {test: self.between(*_limit(lab, "normal", sex)) for test, lab in data["labs"].items()}
            course = _Course(kind, first, first - rng.randint(7, 11) * DAY, sex, baseline)
            name = mrn = ""
            while not name or name in taken or mrn in taken:
                name = f"{rng.choice(data['names']['surnames'])} {rng.choice(data['names'][sex])}"
                mrn = str(rng.randint(20_000_000, 29_999_999))  # eight digits, as the hospital's
            taken |= {name, mrn}
            course.record = self.record(course) | {"name": name, "mrn": mrn}
            courses.append(course)
        return sorted(courses, key=lambda c: (c.screened, c.first))

    def record(self, course: _Course) -> dict[str, Any]:
        """A screening record (schema 1.0): eligible stage III, but for what the patient's kind changes."""
        rng, data, sites = self.rng, self.data, self.data["tumour_sites"]
        kind, first, screened, sex = course.kind, course.first, course.screened, course.sex
        spec = data["defaults"] | data["kinds"][kind]
        age, consented = rng.randint(*spec["age"]), screened - rng.randint(0, 3) * DAY
        site = rng.choices(list(sites), [s["weight"] for s in sites.values()])[0]
        positive = spec["nodes"] == "positive" or (spec["nodes"] == "either" and rng.random() < 0.5)
        findings = sites[site]["node_positive" if positive else "node_negative"]
        ki67 = rng.randint(*spec["ki67"])
        poor = spec.get("differentiation") == "poor"
        pathology = {
            "site": site, "size_mm": rng.randint(*findings["size_mm"]),
            "extent": rng.choice(findings["extent"]),
            "nodes_positive": rng.randint(1, 6) if positive else 0, "nodes_examined": rng.randint(8, 24),
            "metastasis": [], "ki67_percent": ki67, "differentiation": "poor" if poor else "well",
            "mitoses_per_2mm2": rng.randint(*spec.get("mitoses", (0, 1) if ki67 < 3 else (2, 12))),
            "tumour_type": "nec" if poor else "net", "lymphovascular_invasion": rng.random() < 0.45,
            "perineural_invasion": rng.random() < 0.25,
        } | ({"mesenteric_mass_mm": 0} if site == "small intestine" else {})  # fmt: skip
        labs = []
        for test in data["screening_labs"]:
            lab = data["labs"][test]
            value = self.between(*spec["lab"]) if test == kind else course.baseline[test]
            limits = {k: _limit(lab, k, sex) for k in ("lln", "uln") if k in lab}
            day = screened + rng.randint(0, 1) * DAY
            labs.append({"test": test, "value": value, "unit": lab["unit"], "date": day} | limits)
        treated = "blood_pressure" in data["kinds"][kind] or rng.random() < 0.25
        systolic, diastolic = spec["blood_pressure"]
        pressures = [
            {"date": screened, "systolic": rng.randint(*systolic), "diastolic": rng.randint(*diastolic),
             "on_treatment": treated}
            for _ in range(2)
        ]  # fmt: skip
        days = spec.get("history_days")
        history = [{"kind": kind, "date": first - rng.randint(*days) * DAY}] if days else []
        fertile, young = sex == "female" and age < 50, age < 50
        reproductive = {"partner_childbearing_potential": young} if sex == "male" else {
            "childbearing_potential": fertile, "pregnant": False, "lactating": False}  # fmt: skip
        if fertile:
            taken = dt.datetime.combine(first - DAY, dt.time(8, 30))
            reproductive["pregnancy_test"] = {"type": "serum", "result": "negative", "taken_at": taken}
        reproductive |= {"contraception_agreed": True} if young else {}
        by, at = data["users"]["investigator"], dt.datetime.combine(screened + 2 * DAY, dt.time(10))
        attestations = {"E9": {"answer": "no", "by": by, "at": at}}
        if "I4" in spec:
            attestations["I4"] = {"answer": "no", "by": by, "at": at, "note": spec["I4"]}
        weight = round(rng.uniform(*{"male": (58, 84), "female": (47, 70)}[sex]), 1)
        procedure, margin = rng.choice(sites[site]["procedures"]), "R0" if rng.random() > 0.08 else "R1"
        born = dt.date(consented.year - age, rng.randint(1, 12), rng.randint(1, 28))
        surgery = first - rng.randint(*spec["surgery_days"]) * DAY
        return _json({
            "identity": {"weight": {"value": weight, "unit": "kg", "date": screened}},
            "screening_date": screened, "planned_first_dose": dt.datetime.combine(first, dt.time(9)),
            "surgery": {"date": surgery, "procedure": procedure, "margin": margin}, "pathology": pathology,
            "consent": {"signed": True, "date": consented} if spec.get("consent", True) else {},
            "liver_metastases": False, "symptomatic": rng.random() < 0.1, "labs": labs,
            "supportive_care": {"reviewed": True, "items": []}, "blood_pressure": pressures,
            "history": {"reviewed": True, "events": history}, "reproductive": reproductive,
            "attestations": attestations, "born": born,
        })  # fmt: skip

    def screen(self, courses: list[_Course]) -> None:
        """Patients, records and stored evaluations in screening order; the eligible enrolled in turn."""
        session, protocol, site = self.session, self.protocol, self.data["site"]["code"]
        coordinator, investigator = self.users["coordinator"], self.users["investigator"]
        for course in courses:
            record, spec = dict(course.record), self.data["kinds"][course.kind]
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
            evaluation = evaluate_patient(
                session, patient=patient, protocol=protocol, user_id=investigator.id
            )
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

    # --- the course of each participant ----------------------------------------------------------

    def plan_courses(self, courses: list[_Course]) -> None:
        """Visits and scans; recurrences, the death, a withdrawal, a loss to follow-up; then events."""
        rng, data, today, odds = self.rng, self.data, self.today, self.data["visits"]
        for course in courses:
            for visit in plan_visits(self.protocol, course.first):
                window = (visit.latest - visit.target).days
                done = visit.target + rng.randint(-window, window) * DAY
                if visit.kind == "imaging" and done < today and rng.random() > odds["scan_missed"]:
                    course.scans.append((visit.id, done))
                elif visit.kind == "treatment" and visit.latest + 3 * DAY < today:
                    course.visits.append((visit.id, visit.latest, done, None))
        # A few visits of the first three cycles missed, a couple late (outside their window).
        early = [(c, i) for c in courses for i, v in enumerate(c.visits) if 0 < (v[1] - c.first).days < 90]
        for n, (course, i) in enumerate(rng.sample(early, odds["missed"] + odds["late"])):
            code, latest, _, _ = course.visits[i]
            late = latest + rng.randint(1, 3) * DAY
            missed = (code, latest, None, "missed: the participant did not attend")
            late = (code, latest, late, "late: outside the visit window")
            course.visits[i] = missed if n < odds["missed"] else late
        scanned = [c for c in courses if c.scans]
        weights = [3.0 if c.kind == "g3" else 1.0 for c in scanned]
        chosen = self.pick(scanned, len(data["recurrences"]), weights)
        for course, sites in zip(chosen, data["recurrences"], strict=True):
            day = rng.choice(course.scans[:2])[1]
            course.recurrence, course.scans = (day, sites), [s for s in course.scans if s[1] <= day]
        dead = min(chosen, key=lambda c: c.recurrence[0])
        dead.death = dead.recurrence[0] + rng.randint(*data["death"]["after_recurrence_days"]) * DAY
        dead.death = min(today - DAY, dead.death)
        others = [c for c in courses if c not in chosen]
        gone = rng.choice([c for c in others if 120 <= (today - c.first).days <= 260])
        gone.withdrawn = gone.first + rng.randint(50, 100) * DAY
        lost = rng.choice([c for c in others if (today - c.first).days >= 250 and c is not gone])
        lost.lost = min(today - DAY, add_months(lost.first, 6) + rng.randint(40, 70) * DAY)
        treatment = self.protocol.treatment
        for course in courses:
            course.scans = [s for s in course.scans if s[1] <= course.follow_end]
            end = course.first + (treatment.cycles * treatment.cycle_days - 1) * DAY
            recurred = course.recurrence[0] if course.recurrence else None
            course.cut = min(d for d in (end, recurred, course.withdrawn) if d)
        for spec in data["adverse_events"]:
            self.plan_events(spec, courses)

    def onset_days(self, course: _Course, spec: dict) -> list[dt.date]:
        """Days an event may start on while dosing is planned: a result's visit, or any day after C1D1."""
        last = min(course.cut, self.today - DAY)
        if "test" not in spec:
            return [course.first + n * DAY for n in range(1, (last - course.first).days + 1)]
        only = self.data["labs"].get(spec["test"], {}).get("visits")
        visits = [(code, day) for code, _, day, _ in course.visits if day and course.first < day <= last]
        return [day for code, day in visits if not only or code in only]

    def plan_events(self, spec: dict, courses: list[_Course]) -> None:
        """One term's events: exact counts by worst grade, among the participants it can happen to."""
        rng, data = self.rng, self.data
        grades = [grade for grade, n in spec["grades"].items() for _ in range(n)]
        rng.shuffle(grades)
        able = [c for c in courses if self.onset_days(c, spec)]
        prefer = spec.get("prefer", {})  # likelier (AST with ALT) or kept apart (TSH from hypothyroidism)
        weights = [math.prod(prefer.get(e.spec["term"], 1.0) for e in c.events) for c in able]
        heavy, lab = spec.get("heavy_grade_2", 0), data["labs"].get(spec.get("test"), {})
        for course, grade in zip(self.pick(able, len(grades), weights), grades, strict=False):
            target = course.first + rng.randint(*spec["onset"]) * DAY
            onset = min(self.onset_days(course, spec), key=lambda d: abs((d - target).days))
            event = _Event(spec, grade, onset, onset + rng.randint(*spec["lasts"]) * DAY)
            if spec.get("test") == "blood_pressure":
                event.value = "/".join(str(rng.randint(*r)) for r in data["blood_pressure"]["grades"][grade])
            elif lab:  # some grade 2 proteinuria >= 2 g/24 h, where the dose rule applies
                event.value = self.between(
                    *(lab["heavy"] if grade == 2 and heavy > 0 else lab["grades"][grade])
                )
                heavy -= grade == 2
            course.events.append(event)

    def panel(self, course: _Course, day: dt.date, visit: str) -> dict[str, float]:
        """A visit's results: near baseline, unless an event shows in the test (the worst, if several)."""
        if day not in course.panels:
            panel = course.panels[day] = {}
            for test, lab in self.data["labs"].items():
                if lab.get("visits") and visit not in lab["visits"]:
                    continue
                terms = (lab["term"], *lab.get("with", ()))
                active = [e for e in course.events if e.spec["term"] in terms and e.onset <= day <= e.ends]
                event = max(active, key=lambda e: e.grade, default=None)
                own = event and event.spec.get("test") == test
                if own and event.onset == day:
                    panel[test] = event.value
                elif event:  # recovering, or another event moving this test (TSH with hypothyroidism)
                    panel[test] = self.between(*lab["grades"][max(1, event.grade - 1) if own else 1])
                else:
                    low, high = _limit(lab, "normal", course.sex)
                    near = self.between(course.baseline[test] * 0.9, course.baseline[test] * 1.1)
                    panel[test] = min(high, max(low, near))
        return course.panels[day]

    def measures(self, course: _Course, event: _Event, visit: str) -> dict[str, float]:
        """What the dose rules need beyond term and grade: x ULN, the liver tests, urine protein."""
        test, labs = event.spec.get("test"), self.data["labs"]
        if test not in labs:
            return {}
        panel, uln = self.panel(course, event.onset, visit), _limit(labs[test], "uln", course.sex)
        measures = {"x_uln": round(event.value / uln, 4)} if uln else {}
        if test in ("alt", "ast", "bilirubin"):
            measures["alt_or_ast_x_uln"] = round(max(panel[t] / labs[t]["uln"] for t in ("alt", "ast")), 4)
            measures["bilirubin_x_uln"] = round(panel["bilirubin"] / labs["bilirubin"]["uln"], 4)
        return measures | ({"urine_protein_g_24h": event.value} if test == "urine_protein" else {})

    def dose(self, course: _Course) -> list[_Event]:
        """The dosing log the events lead to, as the dose rules recommend; returns the events it hides."""
        rng, protocol, today, cut = self.rng, self.protocol, self.today, course.cut
        level, start, stop, hidden = 0, course.first, None, []
        course.periods, course.panels, course.stopped = [[0, course.first, None, None, None]], {}, None
        visit_of = {d: v for v, _, d, _ in course.visits if d}

        def close(day: dt.date, reason: str, event: _Event | None = None) -> None:
            course.periods[-1][2:] = [day, reason, event]

        def resume(day: dt.date | None) -> dt.date | None:
            course.periods.extend([[level, day, None, None, None]] if day else [])
            return day

        for event in sorted(course.events, key=lambda e: (e.onset, e.spec["term"])):
            term, event.advice, event.action = event.spec["term"], None, "none"
            if stop and event.onset > stop and ("test" in event.spec or event.onset > stop + 30 * DAY):
                hidden.append(event)  # after a discontinuation, and no longer treatment-emergent
                continue
            measures = self.measures(course, event, visit_of.get(event.onset, ""))
            advice = recommend(protocol, level=level, term=term, grade=event.grade, measures=measures)
            event.advice = advice.to_dict() | {"at_dose_level": level, "measures": measures}
            if stop or start is None or event.onset < start:
                event.action = "not_applicable"  # no drug was being taken
            elif advice.action == "continue":
                if event.grade == 2 and rng.random() < event.spec.get("hold_grade_2", 0):
                    close(event.onset, "interruption", event)  # the investigator holds a few days anyway
                    back = event.onset + rng.randint(4, 8) * DAY
                    event.action, start = (
                        "dose_interrupted",
                        resume(back if back <= min(cut, today) else None),
                    )
            elif advice.action == "discontinue":
                close(event.onset, "discontinued", event)
                event.action, stop, course.stopped = "drug_withdrawn", event.onset, _why(event, advice)
            else:  # interrupt; resume one level lower if the event recovers in time, as the rules then say
                late = rng.random() < self.data["not_recovered_in_time"]
                days = rng.randint(29, 35) if late else rng.randint(5, 21)
                now = {"urine_protein_g_24h": 0.6} if "urine_protein_g_24h" in measures else {}
                after = recommend(protocol, level=level, term=term, grade=event.grade, measures=measures,
                                  interruption=Interruption(days, 1, now))  # fmt: skip
                if event.onset + days * DAY > min(cut, today):
                    close(event.onset, "interruption", event)
                    event.action, start = "dose_interrupted", None
                elif after.action == "resume":
                    close(event.onset, "reduction", event)
                    event.action, level = "dose_reduced", after.dose_level
                    start = resume(event.onset + days * DAY)
                else:
                    close(event.onset, "discontinued", event)
                    event.action, stop, course.stopped = "drug_withdrawn", event.onset, _why(event, after)
        course.ended = stop or cut
        if stop is None and cut < today:
            recurred = course.recurrence is not None and cut == course.recurrence[0]
            status = "withdrawn" if cut == course.withdrawn else "recurrence" if recurred else "completed"
            course.stopped = (status, self.data["treatment_ended"][status])
            if start is not None:
                close(cut, "completed" if status == "completed" else "discontinued")
        return hidden

    # --- rows ------------------------------------------------------------------------------------

    def write(self, courses: list[_Course]) -> None:
        """Every course's rows: the investigator's (events, imaging, dispositions), then the coordinator's."""
        session, investigator = self.session, self.users["investigator"]
        audit.acting_as(session, investigator.id, investigator.username)
        implied: dict[str, list] = {}
        for course in courses:
            for event in course.events:
                event.row = self.event_row(course, event)
            session.add_all(e.row for e in course.events)
            session.add_all(self.imaging(course))
            session.add_all(ends := self.dispositions(course))
            if ends:  # the participant's status follows the last (strongest) disposition
                status = _IMPLIED["treatment" if ends[-1].phase == "treatment" else ends[-1].status]
                reason = f"{ends[-1].phase} disposition: {ends[-1].status}"
                implied.setdefault(reason, []).append((course.rows["participant"], status))
        session.flush()
        for reason, changes in implied.items():
            with audit.because(session, reason):
                for participant, status in changes:
                    participant.status = status
        coordinator = self.users["coordinator"]
        audit.acting_as(session, coordinator.id, coordinator.username)
        for baseline in (True, False):  # C1D1 first: its results are the baseline every later one names
            for course in courses:
                self.visits(course, baseline)
            session.flush()
        with audit.because(session, "the participant withdrew consent"):
            for course in courses:
                if course.withdrawn:
                    course.rows["consent"].withdrawn_on = course.withdrawn

    def imaging(self, course: _Course) -> list[TumourAssessment]:
        """The baseline scan at screening, then every three months; a recurrence ends the series."""
        rng, methods, scans = self.rng, self.data["imaging_methods"], []
        for code, day in [("SCREENING", course.screened - rng.randint(0, 3) * DAY), *course.scans]:
            recurred = course.recurrence is not None and day == course.recurrence[0]
            therapy = day + rng.randint(14, 40) * DAY if recurred else dt.date.max
            scans.append(TumourAssessment(
                participant_id=course.rows["participant"].id, assessed_on=day, visit_code=code,
                method=rng.choices(list(methods), list(methods.values()))[0],
                result="recurrence" if recurred else "no_evidence_of_disease",
                recurrence_sites=course.recurrence[1] if recurred else [],
                new_anticancer_therapy_on=therapy if therapy < min(self.today, course.follow_end) else None,
            ))  # fmt: skip
        return scans

    def dispositions(self, course: _Course) -> list[Disposition]:
        """How treatment ended (when it has), then how the study ended (death, withdrawal, loss)."""
        pid, ends, data = course.rows["participant"].id, [], self.data
        if course.stopped:
            status, reason = course.stopped
            ends.append(Disposition(
                participant_id=pid, phase="treatment", status=status, status_date=course.ended, reason=reason
            ))  # fmt: skip
        left = {"death": course.death, "withdrawn": course.withdrawn, "lost_to_follow_up": course.lost}
        for status, day in ((status, day) for status, day in left.items() if day):
            sites = ", ".join(course.recurrence[1]) if status == "death" else None
            ends.append(Disposition(
                participant_id=pid, phase="study", status=status, status_date=day,
                reason=data["left_study"][status],
                cause_of_death=sites and data["death"]["cause"].format(sites=sites),
            ))  # fmt: skip
        return ends

    def visits(self, course: _Course, baseline: bool) -> None:
        """Visits (done or missed) while dosing went on and at its end, with results; C1D1 first."""
        rng, session, today = self.rng, self.session, self.today
        pid, visits = course.rows["participant"].id, list(course.visits)
        eot = course.ended + (30 + rng.randint(-5, 5)) * DAY  # none after a withdrawal of consent
        if course.stopped and course.stopped[0] != "withdrawn" and eot < today and eot <= course.follow_end:
            visits.append(("EOT", eot, eot, None))
        for code, latest, day, note in visits:
            due = code == "EOT" or (day or latest) <= min(course.ended, course.follow_end)
            if due and (code == "C1D1") == baseline:
                status = "done" if day else "missed"
                visit = Visit(participant_id=pid, visit_code=code, status=status, visit_date=day, note=note)
                session.add(visit)
                session.add_all(self.results(course, day, code) if day else [])
        for level, start, stop, reason, event in course.periods if baseline else ():
            missed = rng.choice((0, 1, 2)) if level == 0 and ((stop or today) - start).days >= 14 else 0
            session.add(DosingPeriod(
                participant_id=pid, dose_level=level, start_date=start, stop_date=stop, stop_reason=reason,
                adverse_event_id=event and event.row.id, missed_doses=missed,
            ))  # fmt: skip

    def event_row(self, course: _Course, event: _Event) -> AdverseEvent:
        """The event as the investigator records it, with CTCAE's suggestion and the dose advice."""
        spec, sex, today = event.spec, course.sex, self.today
        lab = self.data["labs"].get(spec.get("test"), {})
        lln, uln = _limit(lab, "lln", sex), _limit(lab, "uln", sex)
        unit = "mmHg" if spec.get("test") == "blood_pressure" else lab.get("unit")
        baseline = self.panel(course, course.first, "C1D1").get(spec.get("test")) if uln else None
        answers = spec.get("answers", {}).get(event.grade)
        suggestion = ctcae_grade(
            spec["term"], event.value, unit, lln=lln, uln=uln, baseline=baseline, answers=answers
        )
        outcome, resolved = "recovered", event.ends
        if event.ends > min(today, course.follow_end):
            resolved = None
            outcome = "recovering" if (today - event.onset).days > 14 else "not_recovered"
            if course.follow_end < today:
                outcome = "not_recovered" if course.death else "unknown"
        criteria, related = list(spec.get("serious", {}).get(event.grade, [])), spec["related"]
        return AdverseEvent(
            participant_id=course.rows["participant"].id, term=suggestion.term, soc=suggestion.soc,
            ctcae_version=suggestion.version, grade=event.grade, onset_date=event.onset,
            resolved_date=resolved, outcome=outcome, action_taken=event.action,
            serious=bool(criteria), serious_criteria=criteria,
            relatedness=self.rng.choices(list(related), list(related.values()))[0],
            answers=suggestion.inputs["answers"] or None, suggested_grade=suggestion.grade,
            recommendation=_json(event.advice), reviewed_by=self.users["investigator"].id,
        )  # fmt: skip

    def results(self, course: _Course, day: dt.date, visit: str) -> list[Any]:
        """A visit's results, graded against the C1D1 ones (the baseline, as store.measurements does)."""
        pid, sex, rows = course.rows["participant"].id, course.sex, []
        baseline = course.rows.setdefault("c1d1", {})
        for test, value in self.panel(course, day, visit).items():
            lab, base = self.data["labs"][test], baseline.get(test)
            lln, uln = _limit(lab, "lln", sex), _limit(lab, "uln", sex)
            result = ctcae_grade(
                lab["term"], value, lab["unit"], lln=lln, uln=uln, baseline=base and base.value
            )
            source = base and {"lab_id": base.id, "collected_on": base.collected_on.isoformat()}
            rows.append(LabResult(
                participant_id=pid, test=test, value=value, unit=lab["unit"], lln=lln, uln=uln,
                collected_on=day, visit_code=visit, ctcae_term=result.term, ctcae_grade=result.grade,
                ctcae_version=result.version, grading=_graded(result) | {"baseline_source": source},
            ))  # fmt: skip
        pressure = self.data["blood_pressure"]
        active = [e for e in course.events if e.spec["term"] == "Hypertension" and e.onset <= day <= e.ends]
        ranges = pressure["grades"][max(1, active[0].grade - 1)] if active else pressure["normal"]
        reading = "/".join(str(self.rng.randint(*r)) for r in ranges)
        reading = active[0].value if active and active[0].onset == day else reading
        grades = {"Hypertension": _graded(ctcae_grade("Hypertension", reading, "mmHg"))}
        weight = round(course.record["identity"]["weight"]["value"] + self.rng.uniform(-2.5, 1), 1)
        if base := baseline.get("vitals"):
            source = {"vital_signs_id": base.id, "measured_on": base.measured_on.isoformat()}
            grades["Weight loss"] = _graded(ctcae_grade("Weight loss", weight, "kg", baseline=base.weight_kg))
            grades["Weight loss"]["baseline_source"] = source
        systolic, diastolic = (int(x) for x in reading.split("/"))
        rows.append(VitalSigns(
            participant_id=pid, measured_on=day, visit_code=visit, systolic_mmhg=systolic,
            diastolic_mmhg=diastolic, heart_rate_bpm=self.rng.randint(62, 92), weight_kg=weight,
            temperature_c=round(self.rng.uniform(36.2, 37.1), 1), ctcae_grades=grades,
        ))  # fmt: skip
        if visit == "C1D1":
            baseline |= {r.test: r for r in rows[:-1]} | {"vitals": rows[-1]}
        return rows

    def set_dates(self, courses: list[_Course]) -> None:
        """Screening and enrolment stamps on the timeline (written at run time): 09:00-13:00 in Hangzhou."""
        audit.acting_as(self.session, None, "demo")
        with audit.because(self.session, "demo study: dates set on the synthetic timeline"):
            for user in self.users.values():
                user.created_at = dt.datetime.combine(self.today - 330 * DAY, dt.time(1), tzinfo=dt.UTC)
            for course in courses:
                rows, screened = course.rows, dt.datetime.combine(course.screened, dt.time(1), tzinfo=dt.UTC)
                rows["patient"].created_at = screened
                rows["saved"].saved_at = screened + dt.timedelta(days=2, hours=1)
                rows["evaluation"].evaluated_at = screened + dt.timedelta(days=2, hours=2)
                if "participant" in rows:
                    rows["participant"].enrolled_at = screened + dt.timedelta(days=2, hours=4)


def _why(event: _Event, advice: DoseRecommendation) -> tuple[str, str]:
    """The treatment disposition an adverse event's discontinuation gives."""
    term, reason = event.spec["term"], advice.reason
    reason = reason if reason.startswith(term) else f"{term} grade {event.grade}: {reason}"
    return "adverse_event", f"{reason} (rule {advice.rule})"


def _graded(result: GradeResult) -> dict[str, Any]:
    """``result.to_dict()`` as plain JSON, built directly: thousands of ``asdict`` copies are slow."""
    found = {name: getattr(result, name) for name in result.__dataclass_fields__}
    found |= {key: list(value) for key, value in found.items() if isinstance(value, tuple)}
    found["fired"] = [{"grade": f.grade, "rule": f.rule, "review": f.review} for f in result.fired]
    return found | {"inputs": result.inputs | {"answers": dict(result.inputs["answers"])}}


def _json(value: Any) -> Any:
    """Plain JSON (tuples as lists, dates as ISO text): reads the same on SQLite and PostgreSQL."""
    return json.loads(json.dumps(value, default=lambda v: v.isoformat()))
