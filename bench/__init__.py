"""Benchmarks of liushui against peers (DuckDB SQL, pandas, a DuckDB floor). Not part of the test suite.

Run: `python -m bench.run --rows 1000000 --rows 10000000` (results go to BENCHMARKS.md).
"""
