"""Evaluate a screening record against a protocol's eligibility criteria.

Each criterion's rule tree is walked in Kleene logic; each verdict carries its evidence. The
decision follows protocol.md section 5: ELIGIBLE only when every inclusion is MET (OR groups as the
protocol's ``inclusion_logic`` says) and every exclusion NOT_MET; INELIGIBLE as soon as one verdict
rules the patient out; otherwise INCOMPLETE with what is missing or stale.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from nettrial.eligibility import checks
from nettrial.eligibility.context import Context
from nettrial.eligibility.record import ScreeningRecord
from nettrial.eligibility.risk import high_risk_information
from nettrial.eligibility.verdicts import (
    Decision,
    EligibilityResult,
    Outcome,
    Truth,
    Verdict,
    all_of,
    any_of,
    at_least,
    combine,
)
from nettrial.protocol import model
from nettrial.protocol.model import Criterion, Protocol

INFORMATION: dict[str, Callable[[Context], dict]] = {"high_risk_factors": high_risk_information}


def evaluate_node(node: model.Node, ctx: Context, criterion: str) -> Outcome:
    """One node of a rule tree."""
    if isinstance(node, model.AllOf):
        parts = [evaluate_node(n, ctx, criterion) for n in node.all]
        return combine(all_of(p.truth for p in parts), parts)
    if isinstance(node, model.AnyOf):
        parts = [evaluate_node(n, ctx, criterion) for n in node.any]
        return combine(any_of(p.truth for p in parts), parts)
    if isinstance(node, model.AtLeast):
        parts = [evaluate_node(n, ctx, criterion) for n in node.of]
        return combine(at_least(node.at_least, (p.truth for p in parts)), parts)
    if isinstance(node, model.IfThen):
        condition = evaluate_node(node.if_, ctx, criterion)
        if condition.truth is Truth.NOT_MET:
            return Outcome(Truth.MET, condition.evidence)  # does not apply to this patient
        then = evaluate_node(node.then, ctx, criterion)
        return combine(any_of([condition.truth.negate(), then.truth]), [condition, then])
    if isinstance(node, model.Attestation):
        return checks.attestation(node, ctx, criterion)
    return checks.CHECKS[type(node)](node, ctx)


def evaluate_criterion(criterion: Criterion, ctx: Context) -> Verdict:
    outcome = evaluate_node(criterion.rule, ctx, criterion.id)
    information = INFORMATION[criterion.information](ctx) if criterion.information else None
    return Verdict(
        criterion=criterion.id,
        kind=criterion.kind,
        truth=outcome.truth,
        text=criterion.text,
        evidence=outcome.evidence,
        missing=outcome.missing if outcome.truth is Truth.UNKNOWN else (),
        provisional=outcome.provisional,
        earliest_first_dose=outcome.earliest_first_dose,
        note=criterion.note,
        information=information,
    )


def evaluate(
    record: ScreeningRecord, protocol: Protocol, first_dose: dt.date | dt.datetime | None = None
) -> EligibilityResult:
    """The eligibility decision for one record; ``first_dose`` overrides the record's plan."""
    ctx = Context.for_record(record, first_dose)
    verdicts = tuple(evaluate_criterion(c, ctx) for c in protocol.eligibility.criteria)
    by_id = {v.criterion: v for v in verdicts}

    inclusion_parts: list[Truth] = []
    relevant = set()
    for entry in protocol.eligibility.inclusion_logic:
        members = [entry] if isinstance(entry, str) else entry.any
        truth = any_of(by_id[m].truth for m in members)
        inclusion_parts.append(truth)
        if truth is not Truth.MET:
            relevant.update(members)
    exclusions = [v for v in verdicts if v.kind == "exclusion"]
    relevant.update(v.criterion for v in exclusions)
    overall = all_of([*inclusion_parts, *(v.truth.negate() for v in exclusions)])
    decision = {Truth.MET: Decision.ELIGIBLE, Truth.NOT_MET: Decision.INELIGIBLE}.get(
        overall, Decision.INCOMPLETE
    )

    missing = tuple(
        dict.fromkeys(
            f"{v.criterion}: {m}"
            for v in verdicts
            if v.truth is Truth.UNKNOWN and v.criterion in relevant
            for m in v.missing
        )
    )
    failed = tuple(v.criterion for v in verdicts if v.rules_out)
    binding = [(v.earliest_first_dose, v.criterion) for v in verdicts if v.earliest_first_dose]
    earliest = max((d for d, _ in binding), default=None)
    reasons = tuple(f"{c}: {d.isoformat()}" for d, c in sorted(binding) if d == earliest)
    return EligibilityResult(
        protocol=protocol.identity.nct_id,
        protocol_version=protocol.protocol_version,
        patient_id=record.identity.patient_id,
        decision=decision,
        index_date=ctx.index_date,
        index=ctx.index_name,
        provisional=ctx.provisional,
        verdicts=verdicts,
        missing=missing,
        failed=failed,
        earliest_first_dose=earliest,
        earliest_first_dose_reasons=reasons,
    )
