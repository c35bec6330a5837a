"""Benchmarks (``make bench``), not tests: each ``bench_*.py`` module has a ``main()``.

They print figures and ratios against a baseline measured in the same process and run;
no timing is ever asserted in the test suite.
"""
