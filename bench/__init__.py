"""Benchmarks and baselines for pd_pipeline (`make bench`, `make loadtest`; see README,
"Performance"). Never run as unit tests: tests check the fast path's correctness instead."""
