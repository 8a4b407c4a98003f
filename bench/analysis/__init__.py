"""Reading results files and turning them into tables, fits, plots, plans and reports.

This side reads only results files (each once, never writing into them): it imports
the results format (``tsobench.bench.model.results``, ``latency``, ``verdict``) and the
option declarations that say what a point is (``tsobench.options``, ``bench.config``),
never the harness that produced the files nor the live strategy registry.
"""
