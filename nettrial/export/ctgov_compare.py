"""A ClinicalTrials.gov registry record compared with the protocol file: every difference, with both paths.

``compare`` lists every difference between a record (``nettrial.export.ctgov_record.load_record``)
and the protocol file:

- identity: each row of ``FIELDS`` (record path, protocol path, how values are read) and the arms,
  matched by label;
- eligibility: the record's ``eligibilityCriteria`` text split into its numbered (or bulleted)
  inclusion and exclusion criteria, the n-th of each kind compared with the protocol file's n-th
  criterion of that kind. Texts are compared after normalisation: CommonMark backslash escapes are
  undone (the registry stores Markdown, so ``\\>60`` is ``>60``) and runs of whitespace become one
  space. Nothing else is normalised: ``>=`` and ``≥`` are different wordings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from nettrial.export.ctgov_record import ARMS_PATH, CRITERIA_PATH, FIELDS, Record, normalise
from nettrial.protocol.model import Protocol

__all__ = ["Comparison", "Difference", "compare"]


@dataclass(frozen=True, slots=True)
class Difference:
    """One disagreement: where in the protocol file and in the record, and both values."""

    protocol_path: str
    record_path: str
    kind: str  # differs | missing_in_record | missing_in_protocol
    protocol: Any
    record: Any
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    def explain(self) -> str:
        """One line; a value longer than 60 characters is shortened here (``to_dict`` keeps it whole)."""
        mine, theirs = _short(self.protocol), _short(self.record)
        if self.kind == "missing_in_record":
            return f"{self.protocol_path}: {mine} in the protocol, absent from {self.record_path}"
        if self.kind == "missing_in_protocol":
            return f"{self.record_path}: {theirs} in the record, absent from {self.protocol_path}"
        line = f"{self.protocol_path}: protocol {mine} vs record {theirs} ({self.record_path})"
        return line + (f"; {self.detail}" if self.detail else "")


def _short(value: Any, limit: int = 60) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


@dataclass(frozen=True)
class Comparison:
    """Every difference between a registry record and the protocol file, and what was compared."""

    nct_id: str
    source: str
    protocol_version: str
    differences: tuple[Difference, ...]
    compared: tuple[str, ...]  # protocol paths compared

    @property
    def matches(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {
            "nct_id": self.nct_id,
            "source": self.source,
            "protocol_version": self.protocol_version,
            "matches": self.matches,
            "compared": list(self.compared),
            "differences": [d.to_dict() for d in self.differences],
        }

    def explain(self) -> str:
        head = (
            f"Registry record {self.source} ({self.nct_id}) vs protocol file version "
            f"{self.protocol_version}: {len(self.compared)} items compared, "
            f"{len(self.differences)} differences"
        )
        rules = "criterion texts compared after undoing Markdown escapes and collapsing whitespace"
        return "\n".join([head, *(f"  - {d.explain()}" for d in self.differences), f"({rules})"])


def _protocol_value(protocol: Protocol, path: str) -> Any:
    node: Any = protocol
    for step in path.split("."):
        node = getattr(node, step)
    return node


def _first_difference(a: str, b: str) -> str:
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f"first difference at character {at + 1}: {a[at : at + 30]!r} vs {b[at : at + 30]!r}"


def _identity(record: Record, protocol: Protocol) -> list[Difference]:
    found = []
    for spec in FIELDS:
        mine = spec.shown(_protocol_value(protocol, spec.protocol_path))
        theirs = record.values[spec.name]
        if theirs is None:
            found.append(Difference(spec.protocol_path, spec.record_path, "missing_in_record", mine, None))
        elif spec.kind is str and normalise(theirs) != normalise(mine):
            detail = _first_difference(normalise(mine), normalise(theirs))
            found.append(Difference(spec.protocol_path, spec.record_path, "differs", mine, theirs, detail))
        elif spec.kind is not str and theirs != mine:
            found.append(Difference(spec.protocol_path, spec.record_path, "differs", mine, theirs))
    return found


def _arm_differences(record: Record, protocol: Protocol) -> list[Difference]:
    found = []
    theirs = {arm.label: arm for arm in record.arms or ()}
    for i, arm in enumerate(protocol.identity.arms):
        where = f"identity.arms.{i}"
        other = theirs.pop(arm.label, None)
        if other is None:
            found.append(Difference(where, ARMS_PATH, "missing_in_record", arm.label, None))
            continue
        pairs = (
            ("type", arm.type, other.type),
            ("description", normalise(arm.description), other.description and normalise(other.description)),
            ("interventions", tuple(arm.interventions), other.interventions),
        )
        record_names = {"type": "type", "description": "description", "interventions": "interventionNames"}
        for name, mine, value in pairs:
            path = f"{other.path}.{record_names[name]}"
            if value is None:
                found.append(Difference(f"{where}.{name}", path, "missing_in_record", mine, None))
            elif value != mine:
                found.append(Difference(f"{where}.{name}", path, "differs", mine, value))
    found += [
        Difference("identity.arms", a.path, "missing_in_protocol", None, a.label) for a in theirs.values()
    ]
    return found


def _criteria_differences(record: Record, protocol: Protocol) -> list[Difference]:
    found = []
    listed = record.criteria()
    for kind in ("inclusion", "exclusion"):
        mine = [c for c in protocol.eligibility.criteria if c.kind == kind]
        theirs = [c for c in listed if c.kind == kind]
        for criterion, other in zip(mine, theirs, strict=False):
            text = normalise(criterion.text)
            if text != other.text:
                detail = _first_difference(text, other.text)
                where = f"eligibility.criteria.{criterion.id}.text"
                found.append(Difference(where, other.path, "differs", text, other.text, detail))
        for criterion in mine[len(theirs) :]:
            where = f"eligibility.criteria.{criterion.id}.text"
            found.append(
                Difference(where, CRITERIA_PATH, "missing_in_record", normalise(criterion.text), None)
            )
        for other in theirs[len(mine) :]:
            found.append(
                Difference("eligibility.criteria", other.path, "missing_in_protocol", None, other.text)
            )
    return found


def compare(record: Record, protocol: Protocol) -> Comparison:
    """Every difference between a registry record and the protocol file.

    Parameters
    ----------
    record : Record
        From ``load_record``.
    protocol : Protocol
        The protocol file (``nettrial.protocol.load.load_protocol``).

    Returns
    -------
    Comparison
        ``differences`` with the protocol path, the record's JSON path, the kind (``differs``,
        ``missing_in_record``, ``missing_in_protocol``) and both values; ``matches`` when there
        are none; ``compared`` lists the protocol paths compared.
    """
    compared = [spec.protocol_path for spec in FIELDS]
    compared += [f"identity.arms.{i}" for i in range(len(protocol.identity.arms))]
    compared += [f"eligibility.criteria.{c.id}.text" for c in protocol.eligibility.criteria]
    differences = [
        *_identity(record, protocol),
        *_arm_differences(record, protocol),
        *_criteria_differences(record, protocol),
    ]
    return Comparison(
        record.nct_id, record.source, protocol.protocol_version, tuple(differences), tuple(compared)
    )
