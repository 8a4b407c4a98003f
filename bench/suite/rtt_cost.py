"""What the server's round-trip emulation costs: N replies on one stream, timed, per round trip.

    python -m tsobench.bench.suite.rtt_cost --rtt-ms 0,1 --replies 2000 --rounds 5
    python -m tsobench.bench.suite.rtt_cost --rtt-ms 0,1 --baseline ../before/.typecheck

Each variant is one long-lived server process (``python -m tsobench.server``); every round
times each variant once, in turn, so drift on a busy machine hits them alike. A round sends N
requests (count 1) on one new stream as fast as gRPC takes them (``--one-at-a-time``: each once
the reply before it came) and waits for the N replies: wall µs per reply (the round trips waited
taken off) and the server's CPU µs per reply (user+sys from /proc, Linux only). ``--baseline
DIR`` adds a server run from another checkout (DIR first on its PYTHONPATH, e.g. that checkout's
``.typecheck``), at round trip 0, to compare a change with. Not a test: it prints, it judges nothing.
"""

from __future__ import annotations

import os
import queue
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import grpc

from tsobench.protos import pdpb_pb2, pdpb_pb2_grpc
from tsobench.server import DEFAULT_CLUSTER_ID

START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Variant:
    """A server to time: at this round trip, from this source tree (None: this one)."""

    name: str
    rtt_ms: float
    pythonpath: str | None = None


@dataclass(frozen=True)
class Server:
    """A variant's server process, the stub that reaches it, and what each round measured."""

    variant: Variant
    proc: subprocess.Popen[bytes]
    channel: grpc.Channel
    wall_us: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)

    @staticmethod
    def start(variant: Variant, folder: Path) -> Server:
        port_file = folder / f"{variant.name}.port"
        argv = [sys.executable, "-P", "-m", "tsobench.server", "--port", "0", "--port-file", str(port_file)]
        argv += ["--data-dir", str(folder / variant.name), "--metrics-port", "-1", "--exit-with-parent"]
        argv += ["--rtt-ms", str(variant.rtt_ms)] if variant.rtt_ms else []
        env = {**os.environ, **({"PYTHONPATH": variant.pythonpath} if variant.pythonpath else {})}
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise click.ClickException(f"server {variant.name} did not start (exit {proc.wait()})")
            time.sleep(0.02)
        return Server(variant, proc, grpc.insecure_channel(f"127.0.0.1:{port_file.read_text().strip()}"))

    def stop(self) -> None:
        self.channel.close()
        self.proc.terminate()
        self.proc.wait(10)
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def cpu_s(self) -> float | None:
        """The server's user+sys so far (None where /proc is not there to say)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def round(self, replies: int, one_at_a_time: bool, record: bool = True) -> None:
        """N replies on a new stream; the round trips spent waiting are taken off the wall time."""
        stub = pdpb_pb2_grpc.PDStub(self.channel)
        cpu_before, started = self.cpu_s(), time.perf_counter()
        answered = _one_at_a_time(stub, replies) if one_at_a_time else _pipelined(stub, replies)
        wall_s, cpu_after = time.perf_counter() - started, self.cpu_s()
        if answered != replies:
            raise click.ClickException(f"{self.variant.name}: {answered} replies to {replies} requests")
        if not record:
            return
        waited_s = self.variant.rtt_ms / 1000 * (replies if one_at_a_time else 1)
        self.wall_us.append((wall_s - waited_s) / replies * 1e6)
        if cpu_before is not None and cpu_after is not None:
            self.cpu_us.append((cpu_after - cpu_before) / replies * 1e6)


REQUEST = pdpb_pb2.TsoRequest(header=pdpb_pb2.RequestHeader(cluster_id=DEFAULT_CLUSTER_ID), count=1)


def _pipelined(stub: pdpb_pb2_grpc.PDStub, replies: int) -> int:
    """Every request sent as fast as gRPC takes them; returns how many replies came."""
    return sum(1 for _ in stub.Tso(iter([REQUEST] * replies), timeout=60))


def _one_at_a_time(stub: pdpb_pb2_grpc.PDStub, replies: int) -> int:
    """Each request sent once the reply before it came (a round trip each)."""
    requests: queue.SimpleQueue[pdpb_pb2.TsoRequest | None] = queue.SimpleQueue()
    stream = stub.Tso(iter(requests.get, None), timeout=60)
    for _ in range(replies):
        requests.put(REQUEST)
        next(stream)
    requests.put(None)
    return replies + sum(1 for _ in stream)


def _median(values: list[float]) -> str:
    """The median, and the spread of the rounds (a wide one says the machine was busy)."""
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


@click.command()
@click.option("--rtt-ms", "rtts", default="0,1", show_default=True, help="Round trips to time, comma-separated.")
@click.option("--replies", default=2_000, show_default=True, type=click.IntRange(1), help="Replies per round.")
@click.option("--rounds", default=5, show_default=True, type=click.IntRange(1), help="Rounds per variant.")
@click.option("--baseline", type=click.Path(file_okay=False, exists=True), help="Also a server from this source tree.")
@click.option("--one-at-a-time", is_flag=True, help="Send each request once the reply before it came (not pipelined).")
def main(rtts: str, replies: int, rounds: int, baseline: str | None, one_at_a_time: bool) -> None:
    """Time N replies on one stream against servers at each round trip (and a baseline), alternately."""
    try:
        variants = [Variant(f"rtt{float(r):g}", float(r)) for r in rtts.split(",")]
    except ValueError:
        raise click.BadParameter(f"not a list of numbers: {rtts!r}", param_hint="--rtt-ms") from None
    if baseline:
        variants.append(Variant("baseline-rtt0", 0.0, str(Path(baseline).resolve())))
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="rtt-cost-") as folder:
        try:
            for v in variants:
                servers.append(Server.start(v, Path(folder)))
            for server in servers:
                server.round(min(replies, 1000), one_at_a_time, record=False)  # warm-up
            for _ in range(rounds):
                for server in servers:
                    server.round(replies, one_at_a_time)
        finally:
            for server in servers:
                server.stop()
    how = "one at a time" if one_at_a_time else "pipelined"
    click.echo(f"{replies} replies on one stream ({how}), {rounds} rounds: median (min-max)")
    click.echo(f"{'variant':>14}  {'wall µs/reply':>22}  {'server CPU µs/reply':>22}")
    for server in servers:
        click.echo(f"{server.variant.name:>14}  {_median(server.wall_us):>22}  {_median(server.cpu_us):>22}")
    if baseline:  # each variant over the baseline, round by round: drift cancels out of the pairs
        base = servers[-1]
        for server in servers[:-1]:
            wall = [a / b for a, b in zip(server.wall_us, base.wall_us, strict=True)]
            cpu = [a / b for a, b in zip(server.cpu_us, base.cpu_us, strict=True)]
            name = f"{server.variant.name} / base"
            click.echo(f"{name:>14}  {'x' + _median(wall):>22}  {'x' + _median(cpu):>22}")


if __name__ == "__main__":
    main()
