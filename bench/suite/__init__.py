"""The pytest-benchmark suite: ``pytest bench --benchmark-json out.json``.

Scale with TSOBENCH_SUITE=smoke|quick|full (default quick): smoke is one tiny
case of each kind (the plain test run uses it so the suite cannot rot).
"""
