"""``tsobench`` and ``python -m tsobench.bench``: the command line."""

from tsobench.grpc_log import quiet_grpc_unless_verbose


def main() -> None:
    quiet_grpc_unless_verbose()  # before anything imports grpc
    from tsobench.bench.cli.commands import main as cli

    cli(prog_name="tsobench")


if __name__ == "__main__":
    main()
