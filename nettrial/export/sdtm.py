"""CDISC SDTM datasets: checked against their variable listing, written as CSV and SAS transport v5.

Source: CDISC SDTM Implementation Guide 3.x and the FDA Study Data Technical Conformance Guide
(SAS transport version 5: dataset and variable names <= 8 characters, labels <= 40, character values
<= 200 bytes, ASCII). The domains, their variables and the mapping of the store's codes to CDISC
controlled terms are data (``data/sdtm_variables.yaml``); the builders that read the store are in
``sdtm_domains.py``. This module loads and checks the listing, turns rows into datasets (sorted by
the domain's keys, --SEQ numbered per subject), refuses any dataset that breaks a rule, naming the
dataset and variable, and writes ``<DOMAIN>.csv``, ``<DOMAIN>.xpt`` and ``define_variables.csv``.

Nothing dated after the data cut-off is written: the builders leave it out and every --DTC value is
checked against the cut-off here again. The CSV files are byte-for-byte the same for the same
database (rows sorted, numbers written in their shortest exact form).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import pyreadstat
from sqlalchemy.orm import Session

from nettrial._yaml import load_yaml
from nettrial.exceptions import InputError, RuleDataError
from nettrial.export import ExportResult
from nettrial.protocol.model import Protocol

VARIABLES_FILE = resources.files("nettrial.export") / "data" / "sdtm_variables.yaml"
DEFINE_FILE = "define_variables.csv"
DEFINE_COLUMNS = ("dataset", "variable", "label", "type", "length", "codelist", "origin", "core")
MAX_NAME, MAX_LABEL, MAX_LENGTH = 8, 40, 200  # SAS transport version 5
TYPES, CORES = ("Char", "Num"), ("Req", "Exp", "Perm")
ORIGINS = ("Protocol", "Assigned", "Collected", "Derived")
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Variable:
    """One SDTM variable as the listing declares it."""

    name: str
    label: str
    type: str  # Char | Num
    length: int
    codelist: str | None
    core: str
    origin: str


@dataclass(frozen=True, slots=True)
class Domain:
    """A dataset: name, label, sort keys and variables in order."""

    name: str
    label: str
    keys: tuple[str, ...]
    variables: tuple[Variable, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)

    @property
    def seq(self) -> str | None:
        """The --SEQ variable, when the domain has one."""
        name = f"{self.name}SEQ"
        return name if name in self.names else None


@dataclass(frozen=True, slots=True)
class Standard:
    """The whole listing: domains in writing order, trial constants and the store-to-CDISC terms."""

    domains: dict[str, Domain]
    trial: dict[str, Any]
    terms: dict[str, Any]
    source: str


# --- the listing -----------------------------------------------------------------------------------


def _variable(where: str, domain: str, raw: Any) -> Variable:
    if not isinstance(raw, Mapping):
        raise RuleDataError(where, f"{domain}: a variable must be a mapping, not {raw!r}")
    name = str(raw.get("name", ""))
    at = f"{domain}.{name}"
    try:
        variable = Variable(
            name=name,
            label=str(raw["label"]),
            type=str(raw["type"]),
            length=raw["length"],
            codelist=None if raw.get("codelist") is None else str(raw["codelist"]),
            core=str(raw["core"]),
            origin=str(raw["origin"]),
        )
    except KeyError as missing:
        raise RuleDataError(where, f"{at}: no {missing.args[0]}") from None
    problems = []
    if not _NAME.match(name) or len(name) > MAX_NAME:
        problems.append(f"name must be 1-{MAX_NAME} uppercase letters, digits or _")
    if not variable.label or len(variable.label) > MAX_LABEL:
        problems.append(f"label has {len(variable.label)} characters (1-{MAX_LABEL} allowed)")
    if variable.type not in TYPES:
        problems.append(f"type {variable.type!r} is not one of {', '.join(TYPES)}")
    length = variable.length
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= MAX_LENGTH:
        problems.append(f"length {length!r} is not 1-{MAX_LENGTH}")
    elif variable.type == "Num" and length != 8:
        problems.append("a Num variable has length 8")
    if variable.core not in CORES:
        problems.append(f"core {variable.core!r} is not one of {', '.join(CORES)}")
    if variable.origin not in ORIGINS:
        problems.append(f"origin {variable.origin!r} is not one of {', '.join(ORIGINS)}")
    if problems:
        raise RuleDataError(where, f"{at}: {'; '.join(problems)}")
    return variable


def _domain(where: str, name: str, raw: Any) -> Domain:
    if not _NAME.match(str(name)) or len(str(name)) > MAX_NAME:
        raise RuleDataError(where, f"{name}: a dataset name is 1-{MAX_NAME} uppercase letters or digits")
    if not isinstance(raw, Mapping) or not raw.get("variables"):
        raise RuleDataError(where, f"{name}: needs a label, keys and variables")
    label = str(raw.get("label", ""))
    if not label or len(label) > MAX_LABEL:
        raise RuleDataError(where, f"{name}: dataset label has {len(label)} characters (1-{MAX_LABEL})")
    variables = tuple(_variable(where, name, v) for v in raw["variables"])
    names = [v.name for v in variables]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise RuleDataError(where, f"{name}.{twice[0]}: declared twice")
    keys = tuple(raw.get("keys") or ())
    unknown = [k for k in keys if k not in names]
    if unknown or "USUBJID" not in names or "STUDYID" not in names:
        missing = unknown[0] if unknown else "STUDYID/USUBJID"
        raise RuleDataError(where, f"{name}.{missing}: a key or identifier not among its variables")
    return Domain(name, label, keys, variables)


def load_standard(path: str | Path | None = None) -> Standard:
    """Read and check a variable listing (the shipped one by default); a broken rule is refused.

    Raises ``RuleDataError`` naming the dataset and variable, e.g. ``AE.AETERM: label has 41
    characters``.
    """
    text = Path(path).read_text(encoding="utf-8") if path else VARIABLES_FILE.read_text(encoding="utf-8")
    where = str(path or "nettrial/export/data/sdtm_variables.yaml")
    raw = load_yaml(text)
    if not isinstance(raw, Mapping) or not isinstance(raw.get("domains"), Mapping):
        raise RuleDataError(where, "needs a 'domains' mapping")
    domains = {str(name): _domain(where, str(name), spec) for name, spec in raw["domains"].items()}
    return Standard(domains, dict(raw.get("trial") or {}), dict(raw.get("terms") or {}), where)


# --- datasets --------------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT


def _sort_key(domain: Domain, row: Mapping[str, Any]) -> tuple:
    kinds = {v.name: v.type for v in domain.variables}
    key = []
    for name in domain.keys:
        value = row.get(name)
        if kinds[name] == "Num":  # missing sorts first, as SAS does
            key.append((0, 0.0) if _missing(value) else (1, float(value)))
        else:
            key.append("" if _missing(value) else str(value))
    return tuple(key)


def dataset(domain: Domain, rows: Iterable[Mapping[str, Any]], study_id: str) -> pd.DataFrame:
    """Rows as a dataset: STUDYID and DOMAIN filled, sorted by the keys (stably), --SEQ numbered.

    A row naming a variable the domain does not declare is refused (``InputError``).
    """
    names = set(domain.names)
    filled = []
    for row in rows:
        extra = sorted(set(row) - names)
        if extra:
            raise InputError(f"{domain.name}.{extra[0]}", "is not a variable of the dataset")
        filled.append({"STUDYID": study_id, **({"DOMAIN": domain.name} if "DOMAIN" in names else {}), **row})
    filled.sort(key=lambda r: _sort_key(domain, r))
    if domain.seq is not None:
        counts: dict[str, int] = {}
        for row in filled:
            counts[row["USUBJID"]] = counts.get(row["USUBJID"], 0) + 1
            row[domain.seq] = counts[row["USUBJID"]]
    columns = {}
    for v in domain.variables:
        values = [row.get(v.name) for row in filled]
        check_values(domain, v, values)
        if v.type == "Num":
            columns[v.name] = pd.Series([math.nan if _missing(x) else float(x) for x in values], dtype=float)
        else:
            columns[v.name] = pd.Series([None if _missing(x) else x for x in values], dtype=object)
    return pd.DataFrame(columns, columns=list(domain.names))


def check_values(domain: Domain, variable: Variable, values: Sequence[Any]) -> None:
    """Refuse values of the wrong type, longer than declared, or not ASCII (transport v5)."""
    field = f"{domain.name}.{variable.name}"
    for i, value in enumerate(values):
        if _missing(value):
            continue
        if variable.type == "Num":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(field, f"row {i + 1}: {value!r} is not a number (declared Num)")
            continue
        if not isinstance(value, str):
            raise InputError(field, f"row {i + 1}: {value!r} is not text (declared Char)")
        if not value.isascii():
            raise InputError(field, f"row {i + 1}: {value!r} is not ASCII (SAS transport v5)")
        if len(value) > variable.length:
            message = f"row {i + 1}: {len(value)} characters, more than the {variable.length} declared"
            raise InputError(field, message)


def check_dataset(domain: Domain, frame: pd.DataFrame, cutoff: dt.date, subjects: set[str]) -> None:
    """A whole dataset: its variables as declared, dates not after the cut-off, subjects in DM."""
    if tuple(frame.columns) != domain.names:
        raise InputError(domain.name, "columns differ from the declared variables")
    for v in domain.variables:
        check_values(domain, v, frame[v.name].tolist())
        if v.name.endswith("DTC"):
            late = [x for x in frame[v.name] if not _missing(x) and x[:10] > cutoff.isoformat()]
            if late:
                raise InputError(f"{domain.name}.{v.name}", f"{late[0]} is after the cut-off {cutoff}")
    strangers = sorted(set(frame["USUBJID"]) - subjects)
    if strangers:
        raise InputError(f"{domain.name}.USUBJID", f"{strangers[0]} is not a subject of DM")


# --- writing ---------------------------------------------------------------------------------------


def number_text(value: float) -> str:
    """A number as CSV text: blank when missing, integers without a point, else the shortest repr."""
    if _missing(value):
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def write_csv(domain: Domain, frame: pd.DataFrame, path: Path) -> Path:
    kinds = [v.type for v in domain.variables]
    with path.open("w", encoding="ascii", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(domain.names)
        for row in frame.itertuples(index=False):
            writer.writerow(
                number_text(x) if kind == "Num" else ("" if _missing(x) else x)
                for x, kind in zip(row, kinds, strict=True)
            )
    return path


def write_xpt(domain: Domain, frame: pd.DataFrame, path: Path) -> Path:
    labels = [v.label for v in domain.variables]
    pyreadstat.write_xport(
        frame, str(path), file_label=domain.label, column_labels=labels,
        table_name=domain.name, file_format_version=5,
    )  # fmt: skip
    return path


def define_listing(standard: Standard) -> pd.DataFrame:
    """The machine-readable variable listing (define-style): one row per dataset variable."""
    rows = [
        (d.name, v.name, v.label, v.type, v.length, v.codelist or "", v.origin, v.core)
        for d in standard.domains.values()
        for v in d.variables
    ]
    return pd.DataFrame(rows, columns=list(DEFINE_COLUMNS))


def _write_define(standard: Standard, path: Path) -> Path:
    with path.open("w", encoding="ascii", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(DEFINE_COLUMNS)
        writer.writerows(define_listing(standard).itertuples(index=False))
    return path


# --- the export ------------------------------------------------------------------------------------


def build_datasets(
    session: Session,
    protocol: Protocol,
    cutoff: dt.date,
    *,
    pseudonymised: bool = False,
    standard: Standard | None = None,
) -> dict[str, pd.DataFrame]:
    """Every domain of the listing as a checked dataset, in the listing's order (DM first)."""
    from nettrial.export.sdtm_domains import build_rows

    standard = standard or load_standard()
    rows = build_rows(session, protocol, cutoff, standard, pseudonymised=pseudonymised)
    study_id = protocol.identity.nct_id
    frames = {name: dataset(d, rows.get(name, []), study_id) for name, d in standard.domains.items()}
    if "DM" not in frames:
        raise RuleDataError(standard.source, "DM: the listing has no DM dataset")
    subjects = set(frames["DM"]["USUBJID"])
    for name, frame in frames.items():
        check_dataset(standard.domains[name], frame, cutoff, subjects)
    return frames


