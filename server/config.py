"""What a TSO server is started with."""

from __future__ import annotations

from dataclasses import asdict, dataclass

DEFAULT_CLUSTER_ID = 6_942_217_112_589_713_401  # any 64-bit id; PD's are random


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 0
    data_dir: str = "tso-data"
    cluster_id: int = DEFAULT_CLUSTER_ID
    window_ms: int = 3000
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    fail_rate: float = 0.0
    metrics_port: int | None = 0  # None disables the Prometheus endpoint
    seed: int | None = None
    accept_future_window: bool = False  # start from a saved window more than a day ahead of the clock
    admin: bool = False  # serve the fault-injection service (tsobench.admin.Admin)

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("host must not be empty (127.0.0.1 for this machine, 0.0.0.0 for every interface)")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError(f"fail rate must be within [0, 1], got {self.fail_rate}")
        if self.delay_ms < 0 or self.jitter_ms < 0:
            raise ValueError("delay and jitter must not be negative")
        if not 0 <= self.port < 65536:
            raise ValueError(f"port must be within [0, 65535], got {self.port}")
        if not 0 < self.cluster_id < 1 << 64:
            raise ValueError(f"cluster id must be a positive 64-bit integer, got {self.cluster_id}")

    def knobs(self) -> dict[str, float]:
        """The experiment knobs, as recorded with every result."""
        d = asdict(self)
        return {k: d[k] for k in ("delay_ms", "jitter_ms", "fail_rate", "window_ms")}
