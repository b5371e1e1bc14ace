"""The demo study's visits and results: the protocol's schedule, a few visits missed or late, each graded.

Visits follow the protocol (``safety.schedule.plan_visits``) up to the cut-off, imaging every three
months among them. A visit's results stay near the participant's baseline unless an adverse event
shows in the test; the coordinator enters them, each graded by ``safety.ctcae`` against the C1D1
results as ``store.measurements`` does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from nettrial.safety.ctcae import GradeResult
from nettrial.safety.ctcae import grade as ctcae_grade
from nettrial.safety.schedule import plan_visits
from nettrial.store._demo_plan import DAY, Course, Demo, limit
from nettrial.store.models import LabResult, Visit, VitalSigns


def plan_schedule(demo: Demo, courses: list[Course]) -> None:
    """Visits and scans on the protocol's schedule up to the cut-off; a few early visits missed or late."""
    rng, today, odds = demo.rng, demo.today, demo.data["visits"]
    for course in courses:
        for visit in plan_visits(demo.protocol, course.first):
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


def panel(demo: Demo, course: Course, day: dt.date, visit: str) -> dict[str, float]:
    """A visit's results: near baseline, unless an event shows in the test (the worst, if several)."""
    if day not in course.panels:
        panel = course.panels[day] = {}
        for test, lab in demo.data["labs"].items():
            if lab.get("visits") and visit not in lab["visits"]:
                continue
            terms = (lab["term"], *lab.get("with", ()))
            active = [e for e in course.events if e.spec["term"] in terms and e.onset <= day <= e.ends]
            event = max(active, key=lambda e: e.grade, default=None)
            own = event and event.spec.get("test") == test
            if own and event.onset == day:
                panel[test] = event.value
            elif event:  # recovering, or another event moving this test (TSH with hypothyroidism)
                panel[test] = demo.between(*lab["grades"][max(1, event.grade - 1) if own else 1])
            else:
                low, high = limit(lab, "normal", course.sex)
                near = demo.between(course.baseline[test] * 0.9, course.baseline[test] * 1.1)
                panel[test] = min(high, max(low, near))
    return course.panels[day]


def record_visits(demo: Demo, course: Course, baseline: bool) -> None:
    """Visits (done or missed) while dosing went on and at its end, with results; C1D1 first."""
    rng, session, today = demo.rng, demo.session, demo.today
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
            session.add_all(_results(demo, course, day, code) if day else [])


def _results(demo: Demo, course: Course, day: dt.date, visit: str) -> list[Any]:
    """A visit's results, graded against the C1D1 ones (the baseline, as store.measurements does)."""
    pid, sex, rows = course.rows["participant"].id, course.sex, []
    baseline = course.rows.setdefault("c1d1", {})
    for test, value in panel(demo, course, day, visit).items():
        lab, base = demo.data["labs"][test], baseline.get(test)
        lln, uln = limit(lab, "lln", sex), limit(lab, "uln", sex)
        result = ctcae_grade(lab["term"], value, lab["unit"], lln=lln, uln=uln, baseline=base and base.value)
        source = base and {"lab_id": base.id, "collected_on": base.collected_on.isoformat()}
        rows.append(LabResult(
            participant_id=pid, test=test, value=value, unit=lab["unit"], lln=lln, uln=uln,
            collected_on=day, visit_code=visit, ctcae_term=result.term, ctcae_grade=result.grade,
            ctcae_version=result.version, grading=_graded(result) | {"baseline_source": source},
        ))  # fmt: skip
    rows.append(_vital_signs(demo, course, day, visit, baseline.get("vitals")))
    if visit == "C1D1":
        baseline |= {r.test: r for r in rows[:-1]} | {"vitals": rows[-1]}
    return rows


def _vital_signs(demo: Demo, course: Course, day: dt.date, visit: str, base: Any) -> VitalSigns:
    """A visit's vital signs: the pressure an active hypertension shows, weight graded against C1D1's."""
    rng, pressure = demo.rng, demo.data["blood_pressure"]
    active = [e for e in course.events if e.spec["term"] == "Hypertension" and e.onset <= day <= e.ends]
    ranges = pressure["grades"][max(1, active[0].grade - 1)] if active else pressure["normal"]
    reading = "/".join(str(rng.randint(*r)) for r in ranges)
    reading = active[0].value if active and active[0].onset == day else reading
    grades = {"Hypertension": _graded(ctcae_grade("Hypertension", reading, "mmHg"))}
    weight = round(course.record["identity"]["weight"]["value"] + rng.uniform(-2.5, 1), 1)
    if base:
        source = {"vital_signs_id": base.id, "measured_on": base.measured_on.isoformat()}
        grades["Weight loss"] = _graded(ctcae_grade("Weight loss", weight, "kg", baseline=base.weight_kg))
        grades["Weight loss"]["baseline_source"] = source
    systolic, diastolic = (int(x) for x in reading.split("/"))
    return VitalSigns(
        participant_id=course.rows["participant"].id, measured_on=day, visit_code=visit,
        systolic_mmhg=systolic, diastolic_mmhg=diastolic, heart_rate_bpm=rng.randint(62, 92),
        weight_kg=weight, temperature_c=round(rng.uniform(36.2, 37.1), 1), ctcae_grades=grades,
    )  # fmt: skip


def _graded(result: GradeResult) -> dict[str, Any]:
    """``result.to_dict()`` as plain JSON, built directly: thousands of ``asdict`` copies are slow."""
    found = {name: getattr(result, name) for name in result.__dataclass_fields__}
    found |= {key: list(value) for key, value in found.items() if isinstance(value, tuple)}
    found["fired"] = [{"grade": f.grade, "rule": f.rule, "review": f.review} for f in result.fired]
    return found | {"inputs": result.inputs | {"answers": dict(result.inputs["answers"])}}
