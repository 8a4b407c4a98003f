"""Options declared once: every way in (command line, TOML plan, Python) gets
the same checks and messages, and argv written for a child reads back the same."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from tsobench.bench.cli.commands import main, run_command
from tsobench.bench.model.config import ConfigError, RunConfig, ServerKnobs
from tsobench.bench.sweeps.sweep import SweepPlan, read_plan
from tsobench.options import build, parse_duration, specs
from tsobench.server import ChildServer, ServerConfig
from tsobench.server.cli import serve_command


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_python_api_rejects_what_the_command_line_rejects():
    with pytest.raises(ConfigError, match=r"fail-rate must be within \[0, 1\] \(got 7\)"):
        RunConfig(strategy="pool", server=ServerKnobs(fail_rate=7))
    with pytest.raises(ConfigError, match="pool-size must be at least 1"):
        RunConfig(strategy="pool", pool_size=0)
    with pytest.raises(ConfigError, match="concurrency must be an integer"):
        RunConfig(strategy="pool", concurrency="4")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="window-ms must be at least 2"):
        ServerConfig(window_ms=1)


def test_a_plan_gets_the_same_error_naming_the_option_as_its_flag(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text("server_delay_ms = [0, -5]\n")
    with pytest.raises(ConfigError, match=r"server-delay-ms must not be negative \(got -5\)"):
        read_plan(plan)
    out = invoke("sweep", str(plan))
    assert out.exit_code == 2 and "server-delay-ms must not be negative" in out.output


def test_unknown_plan_keys_name_the_valid_ones(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match=r"unknown sweep setting 'colour'; valid settings: .*server_delay_ms"):
        read_plan(plan)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pool-size", "0"], "pool-size must be at least 1 (got 0)"),
        (["--requests", "0"], "requests must be at least 1 (got 0)"),
        (["--concurrency", "-1"], "concurrency must be at least 1"),
        (["--duration", "0"], "duration must be positive"),
        (["--warmup", "-1"], "warmup must not be negative"),
        (["--timeout", "0"], "timeout must be positive"),
        (["--rate", "-5"], "rate must be positive"),
        (["--batch-wait-us", "-1"], "batch-wait-us must not be negative"),
        (["--cluster-id", "0"], "cluster-id must be within"),
        (["--server-fail-rate", "7"], "server-fail-rate must be within [0, 1]"),
        (["--server-jitter-ms", "-1"], "server-jitter-ms must not be negative"),
    ],
)
def test_zero_and_negative_values_are_refused_with_the_right_message(args, message):
    out = invoke("run", "-s", "pool", *args)
    assert out.exit_code == 2
    assert message in out.output
    assert "Traceback" not in out.output


def test_every_bounded_option_is_checked():
    """Below its lower bound (or above its upper) each option fails, naming itself."""
    bounded = [s for s in specs(RunConfig) if s.option.min is not None or s.option.positive]
    assert len(bounded) >= 15
    for spec in bounded:
        low = spec.option.min if spec.option.min is not None else 0
        bad = low - 1 if spec.option.min is not None else 0
        with pytest.raises(ConfigError, match=re.escape(spec.name)):
            build(RunConfig, {"strategy": "pool", spec.key: spec.kind(bad)})


def test_sweep_points_read_back_as_the_same_config():
    plan = SweepPlan.of(
        strategies=("pool", "dispatcher"),
        apis=("thread", "asyncio"),
        concurrency=(1, 3),
        rates=(None, 250.5),
        server_delay_ms=(0.0, 1.5),
        requests=100,
        pool_size=2,
        cluster_id=7,
        server_fail_rate=0.25,
        target_metrics="http://x/metrics",
    )
    for point in plan.points():
        argv = point.argv("out.json")
        assert argv[:2] == ["tsobench", "run"]
        ctx = run_command.make_context("run", argv[2:])
        options = {k: v for k, v in ctx.params.items() if k not in ("output", "quiet", "progress", "as_json")}
        assert build(RunConfig, options) == point.config, argv


def test_child_server_argv_reads_back_as_the_same_config(tmp_path):
    config = ServerConfig(
        data_dir=str(tmp_path), delay_ms=2.5, fail_rate=0.5, metrics_port=None, seed=3, window_ms=50, admin=True
    )
    child = ChildServer(config)  # with admin on, it names the token file it wrote
    argv = child._argv("port", "metrics-port")
    assert argv[1:4] == ["-P", "-m", "tsobench.server"]
    ctx = serve_command.make_context("serve", argv[4:])
    launcher = (
        "port_file",
        "metrics_port_file",
        "exit_with_parent",
        "parent_temp_dir",
        "verbose",
        "size",
        "no_restart",
    )
    launcher += ("member",)
    options = {k: v for k, v in ctx.params.items() if k not in launcher}
    assert build(ServerConfig, options) == child.config
    assert child.config.admin_token_file and child.admin_token not in argv  # the token itself is not in ps


def test_a_cluster_members_argv_reads_back_as_the_same_config(tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    members = ("127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003")
    config = ServerConfig(
        data_dir=str(tmp_path),
        port=7002,
        member_addresses=members,
        member_index=1,
        election_timeout_s=0.5,
        tls_cert=str(cert),
        tls_key=str(cert),
    )
    child = ChildServer(config)  # with admin on, it names the token file it wrote
    argv = child._argv("port", "metrics-port")
    ctx = serve_command.make_context("serve", argv[4:])
    launcher = (
        "port_file",
        "metrics_port_file",
        "exit_with_parent",
        "parent_temp_dir",
        "verbose",
        "size",
        "no_restart",
    )
    launcher += ("member",)
    assert build(ServerConfig, {k: v for k, v in ctx.params.items() if k not in launcher}) == config


def _options(command) -> list:
    return [p for p in command.params if p.param_type_name == "option"]


def test_every_option_of_every_command_has_help():
    commands = [main, *main.commands.values()]
    missing = [(c.name, o.opts) for c in commands for o in _options(c) if not (o.help or "").strip()]
    assert not missing


def test_top_level_help_shows_whole_command_descriptions():
    out = CliRunner().invoke(main, ["--help"], terminal_width=80)
    text = " ".join(out.output.split())
    for command in main.commands.values():
        first = " ".join((command.help or "").split("\n\n")[0].split())
        assert first in text, command.name


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("2s", 2.0), ("2m", 120.0), ("1h", 3600.0), ("1.5", 1.5), ("1m30s", 90.0), ("500us", 5e-4)],
)
def test_a_duration_reads_its_unit_and_a_plain_number_is_seconds(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "2x", "-1s", "1m30", "inf", "s"])
def test_a_word_that_is_no_duration_is_refused_saying_how_one_is_written(text):
    with pytest.raises(ConfigError, match="is not a duration"):
        parse_duration(text)


def test_time_flags_and_plans_take_units(tmp_path):
    config = build(RunConfig, {"strategy": "pool", "duration_s": "2m", "warmup_s": "500ms", "timeout_s": "2s"})
    assert (config.duration_s, config.warmup_s, config.timeout_s) == (120.0, 0.5, 2.0)
    assert build(RunConfig, {"strategy": "pool", "interval_s": "250ms"}).interval_s == 0.25
    plan = tmp_path / "plan.toml"
    plan.write_text("strategies = ['pool']\nduration_s = '2s'\nwarmup_s = '500ms'\n")
    point = read_plan(plan)[0].points()[0]
    assert (point.config.duration_s, point.config.warmup_s) == (2.0, 0.5)


def test_a_bad_duration_flag_is_one_line_naming_the_flag():
    out = invoke("run", "-s", "pool", "--duration", "10 parsecs")
    assert out.exit_code == 2 and "duration: '10 parsecs' is not a duration" in out.output
    assert "Traceback" not in out.output
