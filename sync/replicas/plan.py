"""How live replicas share the accounts: pure functions of plain values (no database, no clock).

Every replica reads the same replica list from the database and ranks it the same way, so each computes the same
shares: ``accounts // replicas`` each, one more for the first ``accounts % replicas`` replicas by id. Shares differ
by at most one, and add up to the number of accounts. A replica above its share releases accounts (after their
writes), one below takes free or expired ones, so after any change in the set of replicas the spread is even
again within a few renewals.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

__all__ = ["decide", "share"]


def share(accounts: int, replicas: Sequence[str], me: str) -> int:
    """How many of ``accounts`` replica ``me`` should hold while ``replicas`` (``me`` counted in any case) live."""
    ranked = sorted({*replicas, me})
    base, extra = divmod(max(0, accounts), len(ranked))
    return base + (1 if ranked.index(me) < extra else 0)


def decide(held: Collection[str], free: Collection[str], quota: int) -> tuple[list[str], list[str]]:
    """(accounts to release, accounts to take) for a replica holding ``held`` with a share of ``quota``, when
    ``free`` accounts have no live lease. Deterministic: the last held by name go, the first free by name come."""
    mine = sorted(held)
    if len(mine) > quota:
        return mine[quota:], []
    return [], sorted(a for a in free if a not in held)[: quota - len(mine)]
