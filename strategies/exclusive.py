"""Streams checked out exclusively: each caller has a stream to itself for its
write and the matching read. ``locked`` is one such stream, ``pool`` several.

Waiting callers queue in FIFO order (``handoff``); one watchdog per client
(``deadline``) fails callers that waited too long for a stream and cancels a
stream whose reply is late; a broken stream is reopened on its next checkout,
after a backoff (``backoff``), on the leader the channels found if it moved.
"""

from __future__ import annotations

import asyncio
from typing import cast

from .backoff import Backoff, CountsReconnects
from .base import ClientOptions, Timestamp
from .deadline import IDLE, LATE, AsyncWatchdog, DeadlineExceeded, ThreadWatchdog
from .handoff import AsyncHandOff, ThreadHandOff
from .stream import (
    AsyncChannels,
    AsyncClientBase,
    AsyncStream,
    SyncChannels,
    SyncStream,
    ThreadClientBase,
    to_timestamp,
)


class _Slot:
    """One stream and what the watchdog needs to know about it."""

    __slots__ = ("expired", "since", "stream", "task")

    def __init__(self) -> None:
        self.stream: SyncStream | AsyncStream | None = None
        self.since = IDLE  # watchdog tick of the request in flight
        self.expired = False  # the watchdog cancelled its stream
        self.task: asyncio.Task[object] | None = None  # asyncio: the caller holding the slot


def _late_streams(slots: list[_Slot], cutoff: int) -> None:
    for slot in slots:
        stream = slot.stream
        if stream is not None and IDLE != slot.since <= cutoff and not slot.expired:
            slot.expired = True
            stream.close()  # the caller's read fails at once; _broken names it a timeout
            if slot.task is not None:
                # grpc.aio may leave a write pending forever on a cancelled call
                # (a server that never answered the handshake): wake the caller too.
                slot.task.cancel()


def _broken(slot: _Slot, backoff: Backoff, channels: SyncChannels | AsyncChannels, exc: BaseException) -> bool:
    """Drop a slot's stream after a failure; True when the watchdog caused it."""
    stream, slot.stream = slot.stream, None
    expired, slot.expired = slot.expired, False
    slot.since = IDLE
    if stream is not None:
        stream.close()
    backoff.failed()
    # The leader may have moved, or be frozen (a deadline): the reopen asks who leads first.
    channels.stream_failed(DeadlineExceeded(LATE) if expired else exc)
    return expired


class _Slots(CountsReconnects):
    """What the thread and asyncio clients share: the slots, their hand-off, the backoff."""

    _handoff: ThreadHandOff[_Slot] | AsyncHandOff[_Slot]

    def _init_slots(self, options: ClientOptions, streams: int | None) -> None:
        self._size = streams or options.pool_size
        self.backoff = Backoff()

    def _new_slots(self) -> list[_Slot]:
        self._slots = [_Slot() for _ in range(self._size)]
        return list(self._slots)

    def _expire(self, cutoff: int) -> None:
        self._handoff.expire(cutoff)
        _late_streams(self._slots, cutoff)

    def _close_slots(self) -> None:
        """Fail the callers still waiting for a stream, and close every stream."""
        self._handoff.close()
        for slot in self._slots:
            if slot.stream is not None:
                slot.stream.close()


class ThreadClient(_Slots, ThreadClientBase):
    _handoff: ThreadHandOff[_Slot]

    def __init__(self, options: ClientOptions, streams: int | None = None) -> None:
        super().__init__(options)
        self._init_slots(options, streams)

    def open(self) -> None:
        super().open()
        self._handoff = ThreadHandOff(self._new_slots())
        self._watchdog = ThreadWatchdog(self.options.timeout_s, self._expire)

    def get_ts(self, count: int = 1) -> Timestamp:
        watchdog = self._watchdog
        slot = self._handoff.acquire(watchdog.tick)
        slot.since = watchdog.tick  # the deadline covers a reconnect backoff too
        try:
            stream = cast("SyncStream | None", slot.stream)  # a thread client's slots hold SyncStreams
            if stream is None:
                self.backoff.wait()
                stream = slot.stream = SyncStream(self.channels.stub())
            stream.send(self.channels.request(count))
            reply = stream.recv()
            slot.since = IDLE
        except Exception as exc:
            if _broken(slot, self.backoff, self.channels, exc):
                raise DeadlineExceeded(LATE) from None
            raise
        finally:
            self._handoff.release(slot)
        self.backoff.succeeded()
        return to_timestamp(reply, count)

    def close(self) -> None:
        self._watchdog.stop()
        self._close_slots()
        super().close()


class AsyncClient(_Slots, AsyncClientBase):
    _handoff: AsyncHandOff[_Slot]

    def __init__(self, options: ClientOptions, streams: int | None = None) -> None:
        super().__init__(options)
        self._init_slots(options, streams)

    async def open(self) -> None:
        await super().open()
        self._handoff = AsyncHandOff(self._new_slots())
        self._watchdog = AsyncWatchdog(self.options.timeout_s, self._expire)

    async def get_ts(self, count: int = 1) -> Timestamp:
        watchdog = self._watchdog
        slot = await self._handoff.acquire(watchdog.tick)
        slot.since = watchdog.tick  # the deadline covers a reconnect backoff too
        slot.task = task = asyncio.current_task()
        try:
            stream = cast("AsyncStream | None", slot.stream)
            if stream is None:
                await self.backoff.wait_async()
                stream = slot.stream = AsyncStream(await self.channels.stub())
            await stream.send(self.channels.request(count))
            reply = await stream.recv()
            slot.since = IDLE
        except (Exception, asyncio.CancelledError) as exc:
            expired = _broken(slot, self.backoff, self.channels, exc)
            if expired and isinstance(exc, asyncio.CancelledError) and task is not None:
                task.uncancel()  # the watchdog's cancel; another one still propagates
                if task.cancelling():
                    raise
            if expired:
                raise DeadlineExceeded(LATE) from None
            raise
        finally:
            slot.task = None
            self._handoff.release(slot)
        self.backoff.succeeded()
        return to_timestamp(reply, count)

    async def close(self) -> None:
        await self._watchdog.stop()
        self._close_slots()
        await super().close()
