"""Benchmarks: each compares greenq with a baseline measured in the same run (ratios, not absolutes)."""
