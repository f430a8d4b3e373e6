"""Fuzzing pt2q with random exported models (``python -m tests.fuzz --examples 2000``)."""
