"""What `presence-sync status` shows: the replicas (heartbeat age) and each account's holder, token and expiry."""

from __future__ import annotations

from typing import Any

from sync.store import Store

from .leases import DEFAULT_TTL, LeaseBook

__all__ = ["replica_status"]


def replica_status(url: str, ttl: float = DEFAULT_TTL) -> dict[str, Any]:
    """``{"store", "replicas": [...], "accounts": [...]}`` as plain values (the schema is brought forward first)."""
    with Store(url) as store:
        where = store.where
    book = LeaseBook(url, "status", ttl=ttl)
    try:
        replicas, leases = book.replicas(), book.leases()
    finally:
        book.close()
    held: dict[str, int] = {}
    for lease in leases:
        if lease.holder is not None and (lease.expires_in or 0) > 0:
            held[lease.holder] = held.get(lease.holder, 0) + 1
    return {
        "store": where,
        "replicas": [{"id": r.id, "host": r.host, "pid": r.pid, "started_at": r.started_at.isoformat(),
                      "heartbeat_age_s": round(r.heartbeat_age, 3), "live": r.heartbeat_age < ttl,
                      "accounts": held.get(r.id, 0)} for r in replicas],
        "accounts": [{"account": ls.account, "holder": ls.holder if (ls.expires_in or 0) > 0 else None,
                      "token": ls.token, "expires_in_s": round(ls.expires_in, 3) if ls.expires_in is not None else None,
                      "changed_at": ls.changed_at.isoformat() if ls.changed_at else None} for ls in leases],
    }
