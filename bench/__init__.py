"""Benchmarks and baselines for pd_pipeline (`make bench`, `make loadtest`; see
docs/performance.md). Never run as unit tests: tests check the fast path's correctness instead."""
