"""``python -m tsobench.server``: the same command as ``tsobench serve``."""

from tsobench.grpc_log import quiet_grpc_unless_verbose

quiet_grpc_unless_verbose()

from .cli import serve_command  # noqa: E402  (after gRPC's log level is set)

serve_command(prog_name="python -m tsobench.server")
