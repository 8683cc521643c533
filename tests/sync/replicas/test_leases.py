"""Leases and fencing against a real PostgreSQL server (two LeaseBooks are two replicas), and the share plan with
plain values."""

from __future__ import annotations

import time

import pytest

from sync.bench.postgres import TemporaryPostgres
from sync.errors import LeaseLost
from sync.models import DirectoryUser
from sync.replicas.leases import LeaseBook
from sync.replicas.plan import decide, share
from sync.store import Store


def test_shares_differ_by_at_most_one_and_add_up() -> None:
    for accounts in range(0, 13):
        for n in range(1, 6):
            replicas = [f"r{i}" for i in range(n)]
            shares = [share(accounts, replicas, r) for r in replicas]
            assert sum(shares) == accounts and max(shares) - min(shares) <= 1, (accounts, n, shares)
    assert share(6, [], "me") == 6  # alone (its own heartbeat not seen yet)
    assert share(6, ["a", "b"], "c") == 2  # counted even when missing from the list


def test_decide_releases_above_the_share_and_takes_below_it() -> None:
    assert decide({"a", "b", "c"}, set(), 2) == (["c"], [])
    assert decide({"a"}, {"d", "b", "c"}, 3) == ([], ["b", "c"])
    assert decide({"a", "b"}, {"a", "c"}, 2) == ([], [])  # already at its share; its own leases are not "free"


@pytest.fixture()
def url(postgres: TemporaryPostgres) -> str:
    name = f"leases_{time.monotonic_ns()}"
    u = postgres.create_database(name)
    Store(u).close()  # the schema, with the replicas and leases tables
    return u


def test_a_lease_is_held_renewed_and_taken_over_only_after_it_expired(url: str) -> None:
    a, b = LeaseBook(url, "replica-a", ttl=1.0), LeaseBook(url, "replica-b", ttl=1.0)
    try:
        a.ensure(["contoso"])
        b.ensure(["contoso"])
        first = a.acquire("contoso")
        assert first == 1 and b.acquire("contoso") is None  # held: the other replica cannot take it
        assert a.renew("contoso", first)
        time.sleep(1.3)  # no renewal for longer than the TTL (the server's clock)
        assert not a.renew("contoso", first)  # expired: the holder finds out at its next renewal
        second = b.acquire("contoso")
        assert second == 2  # a new holder, a higher token
        assert not a.renew("contoso", first) and not a.release("contoso", first)
        [lease] = b.leases(["contoso"])
        assert (lease.holder, lease.token) == ("replica-b", 2) and lease.expires_in is not None
        assert b.release("contoso", second)
        assert a.acquire("contoso") == 3  # a released lease is free at once
    finally:
        a.close()
        b.close()


def test_a_replica_that_lost_its_lease_cannot_write_to_the_store(url: str) -> None:
    """Fencing: the paused replica's write is refused in the same transaction, after the new holder took over."""
    a, b = LeaseBook(url, "replica-a", ttl=1.0), LeaseBook(url, "replica-b", ttl=1.0)
    old, new = Store(url), Store(url)
    try:
        a.ensure(["contoso"])
        token_a = a.acquire("contoso")
        assert token_a is not None
        old.fence("contoso", a.id, token_a)
        old.set_delta_link("contoso", "https://graph/delta?token=a")  # accepted while held
        time.sleep(1.3)  # replica a is paused past its TTL
        token_b = b.acquire("contoso")
        assert token_b == token_a + 1
        new.fence("contoso", b.id, token_b)
        new.set_delta_link("contoso", "https://graph/delta?token=b")
        with pytest.raises(LeaseLost, match="no longer holds account contoso"):
            old.upsert_users("contoso", [DirectoryUser("id-1", "a@contoso.com", "A", None, (), (), True, "Member")])
        with pytest.raises(LeaseLost):
            old.set_delta_link("contoso", "https://graph/delta?token=stale")
        assert new.get_delta_link("contoso") == "https://graph/delta?token=b" and new.load_directory("contoso") == []
        new.unfence("contoso")
        with pytest.raises(LeaseLost):  # released or lost: refused until the next lease
            new.set_delta_link("contoso", "x")
    finally:
        old.close()
        new.close()
        a.close()
        b.close()


def test_writes_stop_when_the_lease_may_have_passed_by_the_replicas_own_clock(url: str) -> None:
    """A replica paused past its lease's deadline refuses its own writes before it asks the database, even where
    the database would still accept them (nobody took the lease yet), and a renewal moves the deadline."""
    a = LeaseBook(url, "replica-a", ttl=30.0)
    store = Store(url)
    try:
        a.ensure(["contoso"])
        token = a.acquire("contoso")
        assert token is not None
        store.fence("contoso", a.id, token, time.monotonic() + 0.3)
        store.set_delta_link("contoso", "https://graph/delta?token=1")
        store.check_lease("contoso", "presence.csv")
        time.sleep(0.4)
        with pytest.raises(LeaseLost, match="lease of account contoso .* may have passed"):
            store.set_delta_link("contoso", "https://graph/delta?token=late")
        with pytest.raises(LeaseLost, match="may have passed"):
            store.check_lease("contoso", "presence.csv")
        assert a.renew("contoso", token)
        store.extend("contoso", time.monotonic() + 30)
        store.set_delta_link("contoso", "https://graph/delta?token=2")
        assert store.get_delta_link("contoso") == "https://graph/delta?token=2"
        store.check_lease("other", "presence.csv")  # never fenced: no lease to lose
    finally:
        store.close()
        a.close()


def test_replicas_register_and_leave(url: str) -> None:
    a, b = LeaseBook(url, "replica-a", ttl=1.0), LeaseBook(url, "replica-b", ttl=1.0)
    try:
        a.heartbeat()
        b.heartbeat()
        assert a.live_replicas() == ["replica-a", "replica-b"]
        b.leave()
        assert [r.id for r in a.replicas()] == ["replica-a"] and a.replicas()[0].heartbeat_age < 1.0
        time.sleep(1.2)
        assert a.live_replicas() == []  # no heartbeat within the TTL: not live
        assert a.forget_dead(1.0) == 1
    finally:
        a.close()
        b.close()
