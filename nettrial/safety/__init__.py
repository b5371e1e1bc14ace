"""Safety: CTCAE v5.0 grading, dose modification and the visit schedule."""
