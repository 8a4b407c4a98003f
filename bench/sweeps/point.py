"""The process a sweep starts for each point: it runs the point's ``tsobench run`` and ties it
to the sweep's life, so that however the sweep ends, the run is told to stop exactly once.

``python -P -m tsobench.bench.sweeps.point SWEEP_PID ARGV...`` runs ARGV and exits with its
exit code. SIGINT, SIGTERM or SIGHUP to it (the sweep passing a stop on) reach the run as one
SIGINT: it stops its load and saves what it measured, as on Ctrl-C. If the sweep dies
outright (SIGKILL, the OOM killer), Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``)
sends this process SIGTERM, which stops the run the same way: nothing keeps loading the
machine, re-parented to init.

Why a process between the two rather than setting the parent-death signal on the run itself:
the kernel sends it each time a thread of the dead parent hands its children on, so a sweep
with several threads (its progress display runs one) may send it several times, and a second
interrupt makes ``tsobench run`` stop waiting for its shards and lose the point. Here signals
stay blocked and are taken one at a time with ``sigwait``, so repeats collapse into one stop;
nothing runs in a signal handler and there is no race with the run's start. Only the standard
library is imported: this process lives as long as its point.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

STOPS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    sweep, command = int(argv[0]), argv[1:]
    signal.pthread_sigmask(signal.SIG_BLOCK, {*STOPS, signal.SIGCHLD})  # taken by sigwait below, in order
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != sweep:
        return 1  # the sweep died before the tie held: nothing to run for
    # This process has one thread, so unblocking in the child before exec is safe (and needed:
    # the run must get its signals).
    unblock = {*STOPS, signal.SIGCHLD}
    run = subprocess.Popen(command, preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, unblock))
    told = False
    while run.poll() is None:
        if signal.sigwait({*STOPS, signal.SIGCHLD}) in STOPS and not told:
            told = True
            run.send_signal(signal.SIGINT)
    return run.returncode if run.returncode >= 0 else 128 - run.returncode  # killed by N: 128+N, as shells say


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
