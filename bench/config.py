"""What a run is asked to do. Frozen, validated once, recorded verbatim in the results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tsobench.strategies import APIS, ClientOptions

DEFAULT_DURATION_S = 10.0
LOOPS = ("asyncio", "uvloop")
LOCAL_SCHEDULER = "local"  # --scheduler local: a Dask LocalCluster started for the run
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class ConfigError(ValueError):
    """Bad options: the message is for the person who typed them."""


@dataclass(frozen=True)
class ServerKnobs:
    """The embedded server's experiment knobs (ignored with --target)."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    fail_rate: float = 0.0


@dataclass(frozen=True)
class RunConfig:
    strategy: str
    api: str = "thread"
    concurrency: int = 16
    processes: int = 1
    duration_s: float | None = None
    requests: int | None = None
    warmup_s: float = 1.0
    rate: float | None = None  # open loop: requests/s in total, Poisson arrivals
    count: int = 1
    target: str | None = None  # None: start the embedded server
    target_metrics: str | None = None  # Prometheus URL of the target's counters, if any
    seed: int = 0
    pool_size: int | None = None  # None: min(concurrency, 8)
    streams: int = 1
    max_batch: int = 10_000
    batch_wait_us: int = 0
    max_inflight: int = 1
    connections: int = 1
    timeout_s: float = 5.0
    cluster_id: int | None = None
    loop: str = "asyncio"  # the asyncio API's event loop: asyncio or uvloop
    server: ServerKnobs = field(default_factory=ServerKnobs)
    scheduler: str | None = None  # Dask: "local" or a scheduler address; None: spawned processes
    server_host: str | None = None  # the embedded server binds this (an address the workers reach)

    def __post_init__(self) -> None:
        from tsobench.strategies.registry import UnknownStrategy, get

        try:
            get(self.strategy)
        except UnknownStrategy as exc:
            raise ConfigError(str(exc)) from None
        if self.api not in APIS:
            raise ConfigError(f"unknown api {self.api!r}; choose from {', '.join(APIS)}")
        if self.loop not in LOOPS:
            raise ConfigError(f"unknown loop {self.loop!r}; choose from {', '.join(LOOPS)}")
        if self.duration_s is not None and self.requests is not None:
            raise ConfigError("give --duration or --requests, not both")
        if self.duration_s is None and self.requests is None:
            object.__setattr__(self, "duration_s", DEFAULT_DURATION_S)
        checks = [
            (self.concurrency >= 1, "--concurrency must be at least 1"),
            (self.processes >= 1, "--processes must be at least 1"),
            (self.duration_s is None or self.duration_s > 0, "--duration must be positive"),
            (self.requests is None or self.requests >= 1, "--requests must be at least 1"),
            (self.warmup_s >= 0, "--warmup must not be negative"),
            (self.rate is None or self.rate > 0, "--rate must be positive"),
            (0 < self.count < 1 << 18, "--count must be in [1, 262143]"),
            (self.timeout_s > 0, "--timeout must be positive"),
            (self.target is None or ":" in self.target, "--target must be HOST:PORT"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        self._check_placement()
        if self.pool_size is None:
            object.__setattr__(self, "pool_size", min(self.concurrency, 8))
        try:
            self.client_options("x:1")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

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
        return ClientOptions(
            target=target,
            cluster_id=self.cluster_id,
            pool_size=self.pool_size or 1,
            streams=self.streams,
            max_batch=self.max_batch,
            batch_wait_us=self.batch_wait_us,
            max_inflight=self.max_inflight,
            connections=self.connections,
            timeout_s=self.timeout_s,
        )

    def expected_seconds(self) -> float:
        """A rough upper bound of how long the load phase lasts (for limits and ETAs)."""
        if self.duration_s is not None:
            return self.warmup_s + self.duration_s
        per_caller = self.requests / (self.concurrency * self.processes)
        if self.rate:
            return self.warmup_s + self.requests / self.rate * 1.5 + 5
        return self.warmup_s + per_caller * self.timeout_s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ShardConfig:
    """One client process's share of a run: a plain value, so a shard is a pure
    function from this to a ShardResult (what a distributed engine would run)."""

    run: RunConfig
    index: int
    target: str

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
