"""Faults on the embedded server: the ``--fault`` value type and the thread that fires them.

A spec is ``KIND@AT[:DURATION[:DELAY]]``, times counted from the start of the
measured window, each a duration as the time flags take it (``500ms``, ``3s``, ``1m``; a bare
number is seconds):

- ``kill@3s:1s``: SIGKILL the server at 3 s, start it again (same port, same data
  dir) 1 s later: a crash and a restart;
- ``abort@3s``: the server aborts every open Tso stream with UNAVAILABLE once;
- ``stall@3s:500ms``: the server answers nothing for 500 ms, then everything queued;
- ``delay@3s:2s:20ms``: for 2 s every reply is delayed by 20 ms;
- ``leader@3s`` (with ``--server-members``): the leader hands leadership to the next member;
- ``kill-leader@3s`` (with ``--server-members``): SIGKILL the leader's process; another
  member takes over after the election timeout. The fault lasts until a new leader holds the lease.

The harness fires them from the parent (``FaultInjector``), so a fault needs a
server the harness owns: not with ``--target``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from tsobench.options import ConfigError, parse_duration

FAULT_HELP = (
    "kill@3s:1s, abort@3s, stall@3s:500ms or delay@3s:2s:20ms; with --server-members, leader@3s or "
    "kill-leader@3s (times from the measured window's start)"
)
KINDS = {  # kind: the parts after AT it takes, and an example
    "kill": (("duration",), "kill@3s:1s"),
    "abort": ((), "abort@3s"),
    "stall": (("duration",), "stall@3s:500ms"),
    "delay": (("duration", "delay"), "delay@3s:2s:20ms"),
    "leader": ((), "leader@3s"),
    "kill-leader": ((), "kill-leader@3s"),
}
CLUSTER_KINDS = frozenset({"leader", "kill-leader"})  # need --server-members; the others need one server
LEADER_WAIT_S = 15.0  # at most this long for a new leader after a leader fault


def parse_seconds(text: str) -> float:
    """``3s``, ``1.5``, ``500ms`` → seconds: the time flags' parser (``tsobench.options.parse_duration``)."""
    return parse_duration(text)


def _seconds_text(seconds: float) -> str:
    return f"{seconds * 1000:g}ms" if 0 < seconds < 1 else f"{seconds:g}s"


@dataclass(frozen=True)
class Fault:
    """One fault, validated on construction (a spec, a TOML plan or Python: the same errors)."""

    kind: str
    at_s: float
    duration_s: float = 0.0
    delay_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown fault kind {self.kind!r}; choose from {', '.join(KINDS)}")
        parts, example = KINDS[self.kind]
        for name, value in (("time", self.at_s), ("duration", self.duration_s), ("delay", self.delay_ms)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"fault {self.kind}: the {name} must be a number >= 0, got {value!r}")
        if "duration" in parts and self.duration_s <= 0:
            raise ConfigError(f"fault {self.kind} needs a positive duration, e.g. {example}")
        if "delay" in parts and self.delay_ms <= 0:
            raise ConfigError(f"fault {self.kind} needs a positive delay, e.g. {example}")
        if "duration" not in parts and self.duration_s:
            raise ConfigError(f"fault {self.kind} takes no duration, e.g. {example}")

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """``kill@3s:1s`` → Fault('kill', 3.0, 1.0); a ConfigError says what is wrong."""
        kind, _, tail = spec.strip().partition("@")
        if kind not in KINDS:
            known = ", ".join(example for _, example in KINDS.values())
            raise ConfigError(f"bad fault {spec!r}: unknown kind {kind!r}; for example {known}")
        parts, example = KINDS[kind]
        at, *values = tail.split(":") if tail else [""]
        if not at or len(values) != len(parts):
            raise ConfigError(f"bad fault {spec!r}: {kind} is written like {example}")
        try:
            times = dict(zip(("at", *parts), map(parse_seconds, [at, *values]), strict=True))
        except ValueError as exc:
            raise ConfigError(f"bad fault {spec!r}: {exc}") from None
        return cls(kind, times["at"], times.get("duration", 0.0), times.get("delay", 0.0) * 1000)

    @property
    def end_s(self) -> float:
        """When the fault is meant to stop acting, from the window's start."""
        return self.at_s + self.duration_s

    @property
    def spec(self) -> str:
        """The canonical spec (what ``parse`` reads back)."""
        text = f"{self.kind}@{_seconds_text(self.at_s)}"
        if "duration" in KINDS[self.kind][0]:
            text += f":{_seconds_text(self.duration_s)}"
        if self.kind == "delay":
            text += f":{self.delay_ms:g}ms"
        return text

    def __str__(self) -> str:
        return self.spec


def in_time_order(faults: Sequence[Fault]) -> list[Fault]:
    return sorted(faults, key=lambda f: f.at_s)


def check_faults(faults: Sequence[Fault]) -> None:
    """Faults (parsed: ``Fault.parse`` reads a spec) whose spans do not overlap."""
    for f in faults:
        if not isinstance(f, Fault):
            raise ConfigError(f"a fault must be a Fault, e.g. Fault.parse({f!r}) (got {type(f).__name__})")
    for a, b in itertools.pairwise(in_time_order(faults)):
        if b.at_s < a.end_s or (b.at_s == a.end_s == a.at_s):
            raise ConfigError(f"faults {a} and {b} overlap: give each its own span")


@dataclass(frozen=True)
class Injected:
    """A fault as it happened: seconds from the window's start (a kill ends when the server is back)."""

    fault: Fault
    started_s: float
    ended_s: float
    error: str | None = None  # the fault could not be done (or was cut short): why
