"""The "Stage and grade" panel: AJCC stage and WHO grade computed from the pathology as entered.

The staging and grade engines do the work (``nettrial.staging``); the panel only collects their
results, and an input they refuse, for the page. It is computed from a saved record's pathology or,
while the user types, from the form's pathology fields (``/screening/stage-preview``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nettrial.exceptions import InputError
from nettrial.staging import GradeResult, StagingResult, grade, stage
from nettrial.staging.findings import findings_from, is_blank
from nettrial.web.record_form import STUDY_EDITION


@dataclass(frozen=True, slots=True)
class StagePanel:
    """What the panel shows: a stage, a grade, or the input that stopped them."""

    staging: StagingResult | None = None
    grade: GradeResult | None = None
    explicit_stage: str | None = None  # a stage group entered with its source instead of findings
    explicit_grade: str | None = None
    error_field: str | None = None
    error: str | None = None


def _text(value: Any) -> Any:
    return None if is_blank(value) else value


def stage_panel(pathology: Mapping[str, Any]) -> StagePanel:
    """Stage and grade of ``pathology`` (a record's ``pathology`` section or the form's fields)."""
    p = {key: _text(value) for key, value in pathology.items()}
    explicit_stage = f"{p['stage_group']} ({p.get('stage_source') or '?'})" if p.get("stage_group") else None
    explicit_grade = f"{p['grade']} ({p.get('grade_source') or '?'})" if p.get("grade") else None
    try:
        staging = None
        if p.get("site") and not explicit_stage:
            staging = stage(
                p["site"],
                STUDY_EDITION,
                findings=findings_from(p),
                t=p.get("t"),
                n=p.get("n"),
                m=p.get("m"),
                tumour_type=p.get("tumour_type"),
                differentiation=p.get("differentiation"),
                histology=p.get("histology"),
            )
        graded = (
            None
            if explicit_grade
            else grade(p.get("ki67_percent"), p.get("mitoses_per_2mm2"), p.get("differentiation"))
        )
    except InputError as error:
        field = {"ki67": "ki67_percent", "mitoses": "mitoses_per_2mm2"}.get(error.field, error.field)
        return StagePanel(error_field=f"pathology.{field}", error=error.detail)
    return StagePanel(staging, graded, explicit_stage, explicit_grade)
