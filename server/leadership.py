"""Who serves Tso: a lone server always; a cluster member while it holds the
cluster's lease, as PD's leader holds an etcd lease.

The members of one cluster run on one machine and share one folder (their data
dir), with no lock between them: a member that is paused (SIGSTOP), or stuck in
a slow fsync, holds nobody up. Every file operation runs in a worker thread, so
no member's event loop ever waits on the disk: GetMembers and health answer
from what the member last read.

- ``lease.<term>.json``: the lease of one term: its leader, the member it was
  handed to (``next``) and when it expires, on the machine's monotonic clock
  (shared by every process on it). A member claims term N+1 by creating its file
  with ``link``, which fails if it exists: exactly one member wins each term.
  Only that member writes it afterwards (renewals, a hand-over), replacing it whole.
- ``tso-window.<term>.json``: the high-water window of that term's leader
  (``window``), saved and fsynced in a worker thread. A new leader starts above
  the largest window file in the folder, a lone server's ``tso-window.json`` included.
- ``tso.lock``, held *shared* by every member (and the launcher) for its life; a
  lone server holds it exclusive, so a lone server and a cluster never share a folder.

Why no two leaders ever hand out timestamps out of order. Every step of an old
leader writes first and then looks for a later term (a renewal writes its lease,
a save its window file, each then lists the leases); a new leader claims its term
first and then reads (the windows, the older leases). Between a write-then-look
and a claim-then-read one of the two sees the other:

- a save the old leader went on to use lies below what the new leader loaded; a
  later save (say, one a frozen leader finishes when it wakes) sees the new term
  and is never used. Window files only grow, and a new leader's first save lies
  above all of them, so removing older terms' files then lowers nothing in use;
- a renewal the old leader went on to serve under is on disk when the new leader
  reads the older leases, and the new one starts only once each has expired. The
  old one stops serving ``MARGIN`` before its lease expires (the monotonic clock
  keeps running while a process is stopped, so a woken leader knows it is late),
  and every renewal after the claim sees the new term.

A follower takes over when the latest lease has expired or was handed to it, so a
frozen or dead leader is replaced within the election timeout and a tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from tsobench.files import write_atomically

from .oracle import TimestampOracle, wall_clock_ms
from .window import DataDirLock, WindowError, WindowFile, term_window_name

LEASE_FILES = re.compile(r"lease\.(\d+)\.json")
MARGIN = 0.25  # a leader stops answering a quarter of the election timeout before its lease expires


class TooSoon(RuntimeError):
    """A hand-over refused: the leader's physical time is still ahead of the wall clock. A new leader starts
    above its predecessor's window, so hand-overs faster than the clock would push physical time ever
    further ahead of it; one at a time after the clock catches up keeps it within one window."""


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


class Terms:
    """The leases in a cluster's folder, one file per term (blocking file I/O: call it off the event loop)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path(self, term: int) -> Path:
        return self.folder / f"lease.{term}.json"

    def terms(self) -> list[int]:
        try:
            return [int(m[1]) for e in os.scandir(self.folder) if (m := LEASE_FILES.fullmatch(e.name))]
        except FileNotFoundError:
            return []

    def highest(self) -> int:
        return max(self.terms(), default=0)

    def read(self, term: int) -> Lease | None:
        """None when the term has no file (never claimed, or forgotten); a file we cannot read has expired."""
        try:
            fields = json.loads(self.path(term).read_text())
            return Lease(term, fields["leader"], fields["next"], float(fields["expires"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            return Lease(term)

    def latest(self) -> Lease:
        """The highest term's lease (a term forgotten between the listing and the read: list again)."""
        while term := self.highest():
            if (lease := self.read(term)) is not None:
                return lease
        return Lease()

    def claim(self, lease: Lease) -> bool:
        """Create the term's file, whole; False when another member already did."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".claim.{lease.term}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(asdict(lease)))
        try:
            os.link(tmp, self.path(lease.term))
        except FileExistsError:
            return False
        finally:
            tmp.unlink()
        return True

    def write(self, lease: Lease) -> None:
        """Replace the term's lease whole (only the member that claimed the term writes it)."""
        write_atomically(self.path(lease.term), json.dumps(asdict(lease)))

    def before(self, term: int) -> list[Lease]:
        return [lease for t in self.terms() if t < term and (lease := self.read(t)) is not None]

    def forget_before(self, term: int) -> None:
        """Remove older terms' leases and windows (once this term's window lies above every one of them)."""
        for t in self.terms():
            if t < term:
                for path in (self.path(t), self.folder / term_window_name(t)):
                    path.unlink(missing_ok=True)


class FencedWindow(WindowFile):
    """A term's own window file: a save counts only if, once it is on disk, no later term exists."""

    def __init__(self, terms: Terms, term: int) -> None:
        super().__init__(terms.folder, term_window_name(term))
        self._terms, self._term = terms, term

    def save(self, high_water_ms: int) -> int:
        on_disk = super().save(high_water_ms)
        if self._terms.highest() > self._term:
            raise NotLeader(f"term {self._term} is over: a later leader may have loaded the window before this save")
        return on_disk


class OffLoopWindow:
    """The oracle's window, saving in a worker thread once ``serve()`` was called.

    Until then (the oracle's first save, before anything is served) ``save`` saves
    and returns. While serving, ``save`` answers at once with what is on disk and,
    when more is asked, saves it in a worker thread, one save at a time (so a
    later save never lands before an earlier one): no fsync on the event loop.
    """

    def __init__(self, window: WindowFile, on_lost: Callable[[str], None] = lambda why: None) -> None:
        self._window, self._on_lost = window, on_lost
        self._on_disk = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._saving: asyncio.Future[int] | None = None
        self._failing = False

    def highest(self) -> tuple[int, Path | None]:
        return self._window.highest()

    def save(self, high_water_ms: int) -> int:
        if self._loop is None:
            self._on_disk = self._window.save(high_water_ms)
        elif high_water_ms > self._on_disk and self._saving is None:
            self._saving = self._loop.run_in_executor(None, self._window.save, high_water_ms)
            self._saving.add_done_callback(self._saved)
        return self._on_disk

    def serve(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def settle(self) -> None:
        """Wait for a save under way, then save in the caller's thread again (a clean stop)."""
        if self._saving is not None:
            with contextlib.suppress(Exception):  # _saved has said what went wrong
                await self._saving
        self._loop = None

    def _saved(self, saving: asyncio.Future[int]) -> None:
        self._saving = None
        error = saving.exception()
        if isinstance(error, NotLeader):
            self._on_lost(str(error))
        elif error is not None:
            if not self._failing:
                print(f"warning: cannot save the TSO window, timestamps are held back: {error}", file=sys.stderr)
            self._failing = True
        else:
            self._on_disk, self._failing = max(self._on_disk, saving.result()), False


class Solo:
    """A lone server: always the leader, of a cluster of one."""

    def __init__(self, data_dir: str | os.PathLike[str], window_ms: int, accept_future_window: bool) -> None:
        self.me = 0
        self._window = OffLoopWindow(WindowFile(data_dir))
        self._oracle = TimestampOracle(
            self._window, window_ms=window_ms, accept_future_window=accept_future_window, save_ahead_ms=window_ms // 2
        )

    def oracle(self) -> TimestampOracle:
        return self._oracle

    async def leader(self) -> int | None:
        return 0

    async def tick(self) -> None:
        self._window.serve()  # from the first tick on, which runs before the first request
        self._oracle.tick()

    async def transfer(self, to: int | None) -> int:
        raise NotLeader("a lone server has nobody to hand the leadership to (start it with --members)")

    async def resign(self) -> None:
        await self._window.settle()
        await asyncio.to_thread(self._oracle.save)


@dataclass(frozen=True)
class _Leading:
    """What a member holds while it leads a term."""

    term: int
    oracle: TimestampOracle
    window: OffLoopWindow
    serve_until: float


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
        self.terms = Terms(folder)
        self.me, self.size = me, size
        self.timeout_s = election_timeout_s
        self._window_ms, self._accept_future_window = window_ms, accept_future_window
        self._view = Lease()  # the latest lease as last read: what GetMembers says
        self._leading: _Leading | None = None
        self._io = asyncio.Lock()  # one lease operation at a time: a hand-over waits for a renewal under way

    def oracle(self) -> TimestampOracle | None:
        """The oracle while this member leads, None otherwise (the caller answers "not leader")."""
        leading = self._leading
        if leading is not None and time.monotonic() < leading.serve_until:
            return leading.oracle
        return None

    async def leader(self) -> int | None:
        """The member holding the lease; None during an election. From the lease as last read
        while it names one, else read again (in a worker thread): a new leader shows at once."""
        view = self._view
        if not view.held(time.monotonic()):
            view = await asyncio.to_thread(self.terms.latest)
        return view.leader if view.held(time.monotonic()) else None

    async def tick(self) -> None:
        """Every 50 ms: a leader renews its lease and ticks its oracle; a follower reads the lease
        and takes it when it may. The file work runs in a worker thread."""
        async with self._io:
            try:
                if self._leading is None:
                    await self._campaign()
                else:
                    await self._renew()
            except OSError as exc:  # the folder is unreachable: a leader's lease runs out, as it should
                print(f"member {self.me}: cannot reach the cluster's folder: {exc}", file=sys.stderr, flush=True)
        if self._leading is not None:
            self._leading.oracle.tick()

    def lost(self, why: str, term: int | None = None) -> None:
        """Stop leading at once (a fenced save was refused, or the lease went to another)."""
        if self._leading is not None and term in (None, self._leading.term):
            print(f"member {self.me}: no longer the leader: {why}", file=sys.stderr, flush=True)
            self._leading = None

    async def _campaign(self) -> None:
        self._view, leading = await asyncio.to_thread(self._campaign_io)
        if leading is not None:
            leading.window.serve()
            self._leading = leading
            print(f"member {self.me}: leader of term {leading.term}", file=sys.stderr, flush=True)

    def _may_take(self, lease: Lease, now: float) -> bool:
        return (lease.leader is None and lease.next == self.me) or now >= lease.expires

    def _campaign_io(self) -> tuple[Lease, _Leading | None]:
        lease, now = self.terms.latest(), time.monotonic()
        if not self._may_take(lease, now):
            return lease, None
        mine = Lease(lease.term + 1, self.me, None, now + self.timeout_s)
        if not self.terms.claim(mine):
            return self.terms.latest(), None  # another member won this term
        # An older leader that renewed after we read its lease serves until MARGIN before the expiry
        # it wrote (its renewals from now on see our term): start once every such lease has run out.
        start = max([now, *(old.expires for old in self.terms.before(mine.term) if old.leader is not None)])
        if start > now:
            mine = replace(mine, expires=start + self.timeout_s)
            self.terms.write(mine)
            time.sleep(max(0.0, start - time.monotonic()))
        window = OffLoopWindow(FencedWindow(self.terms, mine.term), lambda why: self.lost(why, mine.term))
        try:
            oracle = TimestampOracle(
                window,
                window_ms=self._window_ms,
                accept_future_window=self._accept_future_window,
                save_ahead_ms=self._window_ms // 2,
            )
        except NotLeader:
            return self.terms.latest(), None
        except (WindowError, OSError) as exc:
            self.terms.path(mine.term).unlink(missing_ok=True)  # never served: give the term back to the others
            print(f"member {self.me}: cannot lead: {exc}", file=sys.stderr, flush=True)
            return self.terms.latest(), None
        self.terms.forget_before(mine.term)
        return mine, _Leading(mine.term, oracle, window, serve_until=start + self.timeout_s * (1 - MARGIN))

    async def _renew(self) -> None:
        leading, started = self._leading, time.monotonic()
        assert leading is not None
        self._view, kept = await asyncio.to_thread(self._renew_io, leading.term, started)
        if self._leading is not leading:
            return  # handed over or lost meanwhile: that stands
        if kept:
            self._leading = replace(leading, serve_until=started + self.timeout_s * (1 - MARGIN))
        else:
            why = f"the lease of term {leading.term} passed to member {self._view.leader} (term {self._view.term})"
            self.lost(why, leading.term)

    def _renew_io(self, term: int, started: float) -> tuple[Lease, bool]:
        """Write the lease, then look for a later term (never write over a term we know is over)."""
        if self.terms.highest() == term:
            renewed = Lease(term, self.me, None, started + self.timeout_s)
            self.terms.write(renewed)
            if self.terms.highest() == term:
                return renewed, True
        return self.terms.latest(), False

    async def transfer(self, to: int | None, paced: bool = True) -> int:
        """Hand the lease to member ``to`` (default: the next one); stop answering first. Returns ``to``.

        ``paced`` (an admin's request): refused (TooSoon) while this leader's physical time is ahead of the
        wall clock, so physical time stays within one window of it however often a client asks."""
        target = (self.me + 1) % self.size if to is None else to
        if not 0 <= target < self.size or target == self.me:
            raise ValueError(
                f"cannot hand the leadership to member {target} (members 0..{self.size - 1}, I am {self.me})"
            )
        leading = self._leading
        if leading is None or self.oracle() is None:
            raise NotLeader(f"member {self.me} is not the leader (member {await self.leader()} is)")
        ahead_ms = leading.oracle.physical - wall_clock_ms()
        if paced and ahead_ms > 0:
            raise TooSoon(
                f"physical time is {ahead_ms} ms ahead of the wall clock (this leader started above the last "
                f"window): a hand-over now would start the next one further ahead; retry in {ahead_ms} ms"
            )
        self._leading = None  # no timestamp leaves after this line
        async with self._io:
            self._view = Lease(leading.term, None, target, time.monotonic() + self.timeout_s)
            await asyncio.to_thread(self.terms.write, self._view)
        print(f"member {self.me}: handed the leadership to member {target}", file=sys.stderr, flush=True)
        return target

    async def resign(self) -> None:
        """On a clean stop, a leader hands over to the next member rather than let its lease run out."""
        leading = self._leading
        if leading is not None and self.oracle() is not None and self.size > 1:
            await self.transfer(None, paced=False)  # stopping: the lease would run out anyway
        if leading is not None:
            await leading.window.settle()


def claim(folder: str | os.PathLike[str], hold_s: float) -> DataDirLock:
    """Set a cluster's folder up before its members start: nobody may be using it
    (exclusive lock); old leases, whose clock may be from before a reboot, give way
    to a new term handed to member 0 (the others may take it after ``hold_s``, if
    member 0 never starts); then hold the folder shared, as the members do."""
    lock = DataDirLock(folder).acquire()
    terms = Terms(folder)
    term = terms.highest() + 1
    terms.write(Lease(term, None, 0, time.monotonic() + hold_s))
    for old in terms.terms():
        if old < term:
            terms.path(old).unlink(missing_ok=True)
    lock.share()
    return lock
