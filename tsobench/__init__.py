"""tsobench: how should many concurrent callers share gRPC streams to a Timestamp Oracle? Measured.

The repository's folders install as subpackages of this one package:
``tsobench.bench`` (harness and analysis), ``tsobench.strategies``,
``tsobench.server`` and ``tsobench.protos``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tsobench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
