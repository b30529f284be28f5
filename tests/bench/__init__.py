"""Benchmarks (pytest-benchmark); ``make bench`` runs them with timing switched on."""
