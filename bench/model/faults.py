"""Faults on the embedded server: the kinds (``FAULT_KINDS``, each a ``FaultKind`` registered once with
its word, arguments, the admin request that disrupts the server, what a client should see and how long
its failures count as its own) and the ``--fault`` value type.

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

The harness fires them from the parent (``runs/injector.py``, through each kind's ``fire``), so a
fault needs a server the harness owns: not with ``--target``.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tsobench.options import ConfigError, parse_duration

LEADER_WAIT_S = 15.0  # at most this long for a new leader after a leader fault


class FaultTarget(Protocol):
    """What a fault acts on: the embedded server or cluster, seen from the harness (``runs/injector.py``
    adapts ChildServer and ChildCluster to it). ``wait`` sleeps, True when the run stopped meanwhile."""

    def admin(self, request: str, **fields: float) -> None: ...  # one request to the server's admin service
    def kill(self) -> None: ...
    def restart(self) -> None: ...
    def transfer_leader(self) -> int: ...  # the member that led
    def kill_leader(self) -> int: ...
    def leader(self) -> int | None: ...
    def wait(self, seconds: float) -> bool: ...


@dataclass(frozen=True)
class FaultKind:
    """One kind of fault, in one place: its ``--fault`` word and arguments, how the harness disrupts the
    server (``fire``, through the admin service where it can), what a client should see, and how long its
    failures count as its own. Adding a kind is one ``register(FaultKind(...))`` and a test."""

    word: str  # kill, abort, ...: the spec's KIND and the results' ``faults[].kind``
    parts: tuple[str, ...]  # the values after AT it takes, in order: "duration" (s), "delay" (ms)
    example: str  # a spec, for help and errors
    fire: Callable[[FaultTarget, Fault], None]  # do it; raises when it could not be done
    sees: str  # what a client should see, for docs and reports
    admin: str | None = None  # the admin request it sends (None: it acts on processes)
    cluster: bool = False  # needs --server-members (the others need a single server)
    lasts_until_back: bool = False  # it ends when the server (or a new leader) is back, not at AT + duration
    restarts_server: bool = False  # the server's counters start again from zero: no server summary
    extra_horizon_s: float = 0.0  # on top of the run's recovery horizon (the strategy's overrun + a reconnect)

    def __post_init__(self) -> None:
        if set(self.parts) - {"duration", "delay"}:
            raise ValueError(f"fault kind {self.word}: parts are 'duration' and 'delay', got {self.parts}")


FAULT_KINDS: dict[str, FaultKind] = {}  # by word, in the order registered (help, errors, reports)


def register(kind: FaultKind) -> FaultKind:
    """Add a kind (a word taken already is an error)."""
    if kind.word in FAULT_KINDS:
        raise ValueError(f"fault kind {kind.word!r} is registered already")
    FAULT_KINDS[kind.word] = kind
    return kind


def unregister(word: str) -> None:
    FAULT_KINDS.pop(word, None)


def fault_help() -> str:
    """The --fault help: every kind's example."""
    single = [k.example for k in FAULT_KINDS.values() if not k.cluster]
    cluster = [k.example for k in FAULT_KINDS.values() if k.cluster]
    text = ", ".join(single[:-1]) + f" or {single[-1]}" if len(single) > 1 else "".join(single)
    if cluster:
        text += f"; with --server-members, {' or '.join(cluster)}"
    return text + " (times from the measured window's start)"


def _admin_request(request: str, *fields: str) -> Callable[[FaultTarget, Fault], None]:
    """A fault that is one admin request with the fault's ``fields`` (``duration_s``, ``delay_ms``)."""

    def fire(target: FaultTarget, fault: Fault) -> None:
        target.admin(request, **{name: getattr(fault, name) for name in fields})

    return fire


def _kill_and_restart(target: FaultTarget, fault: Fault) -> None:
    target.kill()
    if target.wait(fault.duration_s):
        raise InterruptedError("the run stopped while the server was down")
    target.restart()


