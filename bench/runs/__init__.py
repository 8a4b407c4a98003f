"""One run: the server (embedded or --target), the round trip, the shards on processes or Dask,
faults on a timeline, stop signals, and the merged RunResult."""
