"""High-risk factors and the pancreatic NET recurrence risk score: information beside criterion I4.

Both are tables in ``data/risk_factors.yaml`` run through the same three-valued conditions as the
staging rules, so a factor whose data are missing is listed as unknown, and the score is a range
(``3-5``) until every component is recorded. Never a verdict: I4 is the investigator's attestation.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from nettrial._conditions import all_of, parse_conditions
from nettrial._yaml import load_yaml
from nettrial.eligibility.context import Context
from nettrial.eligibility.tumour import staging_of
from nettrial.staging.tables import resolve_site


@cache
def _tables() -> dict[str, Any]:
    path = resources.files("nettrial.eligibility") / "data" / "risk_factors.yaml"
    data = load_yaml(path.read_text(encoding="utf-8"))
    for section in (data["high_risk_factors"], data["recurrence_risk_score"]["points"]):
        for item in section:
            item["conditions"] = parse_conditions(item["when"], f"risk_factors.yaml:{item['id']}")
    return data


def _facts(ctx: Context) -> dict[str, Any]:
    p = ctx.record.pathology
    staged = staging_of(ctx, "9") if p.site else None
    t_category = None
    if staged is not None and staged.t and staged.t[:2] in ("T1", "T2", "T3", "T4") and "/" not in staged.t:
        t_category = staged.t.split("(")[0][:2]
    nodes = p.nodes_positive
    if nodes is None and staged is not None and staged.n in ("N1", "N2"):
        nodes = 1
    return {
        "nodes_positive": nodes,
        "t_category": t_category,
        "ki67_percent": p.ki67_percent,
        "size_mm": p.size_mm,
        "lymphovascular_invasion": p.lymphovascular_invasion,
        "perineural_invasion": p.perineural_invasion,
        "margin": ctx.record.surgery.margin,
        "symptomatic": ctx.record.symptomatic,
    }


def high_risk_information(ctx: Context) -> dict[str, Any]:
    """The factors the record supports (present / absent / unknown) and the risk score if it applies."""
    facts = _facts(ctx)
    tables = _tables()
    factors = {"present": [], "absent": [], "unknown": []}
    for item in tables["high_risk_factors"]:
        truth = all_of(item["conditions"], facts)
        factors[{True: "present", False: "absent", None: "unknown"}[truth]].append(item["label"])
    info: dict[str, Any] = {"high_risk_factors": factors}
    score = tables["recurrence_risk_score"]
    site = ctx.record.pathology.site
    if site and resolve_site(site) in score["sites"]:
        low, open_points, unknown = 0, {}, []
        for item in score["points"]:
            truth = all_of(item["conditions"], facts)
            low += item["points"] if truth else 0
            if truth is None:
                group = item.get("group", item["id"])
                open_points[group] = max(open_points.get(group, 0), item["points"])
                unknown.append(item["id"])
        high = low + sum(open_points.values())
        bands = {_band(score["bands"], low), _band(score["bands"], high)}
        info["recurrence_risk_score"] = {
            "name": score["name"],
            "score": str(low) if low == high else f"{low}-{high}",
            "band": bands.pop() if len(bands) == 1 else "undetermined",
            "unknown_components": unknown,
        }
    return info


def _band(bands: list[dict[str, Any]], value: int) -> str:
    return next(b["label"] for b in bands if value <= b["up_to"])
