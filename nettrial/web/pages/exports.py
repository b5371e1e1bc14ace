"""Exports: a placeholder listing what the export issue adds (SDTM, ODM, ClinicalTrials.gov, FHIR)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from nettrial.web.pages._forms import require_any
from nettrial.web.render import render
from nettrial.web.session import page_actor

router = APIRouter(include_in_schema=False)

# One per module of nettrial/export/ (conventions.md), in the order the export issue lists them.
PLANNED = ("sdtm", "odm", "ctgov", "fhir")


@router.get("/exports")
def exports(request: Request):
    """What can be exported (nothing yet: the export issue fills this page)."""
    require_any(page_actor(request), "study.read", "study.read_pseudonymised")
    return render(request, "exports.html", planned=PLANNED)
