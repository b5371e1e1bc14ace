"""A ClinicalTrials.gov registry record (API v2 JSON), read and type-checked.

Source: the ClinicalTrials.gov API v2 study data structure
(https://clinicaltrials.gov/data-api/about-api/study-data-structure): a study is
``{"protocolSection": {...}, "resultsSection": {...}, "hasResults": ...}``; the parts read here are
the identification, status, sponsor, conditions, design, arms and eligibility modules.

``load_record`` reads a record and checks the type of every part it uses: a missing
``protocolSection`` or a value of the wrong type is refused with an ``InputError`` naming its JSON
path (``protocolSection.designModule.enrollmentInfo.count``). Parts the record leaves out are
``None``: a registry record need not state everything. ``split_criteria`` reads the record's
``eligibilityCriteria`` text as its numbered (or bulleted) inclusion and exclusion criteria, each
text ``normalise``d: CommonMark backslash escapes are undone (the registry stores Markdown, so
``\\>60`` is ``>60``) and runs of whitespace become one space. ``nettrial.export.ctgov_compare``
compares a record with the protocol file.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nettrial.exceptions import InputError

__all__ = ["ARMS_PATH", "CRITERIA_PATH", "FIELDS", "Record", "RegistryArm", "RegistryCriterion",
           "load_record", "normalise", "split_criteria"]  # fmt: skip

_P = "protocolSection"
_AGE = re.compile(r"^(\d+) (Year|Month|Week|Day|Hour|Minute)s?$")
_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")
_NCT = re.compile(r"^NCT\d{8}$")


def _text(value: str) -> str:
    return value


def _phases(value: list[str]) -> str:
    return "/".join(value)


def _age(value: str) -> str:
    """``18 Years``, ``1 Year``: the number and its unit, unit in the plural as the registry shows it."""
    found = _AGE.match(value)
    if found is None:
        raise ValueError("expected a number and a unit, e.g. '18 Years'")
    return f"{int(found[1])} {found[2]}s"


def _date(value: str) -> str:
    if not _DATE.match(value):
        raise ValueError("expected an ISO 8601 date, YYYY-MM-DD or YYYY-MM")
    return value


def _nct(value: str) -> str:
    if not _NCT.match(value):
        raise ValueError("expected NCT and eight digits")
    return value


def _years(n: int) -> str:
    return f"{n} Years"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One identity field: where the record holds it, where the protocol holds it, how it is read."""

    name: str
    module: str  # the protocolSection module, then the dotted path inside it
    inside: str
    protocol: str  # the dotted path under the protocol file's ``identity``
    kind: type  # the JSON type the record must give (list: a list of texts)
    read: Callable[[Any], Any] = _text  # record value -> comparable value (ValueError: refused)
    shown: Callable[[Any], Any] = str  # protocol value -> comparable value

    @property
    def record_path(self) -> str:
        return f"{_P}.{self.module}.{self.inside}"

    @property
    def protocol_path(self) -> str:
        return f"identity.{self.protocol}"


