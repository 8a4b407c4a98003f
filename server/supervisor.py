"""``tsobench serve --members N`` in the foreground: start a ``ChildCluster``, say
where its members listen, report leader changes, restart members that die (at most
once per ``RESTART_PAUSE_S`` each; ``restart=False``: watch them stay dead, to run one
by hand with ``serve --members N --member K``), and stop them all on SIGTERM/SIGINT
(or, with ``exit_with_parent``, when stdin closes)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
import time

from tsobench.files import write_atomically

from .app import _set_on_stdin_eof, check_tls, exposure
from .config import ServerConfig
from .embedded import ChildCluster

WATCH_INTERVAL_S = 0.1
RESTART_PAUSE_S = 1.0  # a member that keeps dying is restarted at most this often (no restart storm)


async def serve_cluster(
    config: ServerConfig,
    size: int,
    port_file: str | None = None,
    announce=print,
    exit_with_parent: bool = False,
    restart: bool = True,
) -> bool:
    """Run a cluster of ``size`` members until told to stop. True when it stopped because stdin closed."""
    check_tls(config)  # a bad certificate or key is said once, here, not by each member
    cluster = ChildCluster(config, size)
    await asyncio.to_thread(cluster.start)
    try:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        orphaned = asyncio.Event()
        if exit_with_parent:
            threading.Thread(target=_set_on_stdin_eof, args=(loop, orphaned), daemon=True, name="parent-watch").start()
        leader = cluster.wait_for_leader()
        addresses = cluster.addresses
        if port_file:  # the leader first, then the others
            write_atomically(
                port_file, "".join(f"{a}\n" for a in [addresses[leader], *addresses[:leader], *addresses[leader + 1 :]])
            )
        for i, address in enumerate(addresses):
            announce(f"member {i} listening on {address}" + (" (leader)" if i == leader else ""), flush=True)
            if (url := cluster.members[i].metrics_url) is not None:
                announce(f"member {i} metrics on {url}", flush=True)  # each member's own: scrape them all
        announce(f"--target {cluster.address}", flush=True)
        if (exposed := exposure(config)) is not None:
            print(f"warning: every member is {exposed}", file=sys.stderr, flush=True)
        await _watch(cluster, leader, stop, orphaned, announce, restart)
    finally:
        await asyncio.to_thread(cluster.close)
    announce("stopped" + (" (stdin closed: the parent is gone)" if orphaned.is_set() else ""), flush=True)
    return orphaned.is_set()


async def _watch(
    cluster: ChildCluster,
    leader: int | None,
    stop: asyncio.Event,
    orphaned: asyncio.Event,
    announce,
    restart: bool = True,
) -> None:
    alive = set(range(cluster.size))
    restarted: dict[int, float] = {}
    while not (stop.is_set() or orphaned.is_set()):
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), WATCH_INTERVAL_S)
        if stop.is_set() or orphaned.is_set():
            return
        for i in sorted(alive):
            proc = cluster.members[i].proc
            if proc is not None and proc.poll() is not None:
                alive.discard(i)
                announce(f"member {i} exited with {proc.returncode}", flush=True)
        for i in sorted(set(range(cluster.size)) - alive) if restart else ():
            if time.monotonic() - restarted.get(i, -RESTART_PAUSE_S) < RESTART_PAUSE_S:
                continue
            restarted[i] = time.monotonic()
            try:
                await asyncio.to_thread(cluster.restart, i)
            except Exception as exc:
                announce(f"member {i} could not restart: {exc}", flush=True)
                continue
            alive.add(i)
            announce(f"member {i} restarted on {cluster.addresses[i]} (a follower)", flush=True)
        now = cluster.leader()
        if now != leader:
            announce("no leader (an election)" if now is None else f"member {now} leads", flush=True)
            leader = now
        if not alive:
            announce("every member has exited", flush=True)
            return
