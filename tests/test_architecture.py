"""A newcomer adds a run option (one field), a client option (one ClientOptions field), a figure (a shard
field with its merge rule, producer and metrics key, and its results declaration with its role) or a fault
kind (one registration), and sees it everywhere it belongs: this is the proof, with toys.
(A strategy is one module plus its registration: tests/strategies/test_registry.py runs a plugin
package through every command.)"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated

import click
import pytest
from click.testing import CliRunner

from tsobench import options
from tsobench.bench.measure import measures
from tsobench.bench.measure.shard import run_shard
from tsobench.bench.model import results
from tsobench.bench.model.config import RunConfig, ShardConfig
from tsobench.options import ConfigError, option
from tsobench.strategies.base import ClientOptions, client_option


@dataclass(frozen=True)
class ToyConfig(RunConfig):
    """RunConfig with one more option, declared as every option is."""

    toy_depth: int = field(default=3, metadata=option("Toy: how deep.", min=1, axis="toy_depths", key_tag="td"))


def test_one_option_field_is_a_flag_a_sweep_axis_a_check_an_argv_and_a_point_key():
    @click.command()
    @options.click_options(ToyConfig)
    def run(**values: object) -> None:  # as `tsobench run` does it
        try:
            click.echo(options.build(ToyConfig, values).toy_depth)
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None

    assert CliRunner().invoke(run, ["-s", "pool", "--toy-depth", "7"]).output == "7\n"
    refused = CliRunner().invoke(run, ["-s", "pool", "--toy-depth", "0"])
    assert refused.exit_code == 2 and "toy-depth must be at least 1" in refused.output
    with pytest.raises(ConfigError, match="toy-depth must be at least 1"):
        ToyConfig(strategy="pool", toy_depth=0)  # Python gets the same check

    @click.command()
    @options.sweep_click_options(ToyConfig)
    def sweep(**values: object) -> None:
        click.echo(values["toy_depths"])

    assert CliRunner().invoke(sweep, ["--toy-depths", "1,2"]).output == "(1, 2)\n"
    config = ToyConfig(strategy="pool", toy_depth=5)
    argv = options.to_argv(config)  # how a sweep point or a child process gets it back
    assert argv[argv.index("--toy-depth") + 1] == "5"
    assert "toy_depth" in options.point_keys(ToyConfig)  # two runs differing in it are two points
    assert options.flatten(ToyConfig, dataclasses.asdict(config))["toy_depth"] == 5  # read back from a results file
    assert options.flatten(ToyConfig, RunConfig(strategy="pool").to_dict())["toy_depth"] == 3  # an older file


@dataclass(frozen=True)
class ToyClientOptions(ClientOptions):
    """ClientOptions with one more option: its declaration, bounds and help in one place."""

    toy_lanes: int = field(default=2, metadata=option("Toy client: lanes.", min=1, axis="toy_lanes_axis"))


@dataclass(frozen=True)
class ToyClientConfig(RunConfig):
    CLIENT = ToyClientOptions
    toy_lanes: int = client_option("toy_lanes", options=ToyClientOptions)  # the run takes that declaration


def test_one_client_option_declaration_is_the_client_s_field_and_the_run_s_flag_check_and_axis():
    built = ToyClientConfig(strategy="pool", toy_lanes=5).client_options("h:1")
    assert isinstance(built, ToyClientOptions) and built.toy_lanes == 5
    with pytest.raises(ConfigError, match="toy-lanes must be at least 1"):
        ToyClientConfig(strategy="pool", toy_lanes=0)  # the run checks it by the client's declaration
    with pytest.raises(ConfigError, match="toy-lanes must be at least 1"):
        ToyClientOptions("h:1", toy_lanes=0)  # and so does the client, by the same one
    spec = next(s for s in options.specs(ToyClientConfig) if s.key == "toy_lanes")
    assert spec.flag == "--toy-lanes" and spec.axis_key == "toy_lanes_axis"
    with pytest.raises(TypeError, match="not a client option"):
        client_option("toy_lane", options=ToyClientOptions)  # misspelt: an error where it is written


@dataclass(frozen=True)
class ToyShardResult(measures.ShardResult):
    """A shard figure added at the producer: how a shard produces it, its merge rule, its metrics key."""

    toy_peak: int = field(
        default=0,
        metadata=measures.measure(
            measures.Merge.MAX,
            "toy: the most one caller completed",
            lambda c: max(c.fold.completions_per_caller(), default=0),
            metric="toy_peak",
        ),
    )


class ToyMetrics(results.Metrics):
    """The results' declaration of that figure: its key, what it means, its role when repeats fold."""

    toy_peak: Annotated[int, results.Doc("toy: the most one caller completed", role=results.MEDIAN)]


TOY_SECTIONS = {**results.SECTIONS, "metrics": ToyMetrics}