_ID, _DESIGN, _ELIG = "identificationModule", "designModule", "eligibilityModule"
_SPONSOR, _STATUS = "sponsorCollaboratorsModule", "statusModule"
FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("nct_id", _ID, "nctId", "nct_id", str, _nct),
    FieldSpec("org_study_id", _ID, "orgStudyIdInfo.id", "org_study_id", str),
    FieldSpec("brief_title", _ID, "briefTitle", "brief_title", str),
    FieldSpec("official_title", _ID, "officialTitle", "official_title", str),
    FieldSpec("sponsor", _SPONSOR, "leadSponsor.name", "sponsor.name", str),
    FieldSpec("sponsor_class", _SPONSOR, "leadSponsor.class", "sponsor.class_", str),
    FieldSpec("start_date", _STATUS, "startDateStruct.date", "start_date", str, _date, dt.date.isoformat),
    FieldSpec(
        "completion_date",
        _STATUS,
        "completionDateStruct.date",
        "completion_date",
        str,
        _date,
        dt.date.isoformat,
    ),
    FieldSpec("conditions", "conditionsModule", "conditions", "conditions", list, tuple, tuple),
    FieldSpec("study_type", _DESIGN, "studyType", "study_type", str),
    FieldSpec("phase", _DESIGN, "phases", "phase", list, _phases),
    FieldSpec("allocation", _DESIGN, "designInfo.allocation", "allocation", str),
    FieldSpec("intervention_model", _DESIGN, "designInfo.interventionModel", "intervention_model", str),
    FieldSpec("primary_purpose", _DESIGN, "designInfo.primaryPurpose", "primary_purpose", str),
    FieldSpec("masking", _DESIGN, "designInfo.maskingInfo.masking", "masking", str),
    FieldSpec("target_enrolment", _DESIGN, "enrollmentInfo.count", "target_enrolment", int, int, int),
    FieldSpec("minimum_age", _ELIG, "minimumAge", "minimum_age_years", str, _age, _years),
    FieldSpec("maximum_age", _ELIG, "maximumAge", "maximum_age_years", str, _age, _years),
    FieldSpec("sex", _ELIG, "sex", "sex", str),
    FieldSpec("healthy_volunteers", _ELIG, "healthyVolunteers", "healthy_volunteers", bool, bool, bool),
)
ARMS_PATH = f"{_P}.armsInterventionsModule.armGroups"
CRITERIA_PATH = f"{_P}.eligibilityModule.eligibilityCriteria"


@dataclass(frozen=True, slots=True)
class RegistryArm:
    """An arm group of the record; ``interventions`` without the ``Drug: `` type prefix."""

    label: str
    type: str | None
    description: str | None
    interventions: tuple[str, ...] | None
    path: str


@dataclass(frozen=True, slots=True)
class RegistryCriterion:
    """The n-th inclusion or exclusion criterion of the record's eligibility text."""

    kind: str  # inclusion | exclusion
    number: int
    text: str

    @property
    def path(self) -> str:
        return f"{CRITERIA_PATH} ({self.kind} {self.number})"


@dataclass(frozen=True)
class Record:
    """The parts of a registry record that ``compare`` reads, type-checked; ``None`` where absent."""

    source: str
    values: Mapping[str, Any]  # by FieldSpec.name, read by its ``read``
    arms: tuple[RegistryArm, ...] | None
    eligibility_criteria: str | None
    has_results: bool | None
    data: Mapping[str, Any] = field(repr=False)

    @property
    def nct_id(self) -> str:
        return self.values["nct_id"]

    def criteria(self) -> tuple[RegistryCriterion, ...]:
        return split_criteria(self.eligibility_criteria or "")


# --- reading ---------------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a text", bool: "true/false", int: "a whole number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _get(data: Mapping[str, Any], path: str, kind: type, *, under: str = "") -> Any:
    """The value at a dotted ``path`` (of an object at JSON path ``under``); ``None`` when a step
    is absent; refused, naming the JSON path, when a type is wrong."""
    node: Any = data
    steps = path.split(".")
    prefix = f"{under}." if under else ""
    for depth, step in enumerate(steps):
        node = node.get(step)
        if node is None:
            return None
        if depth < len(steps) - 1 and not isinstance(node, dict):
            where = prefix + ".".join(steps[: depth + 1])
            raise InputError(where, f"expected an object, found {_type_name(node)}")
    return _checked(node, kind, prefix + path)


def _checked(value: Any, kind: type, path: str) -> Any:
    # bool is an int in Python: a count of true is refused.
    wrong = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
    if kind is list and not wrong and not all(isinstance(v, str) for v in value):
        first = next(i for i, v in enumerate(value) if not isinstance(v, str))
        raise InputError(f"{path}[{first}]", f"expected a text, found {_type_name(value[first])}")
    if wrong:
        raise InputError(path, f"expected {_type_name(kind())}, found {_type_name(value)}")
    return value


