"""nettrial: runs the NCT07279532 study end to end (staging, eligibility, safety, EDC, analysis, export)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
