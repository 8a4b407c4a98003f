"""The distance a run is measured at: GetMembers round trips before the load."""

from __future__ import annotations

from tsobench.bench.model.config import RunConfig, ServerKnobs
from tsobench.bench.runs.network import SAMPLES, measure_rtt, network


def test_round_trips_are_measured_on_a_warm_channel(start_inprocess_server):
    server = start_inprocess_server(rtt_ms=20)
    rtt = measure_rtt(server.address, None, timeout_s=5)
    assert rtt is not None and rtt["samples"] == SAMPLES
    assert 20 <= rtt["min"] <= rtt["median"]  # load only lengthens a round trip: the emulated one is a floor


def test_a_target_that_does_not_answer_has_no_round_trip(unused_address):
    assert measure_rtt(unused_address, None, timeout_s=1) is None


def test_the_section_says_loopback_and_the_embedded_servers_emulated_distance(inprocess_server):
    embedded = RunConfig(strategy="locked", server=ServerKnobs(rtt_ms=3, rtt_jitter_ms=1))
    section = network(embedded, inprocess_server.address)
    assert section["loopback"] is True and section["emulated"] == {"rtt_ms": 3, "jitter_ms": 1}
    assert section["rtt_ms"] is not None
    target = RunConfig(strategy="locked", target=inprocess_server.address)
    assert network(target, inprocess_server.address)["emulated"] is None  # a target's distance is its own
    assert network(RunConfig(strategy="locked"), inprocess_server.address)["emulated"] is None
