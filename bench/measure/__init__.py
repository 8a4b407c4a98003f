"""Measurement inside one client process: drivers run the callers, the fold turns what they
appended into histograms, intervals and exact checks, and a shard returns one ShardResult."""
