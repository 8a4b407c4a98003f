"""The server's options: bounds, and the embedded server's knobs kept away from a --target."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tsobench.bench.cli.commands import main
from tsobench.bench.model.config import ConfigError, RunConfig, ServerKnobs
from tsobench.server import ServerConfig


@pytest.mark.parametrize(
    ("options", "flag", "words"),
    [
        ({"rtt_ms": -1}, "--rtt-ms", "rtt-ms must be within [0, 10000] (got -1)"),
        ({"rtt_ms": 10_001}, "--rtt-ms", "rtt-ms must be within [0, 10000] (got 10001)"),
        ({"rtt_jitter_ms": -0.5}, "--rtt-jitter-ms", "rtt-jitter-ms must be within [0, 10000] (got -0.5)"),
    ],
)
def test_a_round_trip_out_of_bounds_is_refused_in_python_and_on_the_command_line(options, flag, words):
    with pytest.raises(ConfigError) as info:
        ServerConfig(**options)
    assert words in str(info.value)
    (value,) = options.values()
    out = CliRunner().invoke(main, ["serve", flag, str(value)])
    assert out.exit_code == 2 and words in out.output


@pytest.mark.parametrize(
    ("knobs", "flag"),
    [
        ({"rtt_ms": 1}, "--server-rtt-ms"),
        ({"delay_ms": 2}, "--server-delay-ms"),
        ({"fail_rate": 0.1}, "--server-fail-rate"),
    ],
)
def test_an_embedded_server_knob_with_a_target_is_refused_by_name(knobs, flag):
    message = f"{flag} is for the embedded server, not --target"
    with pytest.raises(ConfigError, match=message):
        RunConfig(strategy="pool", target="127.0.0.1:2379", server=ServerKnobs(**knobs))
    (value,) = knobs.values()
    out = CliRunner().invoke(main, ["run", "-s", "pool", "--target", "127.0.0.1:2379", flag, str(value)])
    assert out.exit_code == 2 and message in out.output
    RunConfig(strategy="pool", server=ServerKnobs(**knobs))  # the embedded server takes them


def test_the_window_is_bounded_with_the_reason():
    with pytest.raises(ConfigError, match=r"above 3600000 .* a restart refuses a window more than a day ahead"):
        ServerConfig(window_ms=90_000_000)
    assert ServerConfig(window_ms=3_600_000).window_ms == 3_600_000
