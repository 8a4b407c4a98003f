"""The one small interface every strategy implements, for threads and asyncio."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

from tsobench.options import ConfigError, option, validate

LOGICAL_BITS = 18
APIS = ("thread", "asyncio")


class Timestamp(NamedTuple):
    """What a caller gets: the largest timestamp of its ``count``, like PD's reply.

    A named tuple, not a dataclass: one is made per request, and a frozen
    dataclass's ``__init__`` costs several times more in that hot path."""

    physical: int
    logical: int
    count: int = 1  # type: ignore[assignment]  # PD's name; it hides tuple.count, which nobody needs here

    @property
    def last(self) -> int:
        return self.physical << LOGICAL_BITS | self.logical

    @property
    def first(self) -> int:
        return self.last - self.count + 1


DEFAULT_POOL_SIZE = 8  # pool streams when nobody says (a run: min(concurrency, 8))


@dataclass(frozen=True)
class ClientOptions:
    """What a client is built from (``RunConfig.client_options``): every strategy gets all of it
    and uses what matters to it. Each field but ``target`` is declared once, here, as an option
    (``tsobench.options``): ``RunConfig`` takes the same declaration (``client_option``) for its
    flag, sweep axis and TOML key, so the bounds are checked by one rule (``validate``) for a run,
    a sweep point and a test that builds options directly. The combinations no single option
    can check are refused here too (``ConfigError``)."""

    target: str  # HOST:PORT, or several comma-separated: the client finds the leader (GetMembers)
    cacert: str | None = field(
        default=None, metadata=option("TLS to --target: the CA certificate (PEM) to verify it.", locates=True)
    )
    cert: str | None = field(
        default=None, metadata=option("Mutual TLS to --target: the client certificate (PEM).", locates=True)
    )
    key: str | None = field(
        default=None, metadata=option("Mutual TLS to --target: the client's private key (PEM).", locates=True)
    )
    pool_size: int = field(
        default=DEFAULT_POOL_SIZE, metadata=option("pool: streams.", min=1, default_text="min(concurrency, 8)")
    )
    streams: int = field(default=1, metadata=option("dispatcher: streams (lanes).", min=1))
    max_batch: int = field(default=10_000, metadata=option("dispatcher: cap on count per request.", min=1))
    batch_wait_us: int = field(default=0, metadata=option("dispatcher: wait this long for more, µs.", min=0))
    max_inflight: int = field(default=1, metadata=option("dispatcher: batches in flight per stream.", min=1))
    rpc_concurrency: int = field(
        default=1,
        metadata=option(
            "dispatcher: PD's parallel RPCs (TSOClientRPCConcurrency): N x --max-inflight batches in flight per "
            "stream, each collected for the estimated RPC time / N (not with --batch-wait-us).",
            min=1,
            axis="rpc_concurrencies",
            key_tag="rpcc",
            key_default=False,
        ),
    )
    connections: int = field(default=1, metadata=option("Distinct channels (TCP connections).", min=1))
    timeout_s: float = field(
        default=5.0, metadata=option("Per-request deadline, s.", flag="timeout", positive=True, unit="s")
    )
    cluster_id: int | None = field(
        default=None,
        metadata=option(
            "Cluster id every request carries.",
            min=1,
            max=(1 << 64) - 1,
            default_text="ask GetMembers, as PD clients do",
            locates=True,
        ),
    )

    def __post_init__(self) -> None:
        validate(self)  # each option's own bounds, from its declaration
        if self.rpc_concurrency > 1 and self.batch_wait_us:
            # PD's client too turns parallel RPCs off while MaxTSOBatchWaitInterval is set: one waits
            # longer to batch more, the other sends sooner to wait less. Refused rather than ignored.
            raise ConfigError("--rpc-concurrency above 1 times its batches itself; it does not go with --batch-wait-us")
        if (self.cert is None) != (self.key is None):
            raise ConfigError("--cert and --key go together (mutual TLS needs both)")

    @property
    def tls(self) -> bool:
        return any((self.cacert, self.cert, self.key))


CLIENT_FIELDS = tuple(f.name for f in fields(ClientOptions) if f.name != "target")  # what a run gives a client


def client_option(name: str, default: Any = MISSING, options: type[ClientOptions] = ClientOptions) -> Any:
    """A run's field for the client option ``name``: its declaration in ``ClientOptions`` as it stands
    (help, bounds, axis), with the run's own ``default`` where it differs (``pool_size``: None, follow
    the concurrency). A name ClientOptions does not declare is an error where it is written."""
    declared = {f.name: f for f in fields(options)}
    if name not in declared or name == "target":
        raise TypeError(f"{name!r} is not a client option; {options.__name__} declares {', '.join(CLIENT_FIELDS)}")
    f = declared[name]
    return field(default=f.default if default is MISSING else default, metadata=f.metadata)


