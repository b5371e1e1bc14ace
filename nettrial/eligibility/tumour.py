"""The tumour check: stage (staging engine) and WHO grade of a well-differentiated NET.

Stage and grade come from the staging and grade engines when the pathology is recorded; an
explicitly entered stage group or grade is accepted with its source. Where the data leave the
stage or grade open, every possibility is tried: the check is MET only if all of them qualify and
NOT_MET only if none does. NEC and MiNEN never qualify (they are not NETs).
"""

from __future__ import annotations

from functools import lru_cache

from nettrial.eligibility.context import Context
from nettrial.eligibility.verdicts import Evidence, Outcome, Truth, any_of
from nettrial.exceptions import InputError
from nettrial.protocol import model
from nettrial.staging.engine import StagingResult, stage
from nettrial.staging.findings import Findings
from nettrial.staging.grade import GradeResult, grade

NEC = "NEC"
GRADES = ("G1", "G2", "G3")


def staging_of(ctx: Context, edition: str) -> StagingResult | None:
    """The record's stage by the engine, or None when no site is recorded."""
    p = ctx.record.pathology
    if p.site is None:
        return None
    findings = Findings(
        size_mm=p.size_mm,
        extent=p.extent,
        nodes_positive=p.nodes_positive,
        nodes_examined=p.nodes_examined,
        mesenteric_mass_mm=p.mesenteric_mass_mm,
        metastasis=None if p.metastasis is None else tuple(p.metastasis),
        multiple_tumours=p.multiple_tumours,
    )
    try:
        return _cached_stage(
            p.site, edition, findings, p.t, p.n, p.m, p.tumour_type, p.differentiation, p.histology
        )
    except InputError as error:
        raise InputError(f"pathology.{error.field}", error.detail, allowed=error.allowed) from None


@lru_cache(maxsize=65536)
def _cached_stage(site, edition, findings, t, n, m, tumour_type, differentiation, histology) -> StagingResult:
    # Staging is a pure function of these inputs; registries repeat them across many records.
    return stage(
        site,
        edition,
        findings=findings,
        t=t,
        n=n,
        m=m,
        tumour_type=tumour_type,
        differentiation=differentiation,
        histology=histology,
    )


def grade_of(ctx: Context) -> GradeResult:
    p = ctx.record.pathology
    try:
        return _cached_grade(p.ki67_percent, p.mitoses_per_2mm2, p.differentiation)
    except InputError as error:
        raise InputError(f"pathology.{error.field}", error.detail, allowed=error.allowed) from None


@lru_cache(maxsize=4096)
def _cached_grade(ki67, mitoses, differentiation) -> GradeResult:
    return grade(ki67, mitoses, differentiation)


def _explicit(field: str, value: str, source: str | None) -> Evidence:
    """An explicitly entered stage or grade is accepted with its source (protocol.md 5 I3)."""
    return Evidence(field, value, reason=f"entered explicitly ({source or 'source not given'})")


def _grade_candidates(ctx: Context, evidence: list[Evidence]) -> set[str]:
    p = ctx.record.pathology
    if p.grade is not None:
        evidence.append(_explicit("pathology.grade", p.grade, p.grade_source))
        known = {p.grade}
    else:
        result = grade_of(ctx)
        evidence.append(
            Evidence(
                "grade",
                result.grade or "unknown",
                reason=f"WHO 2019: {result.classification}; " + "; ".join(result.notes),
                threshold=None,
            )
        )
        if result.classification == NEC:
            return {NEC}
        known = {result.grade} if result.grade else set(GRADES)
    if "G3" in known and p.differentiation != "well":
        known |= {NEC}  # G3 of unknown differentiation may be NEC
    return known


def _stage_candidates(ctx: Context, edition: str, evidence: list[Evidence]) -> set[str] | None:
    p = ctx.record.pathology
    if p.stage_group is not None:
        evidence.append(_explicit("pathology.stage_group", p.stage_group, p.stage_source))
        return {p.stage_group}
    result = staging_of(ctx, edition)
    if result is None:
        evidence.append(Evidence("pathology.site", reason="no site: the tumour cannot be staged"))
        return {"unknown"}
    if result.status == "not_staged":
        evidence.append(Evidence("stage", "not staged", reason=result.reason or ""))
        return None
    steps = ", ".join(f"{s.table} {s.result} ({s.rule})" for s in result.trace[1:])
    edition_name = "V9" if edition == "9" else "8th"
    label = f"AJCC {edition_name} {result.t} {result.n} {result.m} stage {result.stage_label}"
    evidence.append(Evidence("stage", label, reason=result.reason or steps))
    return set(result.possible) or {"unknown"}


def _is_nec(ctx: Context) -> bool:
    p = ctx.record.pathology
    return p.tumour_type in ("nec", "minen") or p.differentiation == "poor"


def tumour_outcome(check: model.Tumour, ctx: Context) -> Outcome:
    evidence: list[Evidence] = []
    stages = _stage_candidates(ctx, check.edition, evidence)
    if _is_nec(ctx) or stages is None:
        evidence.append(
            Evidence(
                "pathology.tumour_type",
                ctx.record.pathology.tumour_type or "nec",
                reason="NEC/MiNEN is not a NET",
            )
        )
        return Outcome(Truth.NOT_MET, tuple(evidence))
    grades = _grade_candidates(ctx, evidence)
    results = set()
    for g in grades:
        for s in stages:
            results.add(any_of(_option(option, g, s) for option in check.any))
    missing = []
    if Truth.MET in results and Truth.NOT_MET not in results and Truth.UNKNOWN not in results:
        truth = Truth.MET
    elif results == {Truth.NOT_MET}:
        truth = Truth.NOT_MET
    else:
        truth = Truth.UNKNOWN
        if len(grades) > 1:
            missing.append("pathology grade (Ki-67, mitoses, differentiation)")
        if len(stages) > 1 or "unknown" in stages:
            missing.append("pathology stage (size, extent, nodes, metastasis)")
    wanted = " or ".join(
        f"{f'stage {o.stage_group_prefix}' if o.stage_group_prefix else 'any stage'} {'/'.join(o.grades)}"
        for o in check.any
    )
    evidence.append(
        Evidence(
            "tumour",
            f"stage {'/'.join(sorted(stages))}, grade {'/'.join(sorted(grades))}",
            threshold=wanted,
            reason=truth.value,
        )
    )
    return Outcome(truth, tuple(evidence), tuple(missing))


def _option(option: model.TumourOption, grade_value: str, stage_group: str) -> Truth:
    if grade_value not in option.grades:
        return Truth.NOT_MET
    if option.stage_group_prefix is None:
        return Truth.MET
    if stage_group == "unknown":
        return Truth.UNKNOWN
    return Truth.MET if stage_group.startswith(option.stage_group_prefix) else Truth.NOT_MET