def _arms(data: Mapping[str, Any]) -> tuple[RegistryArm, ...] | None:
    groups = _get(data, ARMS_PATH, object)
    if groups is None:
        return None
    if not isinstance(groups, list):
        raise InputError(ARMS_PATH, f"expected a list, found {_type_name(groups)}")
    arms = []
    for i, group in enumerate(groups):
        where = f"{ARMS_PATH}[{i}]"
        if not isinstance(group, dict):
            raise InputError(where, f"expected an object, found {_type_name(group)}")
        label = group.get("label")
        if label is None:
            raise InputError(f"{where}.label", "missing: every arm group has a label")
        names = group.get("interventionNames")
        if names is not None:
            names = tuple(n.split(": ", 1)[-1] for n in _checked(names, list, f"{where}.interventionNames"))
        arms.append(
            RegistryArm(
                _checked(label, str, f"{where}.label"),
                _get(group, "type", str, under=where),
                _get(group, "description", str, under=where),
                names,
                where,
            )
        )
    return tuple(arms)


def load_record(path: str | Path) -> Record:
    """Read a ClinicalTrials.gov API v2 study record (JSON) and check the parts ``compare`` uses.

    Parameters
    ----------
    path : str or pathlib.Path
        A JSON file holding one study: ``{"protocolSection": {...}, ...}``.

    Returns
    -------
    Record
        Its identity fields (``FIELDS``), arms and eligibility text; ``None`` where the record is
        silent.

    Raises
    ------
    InputError
        The file cannot be read or is not JSON (field: the file name); ``protocolSection`` is
        missing; a value has the wrong type or form (field: its JSON path).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(path.name, f"cannot be read: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path.name, f"is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(path.name, f"expected a study record (an object), found {_type_name(data)}")
    if _P not in data:
        raise InputError(_P, "missing: a registry record in API v2 JSON has a protocolSection")
    _checked(data[_P], dict, _P)
    values = {}
    for spec in FIELDS:
        value = _get(data, spec.record_path, spec.kind)
        try:
            values[spec.name] = None if value is None else spec.read(value)
        except ValueError as exc:
            raise InputError(spec.record_path, f"{value!r}: {exc}") from None
    if values["nct_id"] is None:
        raise InputError(FIELDS[0].record_path, "missing: every registry record has its NCT number")
    has_results = data.get("hasResults")
    if has_results is not None:
        _checked(has_results, bool, "hasResults")
    return Record(path.name, values, _arms(data), _get(data, CRITERIA_PATH, str), has_results, data)


# --- eligibility text ------------------------------------------------------------------------------

_HEADER = re.compile(r"^[\s*_#]*(inclusion|exclusion)\s+criteria[\s*_:]*$", re.IGNORECASE)
_ITEM = re.compile(r"^\s*(?:\d+[.)]|[*\-•])\s+(.*)$")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")  # CommonMark: a backslash before ASCII punctuation


def normalise(text: str) -> str:
    """Markdown escapes undone, runs of whitespace as one space, no space at either end."""
    return " ".join(_ESCAPE.sub(r"\1", text).split())


def split_criteria(text: str) -> tuple[RegistryCriterion, ...]:
    """The numbered or bulleted items under "Inclusion Criteria" and "Exclusion Criteria".

    A line that starts no item continues the item before it (a criterion's sub-list); text
    before a section's first item is not a criterion.
    """
    found: list[RegistryCriterion] = []
    kind, counts = None, {"inclusion": 0, "exclusion": 0}
    current: list[str] | None = None

    def close() -> None:
        if current is not None and kind is not None:
            found.append(RegistryCriterion(kind, counts[kind], normalise(" ".join(current))))

    for line in text.splitlines():
        header, item = _HEADER.match(line), _ITEM.match(line)
        if header:
            close()
            kind, current = header[1].lower(), None
        elif item and kind is not None:
            close()
            counts[kind] += 1
            current = [item[1]]
        elif line.strip() and current is not None:
            current.append(line)
    close()
    return tuple(found)
