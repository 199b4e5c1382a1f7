"""Benchmarks of solarstream against the alternatives (run ``python bench/run.py``)."""
