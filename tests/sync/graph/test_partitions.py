"""The cold start's directory partitions cover every UPN exactly once (pure: the ranges evaluated here)."""

from __future__ import annotations

import re

from sync.graph.directory import UPN_PARTITIONS, upn_partitions
from sync.models import AgentRow, DirectoryUser
from sync.validation import DirectoryIndex, Domains, Validator, resolved_so_far

_CLAUSE = re.compile(r"userPrincipalName (ge|le) '([^']*)'")


def matches(clause: str, upn: str) -> bool:
    value = upn.lower()  # Graph compares UPNs without regard to case
    return all(value >= bound if op == "ge" else value <= bound for op, bound in _CLAUSE.findall(clause))


def test_every_upn_falls_in_exactly_one_partition() -> None:
    parts = upn_partitions()
    assert len(parts) == UPN_PARTITIONS
    samples = ["$admin@contoso.com", "_svc@contoso.com", "'o'neil@contoso.com", "0day@contoso.com",
               "9lives@contoso.com", "Adele.Vance@contoso.com", "a@contoso.com", "b@contoso.com", "m@contoso.com",
               "z@contoso.com", "zz.top@contoso.com", "~tilde@contoso.com", "émile@contoso.com",
               "ünal@contoso.com", "{x}@contoso.com", "0@contoso.com", "a_contoso.com#EXT#@contoso.onmicrosoft.com"]
    for upn in samples:
        hits = [c for c in parts if matches(c, upn)]
        assert len(hits) == 1, (upn, hits)


def test_agents_already_in_a_partial_directory_are_judged_as_the_full_validation_will() -> None:
    users = [DirectoryUser(id=f"00000000-0000-4000-8000-00000000000{i}", upn=f"user{i}@contoso.com",
                           display_name=f"User {i}", mail=None, proxy_addresses=(), im_addresses=(),
                           account_enabled=i != 2, user_type="Member") for i in range(1, 4)]
    domains = Domains(frozenset({"contoso.com"}))
    rows = [AgentRow(1, " user1@contoso.com"), AgentRow(2, "user2@contoso.com"), AgentRow(3, "user3@contoso.com"),
            AgentRow(4, "nobody@contoso.com")]
    partial = DirectoryIndex.build(users[:2])  # user3 not read yet
    memo: dict = {}
    found = resolved_so_far(rows, domains, partial, memo)
    assert [r.item_id for r in found] == [1, 2]  # 3 and 4 are left out, not condemned
    full = {r.item_id: r for r in Validator(domains, DirectoryIndex.build(users)).validate(rows)}
    assert all(r == full[r.item_id] for r in found)  # the same verdicts, WHITESPACE and DISABLED included
    partial.add(users[2:])
    assert [r.item_id for r in resolved_so_far(rows, domains, partial, memo)] == [1, 2, 3]