def _new_leader(move: Callable[[FaultTarget], int]) -> Callable[[FaultTarget, Fault], None]:
    """Move the leadership away (``move`` returns who led), then wait until another member holds the lease."""

    def fire(target: FaultTarget, fault: Fault) -> None:
        old = move(target)
        deadline = time.monotonic() + LEADER_WAIT_S
        while (leader := target.leader()) is None or leader == old:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no new leader within {LEADER_WAIT_S:g}s")
            if target.wait(0.01):
                raise InterruptedError("the run stopped before a new leader was elected")

    return fire


register(
    FaultKind(
        "kill",
        ("duration",),
        "kill@3s:1s",
        _kill_and_restart,
        "UNAVAILABLE until the restarted server listens (same port, same data dir), then a reconnect",
        lasts_until_back=True,
        restarts_server=True,
    )
)
register(
    FaultKind(
        "abort",
        (),
        "abort@3s",
        _admin_request("AbortStreams"),
        "every stream open at that moment fails once with UNAVAILABLE; a reconnect answers",
        admin="AbortStreams",
    )
)
register(
    FaultKind(
        "stall",
        ("duration",),
        "stall@3s:500ms",
        _admin_request("Stall", "duration_s"),
        "no reply for the duration, then every queued one in order (a shorter deadline: a timeout)",
        admin="Stall",
    )
)
register(
    FaultKind(
        "delay",
        ("duration", "delay"),
        "delay@3s:2s:20ms",
        _admin_request("Delay", "duration_s", "delay_ms"),
        "every reply later by the delay for the duration, none lost",
        admin="Delay",
    )
)
register(
    FaultKind(
        "leader",
        (),
        "leader@3s",
        _new_leader(lambda target: target.transfer_leader()),
        "the old leader refuses (not leader) until the client asks GetMembers and follows the new one",
        admin="TransferLeader",
        cluster=True,
        lasts_until_back=True,
    )
)
register(
    FaultKind(
        "kill-leader",
        (),
        "kill-leader@3s",
        _new_leader(lambda target: target.kill_leader()),
        "UNAVAILABLE from the dead leader until another member's lease starts (the election timeout)",
        cluster=True,
        lasts_until_back=True,
    )
)


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
        if self.kind not in FAULT_KINDS:
            raise ConfigError(f"unknown fault kind {self.kind!r}; choose from {', '.join(FAULT_KINDS)}")
        parts, example = self.declared.parts, self.declared.example
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
        if kind not in FAULT_KINDS:
            known = ", ".join(k.example for k in FAULT_KINDS.values())
            raise ConfigError(f"bad fault {spec!r}: unknown kind {kind!r}; for example {known}")
        parts, example = FAULT_KINDS[kind].parts, FAULT_KINDS[kind].example
        at, *values = tail.split(":") if tail else [""]
        if not at or len(values) != len(parts):
            raise ConfigError(f"bad fault {spec!r}: {kind} is written like {example}")
        try:
            times = dict(zip(("at", *parts), map(parse_seconds, [at, *values]), strict=True))
        except ValueError as exc:
            raise ConfigError(f"bad fault {spec!r}: {exc}") from None
        return cls(kind, times["at"], times.get("duration", 0.0), times.get("delay", 0.0) * 1000)

    @property
    def declared(self) -> FaultKind:
        """Its kind's declaration."""
        return FAULT_KINDS[self.kind]

    @property
    def end_s(self) -> float:
        """When the fault is meant to stop acting, from the window's start."""
        return self.at_s + self.duration_s

    @property
    def spec(self) -> str:
        """The canonical spec (what ``parse`` reads back)."""
        text = f"{self.kind}@{_seconds_text(self.at_s)}"
        if "duration" in self.declared.parts:
            text += f":{_seconds_text(self.duration_s)}"
        if "delay" in self.declared.parts:
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
