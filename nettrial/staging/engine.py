"""The staging engine: one small interpreter for every site's tables.

``stage()`` takes a site, an edition and either pathology findings or the T/N/M categories, and
returns a :class:`StagingResult` that carries the categories, the stage group (or ``None`` with
the reason it is unknown) and the trace of every rule and table row that fired. Site knowledge
lives only in ``data/``; see ``tables.py`` for how the files are read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache
from itertools import product
from typing import Any, Literal

from nettrial.config import get_settings
from nettrial.exceptions import InputError
from nettrial.staging.findings import Category, Findings, category, check_for_site, is_blank
from nettrial.staging.tables import (
    Decision,
    RuleTable,
    SiteTables,
    StageRow,
    m_category,
    read_yaml,
    resolve_edition,
    resolve_site,
    site_tables,
)

Status = Literal["staged", "unknown", "not_staged"]
STAGE_ORDER = ("I", "II", "IIA", "IIB", "III", "IIIA", "IIIB", "IV")


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One rule or table row that was used, and why."""

    table: str
    rule: str
    result: str
    because: str
    source: str | None = None

    def __str__(self) -> str:
        cited = f" [{self.source}]" if self.source else ""
        return f"{self.table}: {self.rule} -> {self.result} ({self.because}){cited}"


@dataclass(frozen=True, slots=True)
class StagingResult:
    """A stage that explains itself. ``stage_group`` is None when unknown or not staged."""

    site: str
    edition: str
    t: str | None
    n: str | None
    m: str | None
    stage_group: str | None
    status: Status
    reason: str | None = None
    trace: tuple[TraceStep, ...] = field(default=())
    # Stage groups still possible ("unknown" where a combination has none); one when staged.
    possible: tuple[str, ...] = ()

    @property
    def stage_label(self) -> str:
        """The stage group as written in files and tables: ``I`` ... ``IV`` or ``unknown``."""
        return self.stage_group or "unknown"

    @property
    def is_stage_iii(self) -> bool:
        """Any stage group starting with III (III, IIIA, IIIB): the study's "stage III"."""
        return bool(self.stage_group and self.stage_group.startswith("III"))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stage_group"] = self.stage_label
        return data


def stage_rank(stage_group: str) -> int:
    """Order of main stage groups (I < II < III < IV); substages rank with their group."""
    return {"I": 1, "II": 2, "III": 3, "IV": 4}[stage_group.rstrip("AB")]


def stage(
    site: str,
    edition: str | int | None = None,
    *,
    findings: Findings | None = None,
    t: str | None = None,
    n: str | None = None,
    m: str | None = None,
    tumour_type: str | None = None,
    differentiation: str | None = None,
    histology: str | None = None,
    explain: bool = True,
) -> StagingResult:
    """Stage one tumour.

    Give each of T, N and M either as a category (``t="T2"``) or through ``findings``, not both.
    A category the data cannot decide is written as the categories still possible (``T1/T2``)
    or TX/NX, never the best case; the stage group is known only when every possibility agrees.
    ``tumour_type`` (net/nec/minen), ``differentiation`` (well/poor) or an ICD-O-3 ``histology``
    code put NEC and MiNEN outside the NET chapters (staging.md decision 7).
    ``explain=False`` leaves the trace empty (batch use); every other field is the same.
    """
    key = resolve_site(site)
    ed = resolve_edition(edition, get_settings().default_edition)
    tables = site_tables(key, ed)
    findings = findings or Findings()
    check_for_site(findings, tables)

    scope = _scope_step(tumour_type, differentiation, histology)
    if scope.result != "net":
        return StagingResult(key, ed, None, None, None, None, "not_staged", scope.because, (scope,))

    trace: list[TraceStep] | None = [scope] if explain else None
    t_cat = _axis("t", t, findings, Findings.T_FIELDS, tables, tables.t, trace)
    n_cat = _axis("n", n, findings, Findings.N_FIELDS, tables, tables.n, trace)
    m_cat = _axis("m", m, findings, ("metastasis",), tables, tables.m, trace)
    if findings.multiple_tumours and t_cat.known and "(" not in t_cat.label:
        t_cat = Category(f"{t_cat.label}(m)", t_cat.root, t_cat.candidates)
        label = t_cat.label
        _add(trace, lambda: TraceStep("t", "multiple-tumours", label, "several tumours: suffix (m)", "SPEC"))

    labels = (t_cat.label, n_cat.label, m_cat.label)
    if not t_cat.known or not n_cat.known or not m_cat.known:
        return _stage_undetermined(key, ed, tables, (t_cat, n_cat, m_cat), trace)
    row = tables.stage_group(t_cat.root, n_cat.root, m_cat.root)
    if row is None:
        reason = f"no row of the stage table matches {t_cat.root} {n_cat.root} {m_cat.root}"
        return StagingResult(key, ed, *labels, None, "unknown", reason, tuple(trace or ()), ("unknown",))
    _add(trace, lambda: _row_step(row, tables))
    if row.stage_group is None:
        reason = f"{t_cat.root} {n_cat.root} {m_cat.root} has no stage group in the {tables.chapter} table"
        return StagingResult(key, ed, *labels, None, "unknown", reason, tuple(trace or ()), ("unknown",))
    group = row.stage_group
    return StagingResult(key, ed, *labels, group, "staged", None, tuple(trace or ()), (group,))


