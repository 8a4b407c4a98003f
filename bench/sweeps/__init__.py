"""Many runs: sweeps over axes (each point a child process with a hard limit) and the SLO search."""