def client_values(source: object, options: type[ClientOptions] = ClientOptions) -> dict[str, Any]:
    """Every client option's value in ``source`` (a RunConfig): one it lacks is an error, never dropped."""
    names = [f.name for f in fields(options) if f.name != "target"]
    missing = [n for n in names if not hasattr(source, n)]
    if missing:
        raise TypeError(f"{type(source).__name__} lacks the client option(s) {', '.join(missing)} (see client_option)")
    return {n: getattr(source, n) for n in names}


@runtime_checkable
class TsoClient(Protocol):
    """Thread API: many threads call ``get_ts`` at once."""

    def open(self) -> None: ...
    def get_ts(self, count: int = 1) -> Timestamp: ...
    def close(self) -> None: ...


@runtime_checkable
class AsyncTsoClient(Protocol):
    """asyncio API: many tasks await ``get_ts`` at once on one loop."""

    async def open(self) -> None: ...
    async def get_ts(self, count: int = 1) -> Timestamp: ...
    async def close(self) -> None: ...


@dataclass(frozen=True)
class Bound:
    """How much a design can have in flight at once: over a round trip R it cannot
    answer more than ``in_flight / R`` requests (or batches) per second, whatever the CPU."""

    in_flight: int
    unit: Literal["requests", "batches"]
    why: str  # the mechanism, in words, for reports

    def to_dict(self) -> dict[str, int | str]:
        return {"in_flight": self.in_flight, "unit": self.unit, "why": self.why}


def shared_parts_overrun_s(options: ClientOptions) -> float:
    """How long past its deadline a request of a strategy built on the shared parts may still wait:
    a reconnect backoff before it sends (``backoff.LONGEST_S``), then one watchdog period."""
    from . import backoff, deadline

    return backoff.LONGEST_S + deadline.period_for(options.timeout_s)


@dataclass(frozen=True)
class Strategy:
    """A named way of sharing streams, with a client factory per API, and what it knows about itself.

    Everything after ``asyncio`` has a default, so a plugin written against the first
    six fields keeps working; reports, plans and the benchmark suite read these fields
    (recorded in each results file) instead of lists that name built-ins."""

    name: str
    summary: str
    thread: Callable[[ClientOptions], TsoClient]
    asyncio: Callable[[ClientOptions], AsyncTsoClient]
    safe: bool = True  # False only for the negative control
    baseline: bool = False  # True for the harness's own ceiling (no RPC): not a design to choose
    reference: bool = False  # a production client (e.g. tikv-client): a yardstick, not a design to choose
    settings: tuple[str, ...] = ()  # the RunConfig option keys that matter to it (plans describe a point by them)
    # Given the options and the callers per process: how much it can have in flight (None: it states no bound).
    bound: Callable[[ClientOptions, int], Bound | None] | None = None
    recovery: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)  # fault kind: why
    fewest_failures: str | None = None  # why it fails the fewest requests in a fault, where it does
    benchmark: bool = True  # the pytest-benchmark suite runs it
    apis: tuple[str, ...] = APIS  # the APIs it has (a client library may lack one)
    max_count: int | None = None  # the most timestamps one get_ts may ask for (None: whatever PD allows)
    # Given the options: the longest a request may wait past its deadline (its own reconnect backoff and
    # watchdog). The harness counts a caller as hung, and a fault's failures as the fault's, only beyond it.
    overrun_s: Callable[[ClientOptions], float] = shared_parts_overrun_s
    # Why it cannot run on this machine (a missing package, with the install hint); None when it can.
    why_unavailable: Callable[[], str | None] | None = None

    def record(self, options: ClientOptions, callers: int) -> dict[str, Any]:
        """What a results file says about the strategy it measured (written before the load),
        so reports explain a plugin's runs as they do a built-in's without asking the registry."""
        bound = self.bound(options, callers) if self.bound is not None else None
        return {
            "name": self.name,
            "safe": self.safe,
            "baseline": self.baseline,
            "reference": self.reference,
            "summary": self.summary,
            "settings": list(self.settings),
            "bound": bound.to_dict() if bound is not None else None,
            "recovery": dict(self.recovery),
            "fewest_failures": self.fewest_failures,
            "benchmark": self.benchmark,
            "overrun_s": self.overrun_s(options),
        }


class ReplyMismatch(RuntimeError):
    """The server answered a different count than was asked for."""


class ClientClosed(ConnectionError):
    """A request made to, or still waiting on, a client that is closing: it answers nobody, and says so."""

    def __init__(self) -> None:
        super().__init__("client closed")
