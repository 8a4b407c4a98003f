"""What the server's round-trip emulation costs: N replies on one stream, timed, per round trip.

    python -m tsobench.bench.suite.rtt_cost --rtt-ms 0,1 --replies 2000 --rounds 5
    python -m tsobench.bench.suite.rtt_cost --rtt-ms 0,1 --baseline ../before/.typecheck

Each variant is one long-lived server process (``python -m tsobench.server``); every round
times each variant once, in turn, so drift on a busy machine hits them alike. A round sends N
requests (count 1) on one new stream as fast as gRPC takes them and waits for the N replies:
wall µs per reply (the round trip itself taken off) and the server's CPU µs per reply (user+sys
from /proc, Linux only). ``--baseline DIR`` adds a server run from another checkout (DIR first on
its PYTHONPATH, e.g. that checkout's ``.typecheck``), at round trip 0, to compare a change with.
Not a test: it prints medians, it judges nothing.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click
import grpc

from tsobench.protos import pdpb_pb2, pdpb_pb2_grpc
from tsobench.server import DEFAULT_CLUSTER_ID

START_TIMEOUT_S = 20.0


@dataclass
class Variant:
    """One server and what each round measured on it."""

    name: str
    rtt_ms: float
    pythonpath: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    address: str = ""
    wall_us: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)

    def start(self, folder: Path) -> None:
        port_file = folder / f"{self.name}.port"
        argv = [sys.executable, "-P", "-m", "tsobench.server", "--port", "0", "--port-file", str(port_file)]
        argv += ["--data-dir", str(folder / self.name), "--metrics-port", "-1", "--exit-with-parent"]
        argv += ["--rtt-ms", str(self.rtt_ms)] if self.rtt_ms else []
        env = {**os.environ, **({"PYTHONPATH": self.pythonpath} if self.pythonpath else {})}
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise click.ClickException(f"server {self.name} did not start (exit {self.proc.poll()})")
            time.sleep(0.02)
        self.address = f"127.0.0.1:{port_file.read_text().strip()}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            assert self.proc.stdin is not None
            self.proc.stdin.close()

    def cpu_s(self) -> float | None:
        """The server's user+sys so far (None where /proc is not there to say)."""
        assert self.proc is not None
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def round(self, stub: pdpb_pb2_grpc.PDStub, replies: int) -> None:
        request = pdpb_pb2.TsoRequest(header=pdpb_pb2.RequestHeader(cluster_id=DEFAULT_CLUSTER_ID), count=1)
        cpu_before, started = self.cpu_s(), time.perf_counter()
        answered = sum(1 for _ in stub.Tso(_repeat(request, replies), timeout=60))
        wall_s, cpu_after = time.perf_counter() - started, self.cpu_s()
        assert answered == replies, (answered, replies)
        self.wall_us.append((wall_s - self.rtt_ms / 1000) / replies * 1e6)
        if cpu_before is not None and cpu_after is not None:
            self.cpu_us.append((cpu_after - cpu_before) / replies * 1e6)


def _repeat(request: pdpb_pb2.TsoRequest, times: int) -> Iterator[pdpb_pb2.TsoRequest]:
    for _ in range(times):
        yield request


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f}" if values else "       -"


@click.command()
@click.option("--rtt-ms", "rtts", default="0,1", show_default=True, help="Round trips to time, comma-separated.")
@click.option("--replies", default=2_000, show_default=True, type=click.IntRange(1), help="Replies per round.")
@click.option("--rounds", default=5, show_default=True, type=click.IntRange(1), help="Rounds per variant.")
@click.option("--baseline", type=click.Path(file_okay=False, exists=True), help="Also a server from this source tree.")
def main(rtts: str, replies: int, rounds: int, baseline: str | None) -> None:
    """Time N replies on one stream against servers at each round trip (and a baseline), alternately."""
    try:
        variants = [Variant(f"rtt{float(r):g}", float(r)) for r in rtts.split(",")]
    except ValueError:
        raise click.BadParameter(f"not a list of numbers: {rtts!r}", param_hint="--rtt-ms") from None
    if baseline:
        variants.append(Variant("baseline-rtt0", 0.0, str(Path(baseline).resolve())))
    with tempfile.TemporaryDirectory(prefix="rtt-cost-") as folder:
        try:
            for v in variants:
                v.start(Path(folder))
            channels = [grpc.insecure_channel(v.address) for v in variants]
            stubs = [pdpb_pb2_grpc.PDStub(c) for c in channels]
            for v, stub in zip(variants, stubs, strict=True):
                v.round(stub, min(replies, 1000))  # warm-up, not recorded
                v.wall_us.clear()
                v.cpu_us.clear()
            for _ in range(rounds):
                for v, stub in zip(variants, stubs, strict=True):
                    v.round(stub, replies)
            for c in channels:
                c.close()
        finally:
            for v in variants:
                v.stop()
    click.echo(f"{replies} replies on one stream, {rounds} rounds, medians:")
    click.echo(f"{'variant':>14}  {'wall µs/reply':>13}  {'server CPU µs/reply':>19}")
    for v in variants:
        click.echo(f"{v.name:>14}  {_median(v.wall_us):>13}  {_median(v.cpu_us):>19}")


if __name__ == "__main__":
    main()