def _add(trace: list[TraceStep] | None, step: Callable[[], TraceStep]) -> None:
    """Record a step only when explaining: building the text is most of a batch row's cost."""
    if trace is not None:
        trace.append(step())


def _row_step(row: StageRow, tables: SiteTables) -> TraceStep:
    source = tables.source(tables.stage_source)
    return TraceStep("stage_group", f"row {row.number}", row.stage_label, row.describe(), source)


def _stage_undetermined(
    key: str, ed: str, tables: SiteTables, cats: tuple[Category, ...], trace: list[TraceStep] | None
) -> StagingResult:
    """Stage when a category is undetermined: known only if every possible combination agrees."""
    rows = {
        (t, n, m): tables.stage_group(t, n, m) for t, n, m in product(*(sorted(c.candidates) for c in cats))
    }
    groups = {row.stage_group if row else None for row in rows.values()}
    labels = tuple(c.label for c in cats)
    if len(groups) == 1 and None not in groups:
        (group,) = groups
        because = f"every possible combination ({len(rows)}) gives {group}"
        source = tables.source(tables.stage_source)
        _add(trace, lambda: TraceStep("stage_group", "all-candidates", group, because, source))
        return StagingResult(key, ed, *labels, group, "staged", None, tuple(trace or ()), (group,))
    unknown = [axis for axis, c in zip("TNM", cats, strict=True) if not c.known]
    shown = ", ".join(sorted(g or "unknown" for g in groups))
    reason = f"{'/'.join(unknown)} not determined by the data given; the possible stage groups are {shown}"
    _add(trace, lambda: TraceStep("stage_group", "undetermined", "unknown", reason))
    possible = tuple(sorted(g or "unknown" for g in groups))
    return StagingResult(key, ed, *labels, None, "unknown", reason, tuple(trace or ()), possible)


def _axis(
    axis: str,
    explicit: str | None,
    findings: Findings,
    finding_fields: tuple[str, ...],
    tables: SiteTables,
    table: RuleTable,
    trace: list[TraceStep] | None,
) -> Category:
    """One category, either checked as given or derived from the findings by the axis's table."""
    given = findings.given(finding_fields)
    if not is_blank(explicit):
        if given:
            raise InputError(axis, f"give either the {axis.upper()} category or {', '.join(given)}, not both")
        parsed = category(axis, explicit, tables)
        _add(trace, lambda: TraceStep(axis, "given", parsed.label, "category entered explicitly"))
        return parsed
    record = _record(findings)
    decision = table.decide(record)
    if decision.known:
        result = Category(decision.category, decision.category, decision.candidates)
    else:
        candidates = decision.candidates or table.categories()
        # Name the candidates when the data narrowed them; otherwise the table's unknown (TX, NX).
        if table.unknown in candidates or candidates == table.categories():
            label = table.unknown or "unknown"
        else:
            label = "/".join(sorted(candidates))
        result = Category(label, label, candidates)
    _add(trace, lambda: _decision_step(axis, decision, record, tables, result.label))
    return result


