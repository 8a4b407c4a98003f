"""Who serves Tso: a lone server always; a cluster member while it holds the
cluster's lease, as PD's leader holds an etcd lease.

The members of one cluster run on one machine and share one folder (their data dir):

- ``tso-window.json``, the high-water window, exactly as a lone server keeps it.
  Only the lease's holder saves it, and only after checking the lease;
- ``leader.json``, the lease: term, leader, the member it was handed to
  (``next``) and when it expires, on the machine's monotonic clock (shared by
  every process on it);
- ``election.lock``, flocked only while a member reads-and-writes the lease or
  loads/saves the window, so that a takeover (new lease, window loaded) and a
  former leader's save never interleave;
- ``tso.lock``, held *shared* by every member (and the launcher) for its life; a
  lone server holds it exclusive, so a lone server and a cluster never share a folder.

Why a new leader starts above everything the old one issued: a leader hands
out only timestamps below the window it saved, and saves only while the lease
names it. A member takes the lease over (under the election lock) only when it
was handed to it or has expired, then loads the window and starts above it. So
the old leader's timestamps are all below what the new one loaded, and its
later saves are refused. A leader stops answering a quarter of the lease before
it expires (``MARGIN``), so that it never answers after a successor took over.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .oracle import TimestampOracle
from .window import DataDirLock, WindowError, WindowFile

LEASE_NAME = "leader.json"
ELECTION_LOCK_NAME = "election.lock"
MARGIN = 0.25  # a leader stops answering a quarter of the election timeout before its lease expires


class NotLeader(RuntimeError):
    """This server may not hand out timestamps now (a follower's answer)."""


@dataclass(frozen=True)
class Lease:
    term: int = 0
    leader: int | None = None
    next: int | None = None  # handed over: this member takes it at once, others once it expires
    expires: float = 0.0  # time.monotonic()

    def held(self, now: float) -> bool:
        return self.leader is not None and now < self.expires


class LeaseFile:
    """The lease and the election lock in a cluster's folder."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LEASE_NAME
        self._lock_path = self.folder / ELECTION_LOCK_NAME
        self._fd: int | None = None
        self._depth = 0

    def read(self) -> Lease:
        try:
            return Lease(**json.loads(self.path.read_text()))
        except FileNotFoundError:
            return Lease()

    def write(self, lease: Lease) -> None:
        """Replace atomically (readers never see half a lease); call it holding ``locked()``."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(lease)))
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The election lock (re-entrant within this object: a takeover saves the window under it)."""
        if self._depth == 0:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._fd = fd
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0 and self._fd is not None:
                os.close(self._fd)
                self._fd = None


def claim(folder: str | os.PathLike[str], hold_s: float) -> DataDirLock:
    """Set a cluster's folder up before its members start: nobody may be using it
    (exclusive lock); the old lease, whose clock may be from before a reboot, gives
    way to one handed to member 0 (the others may take it after ``hold_s``, if
    member 0 never starts); then hold the folder shared, as the members do."""
    lock = DataDirLock(folder).acquire()
    leases = LeaseFile(folder)
    with leases.locked():
        try:
            term = leases.read().term
        except (ValueError, TypeError):  # not a lease we wrote: start the terms again
            term = 0
        leases.write(Lease(term, None, 0, time.monotonic() + hold_s))
    lock.share()
    return lock


class FencedWindow(WindowFile):
    """The shared window, saved only while the lease names this member in this term."""

    def __init__(self, leases: LeaseFile, me: int, term: int) -> None:
        super().__init__(leases.folder)
        self._leases, self._me, self._term = leases, me, term

    def load(self) -> int:
        with self._leases.locked():
            return super().load()

    def save(self, high_water_ms: int) -> int:
        with self._leases.locked():
            lease = self._leases.read()
            if (lease.leader, lease.term) != (self._me, self._term) or not lease.held(time.monotonic()):
                raise NotLeader(f"member {self._me} lost the lease of term {self._term}")
            return super().save(high_water_ms)


class Solo:
    """A lone server: always the leader, of a cluster of one."""

    def __init__(self, oracle: TimestampOracle) -> None:
        self._oracle = oracle
        self.me = 0

    def oracle(self) -> TimestampOracle:
        return self._oracle

    def leader(self) -> int | None:
        return 0

    def tick(self) -> None:
        self._oracle.tick()

    def lost(self, why: str) -> None:
        """Never: nobody else can take a lone server's leadership."""

    def transfer(self, to: int | None) -> int:
        raise NotLeader("a lone server has nobody to hand the leadership to (start it with --members)")

    def resign(self) -> None:
        self._oracle.save()


class Member:
    """One member of a cluster: follows the lease, takes it when it may, leads while it holds it."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        me: int,
        size: int,
        election_timeout_s: float,
        window_ms: int,
        accept_future_window: bool,
    ) -> None:
        self.leases = LeaseFile(folder)
        self.me, self.size = me, size
        self.timeout_s = election_timeout_s
        self._window_ms, self._accept_future_window = window_ms, accept_future_window
        self._oracle: TimestampOracle | None = None
        self._term = 0
        self._serve_until = 0.0

    def oracle(self) -> TimestampOracle | None:
        """The oracle while this member leads, None otherwise (the caller answers "not leader")."""
        if self._oracle is not None and time.monotonic() < self._serve_until:
            return self._oracle
        return None

    def leader(self) -> int | None:
        """The member holding the lease now; None during an election."""
        lease = self.leases.read()
        return lease.leader if lease.held(time.monotonic()) else None

    def tick(self) -> None:
        """Every 50 ms: a leader renews its lease (a small file, no fsync) and ticks its oracle;
        a follower may take over."""
        if self._oracle is None:
            self._campaign()
            return
        try:
            self._renew(time.monotonic())
            self._oracle.tick()
        except NotLeader as exc:
            self.lost(str(exc))

    def lost(self, why: str) -> None:
        """Stop leading at once (a fenced save was refused, or the lease went to another)."""
        if self._oracle is not None:
            print(f"member {self.me}: no longer the leader: {why}", file=sys.stderr, flush=True)
        self._oracle = None

    def _may_take(self, lease: Lease, now: float) -> bool:
        return (lease.leader is None and lease.next == self.me) or now >= lease.expires

    def _campaign(self) -> None:
        if not self._may_take(self.leases.read(), time.monotonic()):  # a cheap look first
            return
        with self.leases.locked():
            lease, now = self.leases.read(), time.monotonic()
            if not self._may_take(lease, now):
                return
            term = lease.term + 1
            self.leases.write(Lease(term, self.me, None, now + self.timeout_s))
            try:
                oracle = TimestampOracle(
                    FencedWindow(self.leases, self.me, term),
                    window_ms=self._window_ms,
                    accept_future_window=self._accept_future_window,
                )
            except (WindowError, OSError) as exc:
                self.leases.write(Lease(term, None, None, now))  # let another member try
                print(f"member {self.me}: cannot lead: {exc}", file=sys.stderr, flush=True)
                return
            self._term, self._oracle = term, oracle
            self._serve_until = now + self.timeout_s * (1 - MARGIN)
        print(f"member {self.me}: leader of term {term}", file=sys.stderr, flush=True)

    def _renew(self, now: float) -> None:
        with self.leases.locked():
            lease = self.leases.read()
            if (lease.leader, lease.term) != (self.me, self._term):
                raise NotLeader(f"the lease of term {self._term} passed to member {lease.leader} (term {lease.term})")
            self.leases.write(replace(lease, expires=now + self.timeout_s))
        self._serve_until = now + self.timeout_s * (1 - MARGIN)

    def transfer(self, to: int | None) -> int:
        """Hand the lease to member ``to`` (default: the next one); stop answering first. Returns ``to``."""
        target = (self.me + 1) % self.size if to is None else to
        if not 0 <= target < self.size or target == self.me:
            raise ValueError(
                f"cannot hand the leadership to member {target} (members 0..{self.size - 1}, I am {self.me})"
            )
        if self.oracle() is None:
            raise NotLeader(f"member {self.me} is not the leader (member {self.leader()} is)")
        self._oracle = None  # no timestamp leaves after this line
        with self.leases.locked():
            lease = self.leases.read()
            if (lease.leader, lease.term) == (self.me, self._term):
                self.leases.write(Lease(lease.term, None, target, time.monotonic() + self.timeout_s))
        print(f"member {self.me}: handed the leadership to member {target}", file=sys.stderr, flush=True)
        return target

    def resign(self) -> None:
        """On a clean stop, a leader hands over to the next member rather than let its lease run out."""
        if self.oracle() is not None and self.size > 1:
            self.transfer(None)
