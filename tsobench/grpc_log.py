"""gRPC's C core writes its own log lines (``E1125 ... add_port.cc:83] ...``) to
stderr; the command line says what went wrong in words instead. The core reads
``GRPC_VERBOSITY`` once, when grpc is first imported, so this runs before that,
from argv: ``-v``/``--verbose`` keeps gRPC's log. Child processes inherit it."""

from __future__ import annotations

import os
import sys

VERBOSE_FLAGS = frozenset({"-v", "--verbose"})


def quiet_grpc_unless_verbose(argv: list[str] | None = None) -> None:
    verbose = not VERBOSE_FLAGS.isdisjoint(sys.argv[1:] if argv is None else argv)
    # Set either way, so the children (sweep points, servers) inherit the choice.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR" if verbose else "NONE")
