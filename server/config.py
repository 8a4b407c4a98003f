"""What a TSO server is started with, declared once: ``tsobench serve``'s
options, ``ChildServer``'s argv and the checks all come from these fields."""

from __future__ import annotations

from dataclasses import dataclass, field

from tsobench.options import ConfigError, option, validate
from tsobench.pd_metrics import NEWEST, PD_VERSIONS

DEFAULT_CLUSTER_ID = 6_942_217_112_589_713_401  # any 64-bit id; PD's are random
MIN_ELECTION_TIMEOUT_S = 0.2  # four lease renewals of a 50 ms tick
MAX_PORT = 65535
# A window is saved that far ahead of the clock; a start refuses one more than a day ahead (oracle.py), so an
# hour leaves room, and no TSO needs more: PD saves 3 s ahead.
MAX_WINDOW_MS = 3_600_000
MAX_RTT_MS = 10_000  # ten seconds: beyond any network, and beyond most deadlines


@dataclass(frozen=True)
class ServerKnobs:
    """The experiment knobs: what a benchmark run may set on its embedded server."""

    delay_ms: float = field(
        default=0.0,
        metadata=option(
            "Time the server spends per request, ms, serially per stream: not network distance; see rtt-ms.",
            min=0,
            axis="delay_ms",
            key_tag="d",
        ),
    )
    jitter_ms: float = field(
        default=0.0, metadata=option("Uniform random extra time per request, ms (serial, like delay-ms).", min=0)
    )
    rtt_ms: float = field(
        default=0.0,
        metadata=option(
            "Round trip to emulate, ms: every reply (Tso, GetMembers) leaves this long after its request arrived, "
            "without holding up the requests behind it; replies on a stream keep their order.",
            min=0,
            max=MAX_RTT_MS,
            axis="rtt_ms",
            key_tag="rtt",
            key_default=False,
        ),
    )
    rtt_jitter_ms: float = field(
        default=0.0,
        metadata=option(
            "Uniform random extra round trip per reply, ms (seeded; a reply never overtakes the one before it).",
            min=0,
            max=MAX_RTT_MS,
        ),
    )
    fail_rate: float = field(
        default=0.0,
        metadata=option(
            "Probability that a reply is replaced by aborting its stream with UNAVAILABLE (per request, seeded).",
            min=0,
            max=1,
        ),
    )

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class ServerConfig(ServerKnobs):
    """Everything a server is started with: the knobs, where it listens and what it persists."""

    host: str = field(default="127.0.0.1", metadata=option("Address to bind."))
    port: int = field(default=0, metadata=option("Port to bind; 0 picks a free one.", min=0, max=MAX_PORT))
    data_dir: str = field(default="tso-data", metadata=option("Where the TSO window is persisted."))
    cluster_id: int = field(
        default=DEFAULT_CLUSTER_ID,
        metadata=option("Cluster id every request must carry (PD's mismatch check).", min=1, max=(1 << 64) - 1),
    )
    window_ms: int = field(
        default=3000,
        metadata=option(
            "High-water window ahead of physical, ms (at most an hour: a window that far ahead of the clock "
            "is what a restart accepts; a day ahead it refuses).",
            min=2,
        ),
    )
    metrics_port: int | None = field(
        default=0,
        metadata=option(
            "Prometheus /metrics port; 0 picks a free one, -1 disables it.", min=0, max=MAX_PORT, none=("-1",)
        ),
    )
    pd_version: str = field(
        default=NEWEST,
        metadata=option(
            'The PD release whose metric labels /metrics serves: 8.5 (dc="global" on allocator series, no '
            "batch-size histogram) or 26 (v26.3 and later).",
            choices=PD_VERSIONS,
        ),
    )
    seed: int | None = field(default=None, metadata=option("Seed for jitter and failures.", default_text="random"))
    accept_future_window: bool = field(
        default=False,
        metadata=option("Start from a saved window more than a day ahead of the wall clock (refused otherwise)."),
    )
    admin: bool = field(
        default=False,
        metadata=option(
            "Also serve the fault-injection service tsobench.admin.Admin (AbortStreams, Stall, Delay); "
            "every call must carry its token (printed at start, or --admin-token-file)."
        ),
    )
    admin_token_file: str | None = field(
        default=None,
        metadata=option("With --admin: read the admin token from this file (none: a random one, printed)."),
    )
    # A cluster member (tsobench serve --members starts them): every member's HOST:PORT, sharing data_dir.
    member_addresses: tuple[str, ...] = field(
        default=(),
        metadata=option("Cluster member: every member's HOST:PORT, in order (repeat the flag; --members sets it)."),
    )
    member_index: int = field(default=0, metadata=option("Cluster member: which of --member-addresses this is.", min=0))
    election_timeout_s: float = field(
        default=1.0,
        metadata=option(
            "Cluster: a dead leader's lease runs out after this many seconds and another member takes over.",
            flag="election-timeout",
            min=MIN_ELECTION_TIMEOUT_S,
        ),
    )
    tls_cert: str | None = field(default=None, metadata=option("Serve TLS with this certificate (PEM file)."))
    tls_key: str | None = field(default=None, metadata=option("Serve TLS with this private key (PEM file)."))
    tls_client_ca: str | None = field(
        default=None, metadata=option("Mutual TLS: require client certificates signed by this CA (PEM file).")
    )

    def __post_init__(self) -> None:
        if isinstance(self.window_ms, int) and self.window_ms > MAX_WINDOW_MS:
            raise ConfigError(
                f"window-ms {self.window_ms} is above {MAX_WINDOW_MS} (an hour): the window is saved that far ahead "
                "of the clock, and a restart refuses a window more than a day ahead"
            )
        super().__post_init__()
        if not self.host:
            raise ConfigError("host must not be empty (127.0.0.1 for this machine, 0.0.0.0 for every interface)")
        if self.member_addresses and self.member_index >= len(self.member_addresses):
            raise ConfigError(f"member index {self.member_index} is not one of {len(self.member_addresses)} members")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("--tls-cert and --tls-key go together")
        if self.tls_client_ca and not self.tls_cert:
            raise ConfigError("--tls-client-ca needs --tls-cert and --tls-key")

    @property
    def scheme(self) -> str:
        """How PD writes this server's client URLs."""
        return "https" if self.tls_cert else "http"
