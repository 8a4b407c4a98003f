"""What a run is asked to do. Frozen, validated once, recorded verbatim in the results.

Each field declares its option once (``tsobench.options``): ``tsobench run``'s
flags, the sweep's flags, axes and TOML keys, a sweep point's argv and the
checks below all come from these declarations. Adding an option is adding a field.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from tsobench.bench.model.faults import FAULT_KINDS, Fault, check_faults, fault_help
from tsobench.options import ConfigError, nested, option, specs, validate
from tsobench.server.config import ServerKnobs
from tsobench.strategies.base import DEFAULT_POOL_SIZE, ClientOptions, client_option, client_values

__all__ = ["ConfigError", "RunConfig", "ServerKnobs", "ShardConfig"]

DEFAULT_DURATION_S = 10.0
MAX_COUNT = (1 << 18) - 1  # PD's logical space per physical millisecond
LOOPS = ("asyncio", "uvloop")  # the asyncio API's event loop
LOCAL_SCHEDULER = "local"  # --scheduler local: a Dask LocalCluster started for the run
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
GRACE_S = 2.0  # how long a shard waits for its client to close
SLACK_S = 0.1  # scheduling slack on top of a strategy's deadline before a wait counts as hung
CHANNEL_BACKOFF_S = 1.0  # a channel's reconnect backoff (at most 500 ms) and the connect itself


def _strategy_names() -> list[str]:
    from tsobench.strategies import registry

    return registry.choices()  # with those that cannot run here: asking for one is refused with its reason


def _designs() -> list[str]:
    """A sweep's default: every strategy to choose from (built-in and plugins), not the harness's own baseline."""
    from tsobench.strategies import all_strategies

    return [s.name for s in all_strategies().values() if not s.baseline]


def _fault_words() -> list[str]:
    """What a shell completes for --fault: each kind, up to its @ (the time comes next)."""
    return [f"{kind}@" for kind in FAULT_KINDS]


def _apis() -> tuple[str, ...]:
    from tsobench.strategies import APIS

    return APIS


@dataclass(frozen=True)
class RunConfig:
    CLIENT: ClassVar[type[ClientOptions]] = ClientOptions  # what its client options are (a subclass may add some)

    strategy: str = field(
        metadata=option(
            "Strategy name (see `tsobench strategies`).",
            short="-s",
            choices=_strategy_names,
            axis="strategies",
            sweep_default=_designs,
            key_tag="",
        )
    )
    api: str = field(
        default="thread",
        metadata=option(
            "thread (sync grpcio) or asyncio (grpc.aio).", choices=_apis, axis="apis", sweep_default=_apis, key_tag=""
        ),
    )
    concurrency: int = field(
        default=16,
        metadata=option(
            "Callers per process.", short="-c", min=1, axis="concurrency", sweep_default=(1, 16, 64), key_tag="c"
        ),
    )
    processes: int = field(
        default=1, metadata=option("Client processes.", short="-p", min=1, axis="processes", key_tag="p")
    )
    duration_s: float | None = field(
        default=None,
        metadata=option(
            "Measured time (2s, 500ms, 2m; a plain number is seconds).",
            flag="duration",
            unit="s",
            positive=True,
            default_text=f"{DEFAULT_DURATION_S:g}s",
            sweep_default=5.0,
            point=False,
        ),
    )
    requests: int | None = field(
        default=None, metadata=option("Measured requests in total (instead of --duration).", min=1, point=False)
    )
    warmup_s: float = field(
        default=1.0, metadata=option("Time excluded from figures, s.", flag="warmup", min=0, point=False, unit="s")
    )
    rate: float | None = field(
        default=None,
        metadata=option(
            "Open loop: total requests/s, Poisson arrivals (0 or 'closed': closed loop).",
            positive=True,
            none=("closed", "0"),
            default_text="closed",
            axis="rates",
            key_tag="r",
        ),
    )
    count: int = field(default=1, metadata=option("Timestamps per request.", min=1, max=MAX_COUNT))
    target: str | None = field(
        default=None,
        metadata=option(
            "HOST:PORT of a PD-compatible server, or several comma-separated PD members "
            "(the client asks GetMembers for the leader).",
            default_text="embedded",
            locates=True,
        ),
    )
    cacert: str | None = client_option("cacert")
    cert: str | None = client_option("cert")
    key: str | None = client_option("key")
    target_metrics: str | None = field(
        default=None,
        metadata=option(
            "Prometheus URL of the target's /metrics: a PD's (v8.5 or v26), the TSO microservice's or tsobench's.",
            point=False,
        ),
    )
    metrics_port: int | None = field(
        default=None,
        metadata=option(
            "Serve the run's live client metrics (the Go PD client's TSO names and tsobench's own) on "
            "http://127.0.0.1:PORT/metrics while it runs; 0 picks a free port.",
            min=0,
            max=65535,
            default_text="off",
            point=False,
            locates=True,
        ),
    )
    pushgateway: str | None = field(
        default=None,
        metadata=option(
            "Push the run's final client metrics to this Prometheus Pushgateway (http://HOST:9091), as a batch "
            "job does (job tsobench).",
            default_text="off",
            point=False,
            locates=True,
        ),
    )
    seed: int = field(default=0, metadata=option("Seeds arrivals, jitter, failures.", point=False))
    pool_size: int | None = client_option("pool_size", default=None)  # None: min(concurrency, 8)
    streams: int = client_option("streams")
    max_batch: int = client_option("max_batch")
    batch_wait_us: int = client_option("batch_wait_us")
    max_inflight: int = client_option("max_inflight")
    rpc_concurrency: int = client_option("rpc_concurrency")
    connections: int = client_option("connections")
    timeout_s: float = client_option("timeout_s")
    cluster_id: int | None = client_option("cluster_id")
    loop: str = field(
        default="asyncio",
        metadata=option(
            "asyncio API: the event loop (asyncio: its selector loop on select(), timers to the microsecond; "
            "uvloop: faster, timers to the millisecond).",
            choices=LOOPS,
            axis="loops",
        ),
    )
    server: ServerKnobs = field(
        default_factory=ServerKnobs, metadata=nested("server", help_prefix="Embedded server (not with --target): ")
    )
    scheduler: str | None = field(
        default=None,
        metadata=option(
            "Run the shards on Dask: 'local' (a LocalCluster of --processes workers) or tcp://HOST:8786.",
            default_text="spawned processes",
            locates=True,
        ),
    )
    server_host: str | None = field(
        default=None,
        metadata=option(
            "Embedded server: bind this address, one the Dask workers reach.", default_text="127.0.0.1", locates=True
        ),
    )
    server_members: int = field(
        default=1, metadata=option("Embedded server: a PD-like cluster of this many members (one leads).", min=1)
    )
    interval_s: float = field(
        default=1.0,
        metadata=option(
            "The timeline's interval, s (results' timeline, .hlog and the interval lines).",
            flag="interval",
            min=0.01,
            point=False,
            unit="s",
        ),
    )
    faults: tuple[Fault, ...] = field(
        default=(),
        metadata=option(
            f"Embedded server fault, repeatable: {fault_help()}. In a sweep, each point's faults joined by '+', "
            "or 'none'.",
            flag="fault",
            axis="faults",
            complete=_fault_words,
        ),
    )

    def __post_init__(self) -> None:
        """Checks only: a RunConfig holds what it was given; what follows from it are properties
        (``window_s``, the pool size in ``client_options``). Whether this machine can run its
        strategy on its API is asked when it runs (``runnable``): a sweep plan may name a pair it skips."""
        validate(self)
        check_faults(self.faults)
        if self.duration_s is not None and self.requests is not None:
            raise ConfigError("give --duration or --requests, not both")
        if self.target is not None and not all(":" in e for e in self.target.split(",")):
            raise ConfigError(f"target must be HOST:PORT[,HOST:PORT...] (got {self.target!r})")
        self._check_cluster()
        self._check_placement()
        self._check_metrics()
        self._check_faults()

    def _check_metrics(self) -> None:
        """Live client metrics come from spawned shards, whose parent sums what they publish."""
        if (self.metrics_port is not None or self.pushgateway) and self.scheduler is not None:
            raise ConfigError("--metrics-port and --pushgateway need spawned shards, not --scheduler")
        if self.pushgateway is not None and urlsplit(self.pushgateway).scheme not in ("http", "https"):
            raise ConfigError(f"--pushgateway must be an http:// or https:// URL (got {self.pushgateway!r})")

    @property
    def client_metrics(self) -> bool:
        """The shards publish what they observe (for --metrics-port or --pushgateway)."""
        return self.metrics_port is not None or self.pushgateway is not None

    def _check_placement(self) -> None:
        """Shards on other machines need a server they can reach."""
        if self.scheduler is not None and self.scheduler != LOCAL_SCHEDULER and ":" not in self.scheduler:
            raise ConfigError(
                f"--scheduler must be {LOCAL_SCHEDULER!r} or a Dask scheduler address like tcp://HOST:8786"
            )
        if self.server_host is not None:
            if self.target is not None:
                raise ConfigError("--server-host is where the embedded server binds; it does not go with --target")
            if self.server_host in ("", "0.0.0.0", "::"):
                raise ConfigError("--server-host must be an address the workers can reach, not a wildcard")
        elif self.scheduler is not None and self.target is None and not self.local_scheduler:
            raise ConfigError(
                f"the embedded server binds 127.0.0.1, which the workers of {self.scheduler} may not reach: "
                "give --server-host (this machine's address the workers reach) or --target"
            )

    def _check_cluster(self) -> None:
        """TLS goes to a --target (the embedded server is plaintext); members make the embedded server a cluster."""
        if self.target is not None and self.server_members > 1:
            raise ConfigError("--server-members is for the embedded server, not --target")
        for spec in specs(RunConfig) if self.target is not None else ():
            if spec.path[0] == "server" and spec.get(self) != spec.default:
                raise ConfigError(f"{spec.flag} is for the embedded server, not --target")
        if self.target is None and self.tls:
            raise ConfigError("--cacert/--cert/--key need --target (the embedded server is plaintext)")
        self.client_options(self.target or "")  # the client's own checks (TLS pairs, batching), in one place
        for flag, path in (("--cacert", self.cacert), ("--cert", self.cert), ("--key", self.key)):
            if path is not None and not os.path.isfile(path):
                raise ConfigError(f"{flag} {path}: no such file")

    @property
    def tls(self) -> bool:
        return any((self.cacert, self.cert, self.key))

    def _check_faults(self) -> None:
        if not self.faults:
            return
        if self.target is not None:
            raise ConfigError("--fault needs the embedded server: faults cannot be injected into a --target")
        for fault in self.faults:
            if fault.declared.cluster != (self.server_members > 1):
                need = "--server-members 2 or more" if fault.declared.cluster else "a single embedded server"
                raise ConfigError(f"fault {fault} needs {need}")
        if self.window_s is None:
            raise ConfigError("--fault needs --duration (a fault has a time in the measured window)")
        for fault in self.faults:
            if fault.end_s >= self.window_s:
                raise ConfigError(
                    f"fault {fault} ends at {fault.end_s:g}s, not inside the {self.window_s:g}s measured window"
                )

    @property
    def local_scheduler(self) -> bool:
        """A Dask cluster on this machine only (``local`` or a scheduler on loopback)."""
        if self.scheduler is None or self.scheduler == LOCAL_SCHEDULER:
            return True
        address = self.scheduler if "://" in self.scheduler else f"tcp://{self.scheduler}"
        return urlsplit(address).hostname in LOOPBACK_HOSTS

    @property
    def open_loop(self) -> bool:
        return self.rate is not None

    def client_options(self, target: str) -> ClientOptions:
        """What the strategy's client gets: its options (declared once, in ClientOptions), the target, the pool size."""
        values = client_values(self, self.CLIENT)  # every client option: one this config lacks is an error
        values["pool_size"] = self.pool_size or min(self.concurrency, DEFAULT_POOL_SIZE)
        return self.CLIENT(target, **values)

    def runnable(self) -> None:
        """Refuse (ConfigError) a strategy this machine cannot run this way: not installed, without
        this API, or asking more timestamps per request than it can."""
        from tsobench.strategies import registry

        registry.check(self.strategy, self.api, self.count)

    @property
    def window_s(self) -> float | None:
        """The measured window, s (None: --requests, measured until the last request is answered)."""
        if self.requests is not None:
            return None
        return DEFAULT_DURATION_S if self.duration_s is None else self.duration_s

    def expected_seconds(self) -> float:
        """A rough upper bound of how long the load phase lasts (for limits and ETAs)."""
        if self.requests is None:
            return self.warmup_s + (self.window_s or DEFAULT_DURATION_S)
        per_caller = self.requests / (self.concurrency * self.processes)
        if self.rate:
            return self.warmup_s + self.requests / self.rate * 1.5 + 5
        return self.warmup_s + per_caller * self.timeout_s

    def late_s(self, overrun_s: float) -> float:
        """A wait longer than this had a deadline that never fired: the caller is hung. ``overrun_s``:
        what the strategy states it may take past its deadline (``Strategy.overrun_s``: a reconnect
        backoff before it sends, then its watchdog's period); the config asks no strategy itself."""
        return self.timeout_s + overrun_s + SLACK_S

    @property
    def hard_limit_s(self) -> float:
        """After this long from the start of the load, the parent kills any shard still running."""
        return self.expected_seconds() + self.timeout_s + 2 * GRACE_S + 10.0

    def recovery_horizon_s(self, overrun_s: float) -> float:
        """How long after a fault's end its failures still count as its own: a request sent
        at the end may wait out the strategy's overrun and its deadline, and the channel's own
        reconnect backoff comes on top."""
        return self.late_s(overrun_s) + CHANNEL_BACKOFF_S

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ShardConfig:
    """One client process's share of a run: a plain value, so a shard is a pure
    function from this to a ShardResult (what a distributed engine would run)."""

    run: RunConfig
    index: int
    target: str
    overrun_s: float | None = None  # what its strategy states (``Strategy.overrun_s``); run_shard fills it in

    def _overrun(self) -> float:
        if self.overrun_s is None:
            raise ValueError("a shard's timing needs its strategy's overrun_s (run_shard states it)")
        return self.overrun_s

    @property
    def late_s(self) -> float:
        """``RunConfig.late_s`` for this shard's strategy."""
        return self.run.late_s(self._overrun())

    @property
    def recovery_horizon_s(self) -> float:
        return self.run.recovery_horizon_s(self._overrun())

    @property
    def seed(self) -> int:
        return self.run.seed * 1_000_003 + self.index

    def caller_quota(self, caller: int) -> int | None:
        """This shard's callers' share of --requests (None: run for the duration)."""
        if self.run.requests is None:
            return None
        callers = self.run.concurrency * self.run.processes
        position = self.index * self.run.concurrency + caller
        return self.run.requests // callers + (1 if position < self.run.requests % callers else 0)

    def caller_rate(self) -> float | None:
        if self.run.rate is None:
            return None
        return self.run.rate / (self.run.concurrency * self.run.processes)
