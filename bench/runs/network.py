"""The distance a run is measured at: round trips to the leader, timed before the load.

Every figure depends on how far the clients sit from the TSO (a lock held across
a round trip allows one request per round trip), so each results file says:
``network.rtt_ms`` from ``SAMPLES`` GetMembers calls on one warm channel (min
and median), whether the target is this machine, and the embedded server's
emulated round trip when one was set.
"""

from __future__ import annotations

import statistics
import time
from urllib.parse import urlsplit

import grpc

from tsobench.bench.model.config import LOOPBACK_HOSTS, RunConfig
from tsobench.bench.model.results import Network, Rtt
from tsobench.protos import pdpb_pb2_grpc
from tsobench.strategies.leader import channel_credentials, make_channel, members_request

SAMPLES = 20


def measure_rtt(address: str, credentials: grpc.ChannelCredentials | None, timeout_s: float) -> Rtt | None:
    """Min and median of ``SAMPLES`` GetMembers round trips after one that connects; None if it fails."""
    try:
        with make_channel(grpc, address, credentials, []) as channel:
            call = pdpb_pb2_grpc.PDStub(channel).GetMembers
            call(members_request(), timeout=timeout_s)  # connects: not a round trip of the steady state
            samples = []
            for _ in range(SAMPLES):
                start = time.perf_counter()
                call(members_request(), timeout=timeout_s)
                samples.append((time.perf_counter() - start) * 1e3)
    except grpc.RpcError:
        return None
    return {"min": round(min(samples), 4), "median": round(statistics.median(samples), 4), "samples": len(samples)}


def network(config: RunConfig, leader: str) -> Network:
    options = config.client_options(leader)
    credentials = channel_credentials(options.cacert, options.cert, options.key)
    rtt_ms, jitter_ms = config.server.rtt_ms, config.server.rtt_jitter_ms
    emulated = {"rtt_ms": rtt_ms, "jitter_ms": jitter_ms} if config.target is None and (rtt_ms or jitter_ms) else None
    return {
        "rtt_ms": measure_rtt(leader, credentials, config.timeout_s),
        "emulated": emulated,
        "loopback": (urlsplit(f"//{leader}").hostname or "") in LOOPBACK_HOSTS,
    }
