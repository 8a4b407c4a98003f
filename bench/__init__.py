"""The harness: load, latency, correctness, results, sweeps, reports, planning."""
