"""Readable text for eligibility: the screening table and the protocol's criteria as Markdown."""

from __future__ import annotations

from nettrial.eligibility.verdicts import EligibilityResult, Truth
from nettrial.protocol import model
from nettrial.protocol.model import Protocol

MARK = {Truth.MET: "MET", Truth.NOT_MET: "NOT MET", Truth.UNKNOWN: "UNKNOWN"}


def screening_table(result: EligibilityResult) -> str:
    """One line per criterion with its verdict and evidence, then the decision."""
    lines = [
        f"{result.protocol} v{result.protocol_version}  patient {result.patient_id}",
        f"index date {result.index_date} ({result.index})",
        "",
        f"{'criterion':<10}{'verdict':<10}evidence",
    ]
    for verdict in result.verdicts:
        flag = " (provisional)" if verdict.provisional else ""
        evidence = [str(e) for e in verdict.evidence] or ["-"]
        lines.append(f"{verdict.criterion:<10}{MARK[verdict.truth] + flag:<10}{evidence[0]}")
        lines.extend(f"{'':<20}{e}" for e in evidence[1:])
        if verdict.information:
            factors = verdict.information["high_risk_factors"]
            lines.append(
                f"{'':<20}information: high-risk factors present: {', '.join(factors['present']) or 'none'}; "
                f"unknown: {', '.join(factors['unknown']) or 'none'}"
            )
            score = verdict.information.get("recurrence_risk_score")
            if score:
                lines.append(f"{'':<20}information: {score['name']}: {score['score']} ({score['band']})")
    lines += [
        "",
        f"decision: {result.decision.value}" + (" (provisional)" if result.provisional else ""),
    ]
    if result.failed:
        lines.append(f"ruled out by: {', '.join(result.failed)}")
    if result.missing:
        lines.append("missing or stale: " + "; ".join(result.missing))
    if result.earliest_first_dose:
        lines.append(
            f"earliest allowed first dose: {result.earliest_first_dose} "
            f"({'; '.join(result.earliest_first_dose_reasons)})"
        )
    return "\n".join(lines)


def protocol_markdown(protocol: Protocol) -> str:
    """The eligibility criteria as a reviewer reads them: text, machine rule, data needs, source."""
    ident = protocol.identity
    out = [
        f"# {ident.nct_id}: {ident.brief_title}",
        "",
        f"Protocol file version {protocol.protocol_version}.",
        "",
    ]
    out += ["## Settings", "", "| setting | value | source | note |", "|---|---|---|---|"]
    out += [f"| {k} | {s.value} | {s.source} | {s.note or ''} |" for k, s in protocol.settings.items()]
    logic = " AND ".join(
        e if isinstance(e, str) else "(" + " OR ".join(e.any) + ")"
        for e in protocol.eligibility.inclusion_logic
    )
    out += ["", "## Eligibility", "", f"Inclusion: {logic}. Exclusions: none may be present.", ""]
    for criterion in protocol.eligibility.criteria:
        out += [f"### {criterion.id} ({criterion.kind})", "", f"> {criterion.text}", ""]
        out += ["Rule:", "", *_node_lines(criterion.rule, 0), ""]
        out += [f"Data needed: {', '.join(criterion.needs)}.", f"Source: {criterion.source}.", ""]
        if criterion.note:
            out += [f"Note: {criterion.note}", ""]
    return "\n".join(out)


def _node_lines(node: model.Node, depth: int) -> list[str]:
    pad = "  " * depth + "- "
    if isinstance(node, model.AllOf | model.AnyOf):
        word, children = ("all of", node.all) if isinstance(node, model.AllOf) else ("any of", node.any)
        return [pad + word, *(line for child in children for line in _node_lines(child, depth + 1))]
    if isinstance(node, model.AtLeast):
        return [
            pad + f"at least {node.at_least} of",
            *(line for c in node.of for line in _node_lines(c, depth + 1)),
        ]
    if isinstance(node, model.IfThen):
        return [
            pad + "if",
            *_node_lines(node.if_, depth + 1),
            pad + "then",
            *_node_lines(node.then, depth + 1),
        ]
    params = node.model_dump(exclude={"check"}, exclude_none=True, exclude_defaults=True)
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    return [pad + f"`{node.check}` {shown}".rstrip()]
