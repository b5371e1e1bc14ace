"""Screening records evaluated against a protocol's criteria, with evidence."""

from nettrial.eligibility.evaluate import evaluate
from nettrial.eligibility.record import ScreeningRecord
from nettrial.eligibility.verdicts import Decision, EligibilityResult, Truth

__all__ = ["Decision", "EligibilityResult", "ScreeningRecord", "Truth", "evaluate"]
