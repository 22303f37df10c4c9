"""Metrics computed from solved plans: pure functions on numbers, no solver objects."""
