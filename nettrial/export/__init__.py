"""Everything the study holds, in standard forms: CDISC SDTM and ODM, ClinicalTrials.gov, FHIR.

One module per format. Each has ``export(session, protocol, out, *, cutoff, pseudonymised=False)``
returning an :class:`ExportResult`; ``FORMATS`` names them for the command line and the web page,
which both put every export in the audit trail with ``record_result``.
Exports read the store and the analysis; they never import the service.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# name -> (module, what it writes). Imported on use: each format has its own dependencies.
FORMATS: dict[str, tuple[str, str]] = {
    "sdtm": ("nettrial.export.sdtm", "CDISC SDTM datasets (CSV, SAS transport v5) and variable listing"),
    "odm": ("nettrial.export.odm", "CDISC ODM 1.3.2 XML: study metadata, clinical data and audit records"),
    "ctgov-results": ("nettrial.export.ctgov", "ClinicalTrials.gov API v2 JSON: the results section"),
    "fhir": ("nettrial.export.fhir", "FHIR R4B Bundle: ResearchStudy, ResearchSubject, Patient"),
}


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: its files, how many records of each kind, and for whom it was made."""

    format: str
    files: tuple[Path, ...]
    counts: dict[str, int]
    cutoff: dt.date
    pseudonymised: bool
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "files": [str(f) for f in self.files],
            "counts": dict(self.counts),
            "cutoff": self.cutoff.isoformat(),
            "pseudonymised": self.pseudonymised,
            "notes": list(self.notes),
        }

    def explain(self) -> str:
        who = "pseudonymised" if self.pseudonymised else "identified"
        lines = [f"{self.format} export ({who}, data cut-off {self.cutoff}):"]
        lines += [f"  {name}: {n}" for name, n in self.counts.items()]
        lines += [f"  wrote {f}" for f in self.files]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def exporter(name: str) -> Callable[..., ExportResult]:
    """The ``export`` function of format ``name`` (a key of ``FORMATS``)."""
    from nettrial.exceptions import InputError

    if name not in FORMATS:
        raise InputError("format", f"{name!r} is not an export format", allowed=sorted(FORMATS))
    return import_module(FORMATS[name][0]).export


def record_result(
    session: Session, result: ExportResult, *, user_id: int | None, username: str, root: Path
) -> None:
    """Add ``result`` to the audit trail as made by ``username``, its files by their place in ``root``."""
    from nettrial.store.exports import record_export  # on use: the command line loads FORMATS at start

    record_export(
        session,
        user_id=user_id,
        username=username,
        format=result.format,
        cutoff=result.cutoff,
        pseudonymised=result.pseudonymised,
        files=result.files,
        counts=result.counts,
        root=root,
    )
