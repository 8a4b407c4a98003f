"""The data model: what a run is asked to do (config, faults) and what it returns (results, verdict,
exit codes). Everything above reads and writes these; nothing here imports a layer above."""