def export(
    session: Session,
    protocol: Protocol,
    out: Path,
    *,
    cutoff: dt.date,
    pseudonymised: bool = False,
    variables: str | Path | None = None,
) -> ExportResult:
    """Write every SDTM dataset as CSV and XPT, and the variable listing, into ``out``.

    ``variables`` is another variable listing (the shipped one by default). Every dataset is built
    and checked before the first file is written: a refused dataset writes nothing.
    """
    standard = load_standard(variables)
    frames = build_datasets(session, protocol, cutoff, pseudonymised=pseudonymised, standard=standard)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    notes = []
    for name, frame in frames.items():
        domain = standard.domains[name]
        files.append(write_csv(domain, frame, out / f"{name.lower()}.csv"))
        files.append(write_xpt(domain, frame, out / f"{name.lower()}.xpt"))
        if frame.empty:
            notes.append(f"{name}: no source records up to the cut-off; written empty with its variables")
    files.append(_write_define(standard, out / DEFINE_FILE))
    if pseudonymised:
        notes.append("pseudonymised: DM.BRTHDTC holds the year of birth only; no names or record numbers")
    return ExportResult(
        format="sdtm",
        files=tuple(files),
        counts={name: len(frame) for name, frame in frames.items()},
        cutoff=cutoff,
        pseudonymised=pseudonymised,
        notes=tuple(notes),
    )
