"""Safety: CTCAE grading, dose modification and the visit schedule, all run from data files."""

from nettrial.safety.ctcae import GradeResult, grade, worst
from nettrial.safety.dosing import (
    DoseIntensity,
    DoseRecommendation,
    DosingPeriod,
    Interruption,
    dose_intensity,
    recommend,
)
from nettrial.safety.schedule import PlannedVisit, VisitStatus, add_months, plan_visits, visit_statuses
from nettrial.safety.terms import Term, find_term, terms

__all__ = [
    "DoseIntensity",
    "DoseRecommendation",
    "DosingPeriod",
    "GradeResult",
    "Interruption",
    "PlannedVisit",
    "Term",
    "VisitStatus",
    "add_months",
    "dose_intensity",
    "find_term",
    "grade",
    "plan_visits",
    "recommend",
    "terms",
    "visit_statuses",
    "worst",
]
