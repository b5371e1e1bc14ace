"""AJCC 8th / Version 9 staging of GEP-NETs and WHO 2019 grade (rules in ``data/``)."""

from nettrial.staging.engine import StagingResult, stage
from nettrial.staging.findings import Findings
from nettrial.staging.grade import GradeResult, grade

__all__ = ["Findings", "GradeResult", "StagingResult", "grade", "stage"]