def test_one_figure_flows_from_the_shard_to_the_file_the_loader_the_aggregate_and_the_readme(tmp_path):
    """Nothing monkeypatched: the declarations are handed to each stage as the extension they are."""
    from collections import Counter

    from tsobench.bench.analysis import aggregate, loader
    from tsobench.bench.measure.clock import Clock
    from tsobench.bench.measure.fold import Fold, Record
    from tsobench.bench.runs.runner import metrics_of

    config = RunConfig(strategy="null", concurrency=2, duration_s=1.0, warmup_s=0)
    shards = []
    for index, answers in enumerate((3, 5)):  # two shards: one caller answers 3 (then 5) times in the window
        records = [Record(open_loop=False) for _ in range(2)]
        for i in range(answers):
            records[0].lasts.append(index * 100 + i + 1)
            records[0].sent.append(1_000 + i)
            records[0].done.append(1_010 + i)
        fold = Fold(ShardConfig(config, index, "", overrun_s=0.7), Clock(1_000, 1_000, 1_001_000), records)
        shards.append(fold.finish(1_001_000, 1_001_000, 0.0, 0, Counter(), {}, result=ToyShardResult))
    assert [s.toy_peak for s in shards] == [3, 5]  # the shard produced it
    total = ToyShardResult.merge(shards)
    assert total.toy_peak == 5  # by its merge rule
    metrics = metrics_of(config, total, declared=ToyMetrics)
    assert metrics["toy_peak"] == 5  # type: ignore[typeddict-item]  # the run's metrics, under its declared key
    result = results.RunResult("run", "t0", "t1", [], config.to_dict(), {}, metrics, results.CorrectnessCounts(), {})
    data = results.read(results.write(result, tmp_path / "run.json")).to_dict()
    assert data["metrics"]["toy_peak"] == 5  # the results file holds it
    assert loader.results_row(data, sections=TOY_SECTIONS)["toy_peak"] == 5  # the loader's column
    assert results.columns(TOY_SECTIONS)["toy_peak"] == ("int", "toy: the most one caller completed")
    assert "toy_peak" in aggregate.folded_by(results.MEDIAN, TOY_SECTIONS)  # repeats fold it by its median
    assert "| `toy_peak` | int | toy: the most one caller completed |" in results.field_tables(TOY_SECTIONS)
    assert "toy_peak" not in results.columns()  # the real declarations are untouched


def test_one_shard_field_with_its_merge_rule_is_merged_by_that_rule():
    run = RunConfig(strategy="null", api="asyncio", concurrency=2, duration_s=0.2, warmup_s=0)
    shards = [run_shard(ShardConfig(run, i, "unused:1")) for i in range(2)]
    toys = [
        ToyShardResult(**{f.name: getattr(r, f.name) for f in dataclasses.fields(r)}, toy_peak=peak)
        for r, peak in zip(shards, (2, 9), strict=True)
    ]
    merged = ToyShardResult.merge(toys)  # no list of fields to extend: the declaration carries its rule
    assert merged.toy_peak == 9
    assert merged.requests_ok == sum(r.requests_ok for r in shards) > 0


def test_one_fault_kind_registration_is_a_word_a_check_an_admin_request_and_a_recorded_kind():
    import threading

    from tsobench.bench.model import faults
    from tsobench.bench.runs import injector

    def fire(target: faults.FaultTarget, fault: faults.Fault) -> None:
        target.admin("Stall", duration_s=fault.duration_s)
        target.admin("AbortStreams")

    toy = faults.FaultKind(
        "toy-hiccup", ("duration",), "toy-hiccup@1s:200ms", fire, "a stall, then one UNAVAILABLE", admin="Stall"
    )
    faults.register(toy)
    try:
        fault = faults.Fault.parse("toy-hiccup@300ms:100ms")  # its word and arguments
        assert fault.spec == "toy-hiccup@300ms:100ms" and fault.declared is toy
        with pytest.raises(ConfigError, match="toy-hiccup is written like toy-hiccup@1s:200ms"):
            faults.Fault.parse("toy-hiccup@1s")
        assert RunConfig(strategy="pool", duration_s=2, faults=(fault,)).faults == (fault,)  # a single server
        with pytest.raises(ConfigError, match="needs a single embedded server"):
            RunConfig(strategy="pool", duration_s=2, server_members=3, faults=(fault,))

        sent: list[tuple[str, dict[str, float]]] = []

        class Server:  # what the injector drives: the requests it sends, as an embedded server gets them
            def admin(self, request: str, **fields: float) -> None:
                sent.append((request, fields))

        target = injector._Target(Server(), threading.Event())  # type: ignore[arg-type]
        fault.declared.fire(target, fault)
        assert sent == [("Stall", {"duration_s": 0.1}), ("AbortStreams", {})]
    finally:
        faults.unregister("toy-hiccup")
    with pytest.raises(ConfigError, match="unknown kind 'toy-hiccup'"):
        faults.Fault.parse("toy-hiccup@300ms:100ms")