def _record(findings: Findings) -> dict[str, Any]:
    """The fields rule conditions read: the findings, plus metastasis groups derived from sites."""
    record = {name: getattr(findings, name) for name in (*Findings.T_FIELDS, *Findings.N_FIELDS)}
    if record["nodes_examined"] == 0 and record["nodes_positive"] is None:
        record["nodes_positive"] = 0  # implied, not assumed: no node examined, none can be positive
    _, vocabulary = m_category()
    groups = {"hepatic": None, "extrahepatic": None, "unspecified": None}
    if findings.metastasis is not None:
        present = {vocabulary[s] for s in findings.metastasis}
        groups = {g: g in present for g in groups}
    record.update(groups)
    record["metastasis"] = ",".join(findings.metastasis) if findings.metastasis is not None else None
    return record


# The M table reads groups derived from the metastasis sites; report them as "metastasis".
_METASTASIS_GROUPS = {
    "hepatic": "metastasis",
    "extrahepatic": "metastasis",
    "unspecified": "metastasis",
}


def _decision_step(
    axis: str, decision: Decision, record: dict[str, Any], tables: SiteTables, label: str
) -> TraceStep:
    if decision.known:
        rule = decision.fired
        because = "; ".join(f"{c.field}={_show(record[c.field])} ({c.describe()})" for c in rule.conditions)
        if axis == "m":
            because = f"metastasis={record['metastasis'] or 'none'}"
        return TraceStep(axis, rule.id, rule.category, because, tables.source(rule.source))
    missing = sorted(
        {_METASTASIS_GROUPS.get(c.field, c.field) for r in decision.possible for c in r.conditions}
        & {_METASTASIS_GROUPS.get(f, f) for f, v in record.items() if v is None}
    )
    if decision.possible:
        still = ", ".join(f"{r.category} ({r.id})" for r in decision.possible)
        because = f"{', '.join(missing) or 'data'} not recorded: {still} still possible"
    else:
        because = "no rule of the table applies to the data given"
    return TraceStep(axis, "undetermined", label, because)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- scope: NET versus NEC / MiNEN ------------------------------------------------------------


def _scope_step(tumour_type: str | None, differentiation: str | None, histology: str | None) -> TraceStep:
    """Decide whether the NET chapters apply, from type, differentiation and/or histology code."""
    scope = read_scope()
    verdicts: list[tuple[str, str]] = []
    if not is_blank(tumour_type):
        value = str(tumour_type).strip().lower()
        if value not in scope["tumour_types"]:
            raise InputError(
                "tumour_type", f"unknown tumour type {tumour_type!r}", allowed=scope["tumour_types"]
            )
        verdicts.append((value, f"tumour_type={value}"))
    if not is_blank(differentiation):
        value = str(differentiation).strip().lower()
        if value not in scope["differentiation"]:
            raise InputError(
                "differentiation",
                f"unknown differentiation {differentiation!r}",
                allowed=scope["differentiation"],
            )
        verdicts.append((scope["differentiation"][value], f"differentiation={value}"))
    if not is_blank(histology):
        code = str(histology).strip().split("/")[0]
        if code not in scope["histology"]:
            raise InputError(
                "histology",
                f"ICD-O-3 code {histology!r} is not a GEP neuroendocrine histology",
                allowed=scope["histology"],
            )
        verdicts.append((scope["histology"][code], f"histology={histology}"))
    if not verdicts:
        return TraceStep(
            "scope",
            "net-assumed",
            "net",
            "tumour type not given: staged as a NET, the chapter's scope",
            "SPEC",
        )
    # Any sign of NEC or MiNEN takes the tumour out of the NET chapters.
    out = [(kind, why) for kind, why in verdicts if not scope["tumour_types"][kind]["staged"]]
    if out:
        kind, why = out[0]
        return TraceStep(
            "scope", f"not-{kind}", kind, f"{why}: {scope['tumour_types'][kind]['reason']}", "SPEC"
        )
    return TraceStep("scope", "net", "net", "; ".join(why for _, why in verdicts), "SPEC")


@cache
def read_scope() -> dict[str, Any]:
    return read_yaml("scope.yaml")
