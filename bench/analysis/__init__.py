"""Reading results files and turning them into tables, fits, plots, plans and reports.

This side imports only the results format (``tsobench.bench.results`` and
``tsobench.bench.latency``), never the harness that produced the files.
"""
