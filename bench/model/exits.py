"""Exit codes: one table for every command (the README's "Exit codes" lists it), so a sweep, the
command line and a script read the same numbers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tsobench.bench.model.verdict import Verdict

if TYPE_CHECKING:
    from tsobench.bench.model import results

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DIRTY, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_UNKNOWN = 4  # plan: the answer depends on a ceiling nobody measured; compare: a point cannot be told,
# unless --allow-unknown (a gate never passes on nothing)
# results could not be written where asked (run: saved only to the fallback it names, or nowhere); a sweep
# stopped by a write failure (a point's results or the manifest), with the command that resumes it
EXIT_DISK = 5


def exit_code(result: results.RunResult) -> int:
    """0 clean; 130 interrupted, what was measured saved (violations still say 3); 3 otherwise not clean."""
    judgement = result.judgement
    if judgement.clean:
        return EXIT_OK
    if result.status == "interrupted" and judgement.verdict is not Verdict.VIOLATIONS:
        return EXIT_INTERRUPTED
    return EXIT_DIRTY
