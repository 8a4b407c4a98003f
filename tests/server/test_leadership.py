"""A cluster's terms without a lock: each interleaving of an old leader and a new one, in one process."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tsobench.server.leadership import MARGIN, FencedWindow, Lease, Member, NotLeader, OffLoopWindow, Terms, claim
from tsobench.server.window import FILE_NAME, WindowFile, term_window_name

TIMEOUT_S = 0.3


def member(folder, me: int = 1) -> Member:
    return Member(folder, me, 3, TIMEOUT_S, window_ms=100, accept_future_window=False)


def test_exactly_one_member_wins_a_term(tmp_path):
    terms = Terms(tmp_path)
    wins = [terms.claim(Lease(1, me, None, time.monotonic() + 1)) for me in range(3)]
    assert wins == [True, False, False]
    assert terms.latest().leader == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lease.1.json"]  # no temporary file left


def test_a_save_that_lands_after_a_later_term_was_claimed_is_refused_and_lowers_nothing(tmp_path):
    """A frozen leader wakes up and finishes a save: the file grows, but the save is never used."""
    terms = Terms(tmp_path)
    old = FencedWindow(terms, 1)
    terms.claim(Lease(1, 0))
    assert old.save(1_000) == 1_000
    terms.claim(Lease(2, 1))
    loaded = WindowFile(tmp_path).load()
    with pytest.raises(NotLeader, match="term 1 is over"):
        old.save(5_000)
    assert loaded == 1_000 and WindowFile(tmp_path).load() == 5_000  # higher, never lower
    with pytest.raises(NotLeader):
        old.save(10)  # a lower save writes nothing and is refused all the same
    assert json.loads((tmp_path / term_window_name(1)).read_text()) == {"high_water_ms": 5_000}


def test_a_new_leader_waits_out_a_renewal_it_did_not_see(tmp_path, monkeypatch):
    """The old leader renewed after the follower read its (expired) lease: the follower claims the
    next term, but starts only once that renewal has expired, and serves until MARGIN before its own."""
    terms = Terms(tmp_path)
    now = time.monotonic()
    terms.claim(Lease(1, 0, None, now - 1))
    stale = terms.latest()
    renewed = Lease(1, 0, None, now + TIMEOUT_S)
    terms.write(renewed)
    follower = member(tmp_path)
    monkeypatch.setattr(follower.terms, "latest", lambda: stale)  # what it read before the renewal
    lease, leading = follower._campaign_io()
    assert leading is not None and lease.term == 2
    assert time.monotonic() >= renewed.expires  # the old leader has stopped by now
    assert leading.serve_until == pytest.approx(renewed.expires + TIMEOUT_S * (1 - MARGIN))
    assert Terms(tmp_path).read(2).expires == pytest.approx(renewed.expires + TIMEOUT_S)


def test_a_new_leader_starts_above_every_window_and_forgets_older_terms(tmp_path):
    now_ms = time.time_ns() // 1_000_000
    WindowFile(tmp_path).save(now_ms + 2_000)  # a lone server ran here once
    terms = Terms(tmp_path)
    terms.claim(Lease(1, 0, None, time.monotonic() - 1))
    FencedWindow(terms, 1).save(now_ms + 5_000)
    lease, leading = member(tmp_path)._campaign_io()
    assert leading is not None and (lease.term, lease.leader) == (2, 1)
    assert leading.oracle.physical > now_ms + 5_000
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([FILE_NAME, "lease.2.json", term_window_name(2)])


def test_a_woken_leader_does_not_renew_over_a_later_term(tmp_path):
    terms = Terms(tmp_path)
    terms.claim(Lease(1, 1, None, time.monotonic() - 1))
    terms.claim(Lease(2, 2, None, time.monotonic() + 1))
    before = terms.path(1).read_text()
    lease, kept = member(tmp_path)._renew_io(1, time.monotonic())
    assert not kept and (lease.term, lease.leader) == (2, 2)
    assert terms.path(1).read_text() == before


def test_a_member_that_cannot_lead_gives_the_term_back(tmp_path, capsys):
    (tmp_path / FILE_NAME).write_text("{garbage")
    terms = Terms(tmp_path)
    terms.claim(Lease(1, 0, None, time.monotonic() - 1))
    lease, leading = member(tmp_path)._campaign_io()
    assert leading is None and lease.term == 1
    assert terms.terms() == [1]
    assert "cannot lead: corrupt TSO window file" in capsys.readouterr().err


def test_a_cluster_starts_with_a_new_term_handed_to_member_0(tmp_path):
    terms = Terms(tmp_path)
    terms.claim(Lease(4, 2, None, time.monotonic() + 100))  # from a cluster that ran before
    FencedWindow(terms, 4).save(1_234)
    claim(tmp_path, hold_s=5).release()
    assert terms.terms() == [5]
    assert (terms.latest().leader, terms.latest().next) == (None, 0)
    assert WindowFile(tmp_path).load() == 1_234  # windows stay: the next leader starts above them


def test_while_serving_a_save_answers_at_once_and_saves_in_a_worker_thread(tmp_path):
    terms = Terms(tmp_path)
    terms.claim(Lease(1, 0))
    lost: list[str] = []
    window = OffLoopWindow(FencedWindow(terms, 1), lost.append)

    async def serve() -> tuple[int, int, int]:
        first = window.save(100)  # before serving: saved at once, in this thread
        window.serve()
        asked = window.save(200)  # returns what is on disk; the save goes on in a thread
        await window.settle()
        landed = window.save(150)
        window.serve()
        terms.claim(Lease(2, 1))
        window.save(300)
        await window.settle()
        return first, asked, landed

    assert asyncio.run(serve()) == (100, 100, 200)
    assert lost == ["term 1 is over: a later leader may have loaded the window before this save"]


def test_a_hand_over_during_a_renewal_stands(tmp_path):
    claim(tmp_path, hold_s=5).release()  # handed to member 0

    async def scenario() -> tuple[int, Lease, bool]:
        leader = member(tmp_path, me=0)
        await leader.tick()
        assert leader.oracle() is not None
        renewing = asyncio.create_task(leader.tick())
        await asyncio.sleep(0)  # the renewal is under way in a worker thread
        to = await leader.transfer(None)
        await renewing
        await leader.resign()
        return to, Terms(tmp_path).latest(), leader.oracle() is None

    to, lease, stopped = asyncio.run(scenario())
    assert (to, lease.leader, lease.next, stopped) == (1, None, 1, True)
