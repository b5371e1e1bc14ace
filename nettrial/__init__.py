"""nettrial: runs the NCT07279532 study end to end (staging, eligibility, safety, EDC, analysis, export).

The public surface: ``stage`` and ``grade`` (nettrial.staging), ``load_protocol``
(nettrial.protocol), ``evaluate`` and ``ScreeningRecord`` (nettrial.eligibility).
"""

__version__ = "0.1.0"

__all__ = ["ScreeningRecord", "__version__", "evaluate", "grade", "load_protocol", "stage"]


def __getattr__(name: str):
    # Imported on first use, so that `nettrial --help` does not load every engine.
    if name in ("stage", "grade"):
        from nettrial import staging

        return getattr(staging, name)
    if name == "load_protocol":
        from nettrial.protocol import load_protocol

        return load_protocol
    if name in ("evaluate", "ScreeningRecord"):
        from nettrial import eligibility

        return getattr(eligibility, name)
    raise AttributeError(f"module 'nettrial' has no attribute {name!r}")
