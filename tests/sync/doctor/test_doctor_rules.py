"""The pure rules of ``doctor``: token claims read without verifying, permissions each mode needs (any permission
that grants the access counts), the fix text, budget headroom, the exit code."""

from __future__ import annotations

import base64
import json

from sync.doctor.rules import (
    FAIL,
    OK,
    WARN,
    AccountReport,
    Budget,
    Row,
    budget_row,
    exit_code,
    granted_from_claims,
    missing_permissions,
    needs_for,
    permission_fix,
    shown_missing,
    token_claims,
)


def jwt(payload: dict[str, object]) -> str:
    def part(d: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
    return f"{part({'typ': 'JWT', 'alg': 'RS256'})}.{part(payload)}.c2lnbmF0dXJl"


def test_token_claims_reads_roles_and_scp_without_verifying() -> None:
    app = token_claims(jwt({"roles": ["Presence.Read.All", "User.Read.All"], "aud": "https://graph.microsoft.com"}))
    assert app is not None and granted_from_claims(app) == ["Presence.Read.All", "User.Read.All"]
    user = token_claims(jwt({"scp": "User.ReadBasic.All Directory.Read.All Presence.Read.All"}))
    assert user is not None and granted_from_claims(user) == ["User.ReadBasic.All", "Directory.Read.All",
                                                              "Presence.Read.All"]
    assert token_claims("eyJ0eXAiOiJFTVUifQ.opaque-random-part") is None
    assert token_claims("a.!!!not-base64!!!.c") is None
    assert token_claims(f"a.{base64.urlsafe_b64encode(b'[1, 2]').decode()}.c") is None


def test_application_needs_and_the_permissions_that_grant_them() -> None:
    needs = needs_for("secret", writeback=True)
    assert [n.name for n in needs] == ["Presence.Read.All", "User.Read.All", "Domain.Read.All", "Sites.Read.All",
                                       "Sites.ReadWrite.All"]
    full = ["Presence.Read.All", "User.Read.All", "Domain.Read.All", "Sites.ReadWrite.All"]
    assert missing_permissions(full, needs) == []
    # Sites.Selected grants list access; Directory.Read.All grants users and domains.
    assert missing_permissions(["presence.read.all", "Directory.Read.All", "Sites.Selected"], needs) == []
    only_read = missing_permissions(["Presence.Read.All", "User.Read.All", "Domain.Read.All", "Sites.Read.All"],
                                    needs)
    assert [n.name for n in only_read] == ["Sites.ReadWrite.All"]
    none = missing_permissions([], needs)
    assert [n.name for n in shown_missing(none)] == ["Presence.Read.All", "User.Read.All", "Domain.Read.All",
                                                     "Sites.ReadWrite.All"]
    assert [n.name for n in needs_for("secret", writeback=False)][-1] == "Sites.Read.All"


def test_delegated_needs_follow_the_readme_table() -> None:
    needs = needs_for("password", writeback=True)
    assert [n.name for n in needs] == ["Presence.Read.All", "User.ReadBasic.All", "Directory.Read.All",
                                       "Sites.Read.All", "Sites.ReadWrite.All"]
    scp = ["User.ReadBasic.All", "Directory.Read.All", "Presence.Read.All", "Sites.ReadWrite.All"]
    assert missing_permissions(scp, needs) == []


def test_permission_fix_names_each_permission_the_kind_and_the_consent_url() -> None:
    needs = needs_for("secret", writeback=True)
    fix = permission_fix("secret", [needs[0]], "https://login/t/adminconsent?client_id=c")
    assert fix.startswith("missing application permission Presence.Read.All: grant it in the app registration")
    assert fix.endswith("admin consent: https://login/t/adminconsent?client_id=c")
    two = permission_fix("device", [needs[0], needs[4]], "U")
    assert two.startswith("missing delegated permissions Presence.Read.All, Sites.ReadWrite.All (or Sites.Selected")
    assert "grant them" in two
    assert permission_fix("secret", [], "U") == ""


def budget(agents: int, interval: float = 5.0, shared: int | None = None, ru: int = 1250) -> Row:
    return budget_row(Budget(agents=agents, shared_agents=agents if shared is None else shared,
                             shared_accounts=1 if shared is None else 2, interval=interval, presence_limit=1500,
                             presence_window=30.0, writeback_interval=60.0, ru_per_minute=ru))


def test_budget_headroom() -> None:
    ok = budget(128)
    assert ok.status == OK and "128 agents need 6 calls per 30 s at --interval 5" in ok.detail
    # 30,000 agents = 47 calls per tick; at 1 s that is 1,410 per 30 s: under the limit, under the pace.
    assert "1,410 calls" in budget(30_000, 1.0, ru=6250).detail
    over = budget(30_000, 0.5, ru=6250)  # 2,820 per 30 s
    assert over.status == FAIL and "raise --interval" in over.fix and "at least 1 s" in over.fix
    shared = budget(3_000, 1.0, shared=40_000, ru=6250)
    assert shared.status == FAIL and "40,000 agents of 2 accounts" in shared.detail
    # Steady write-back beyond the quota: 20,000 agents change ~2,222 items a minute = 4,444 RU + reads.
    sp = budget(20_000, 30.0)
    assert sp.status == FAIL and "ResourceUnitsPerMinute" in sp.fix
    # A first fill longer than two write-back rounds is a warning only.
    fill = budget(2_000, 5.0)
    assert fill.status == WARN and "first write-back fill" in fill.fix


def test_exit_code_is_3_only_when_a_row_failed() -> None:
    good = AccountReport("a", "t", "secret", [Row("reachable", OK, ""), Row("budget", WARN, "", "x")])
    bad = AccountReport("b", "t", "secret", [Row("credential", FAIL, "", "fix")])
    assert exit_code([good]) == 0
    assert exit_code([good, bad]) == 3


def test_renderings_carry_status_detail_and_fix() -> None:
    from rich.console import Console

    from sync.doctor import render_json, render_plain, render_tables

    rep = AccountReport("contoso", "t-1", "secret", [
        Row("reachable", OK, "authority [x] answered"),
        Row("credential", FAIL, "AADSTS7000215: bad", "run `presence-sync encrypt-secret`"),
        Row("permissions", "skipped", "skipped: 'credential works' failed")])
    plain = render_plain([rep]).splitlines()
    assert plain[0] == "account contoso (tenant t-1, application permissions, client secret)"
    assert plain[1] == "  ok      authority and Graph reachable: authority [x] answered"
    assert plain[2] == "  FAIL    credential works: AADSTS7000215: bad"
    assert plain[3] == "          fix: run `presence-sync encrypt-secret`"
    assert plain[-1].startswith("1 check(s) failed")
    console = Console(record=True, width=200, force_terminal=True)
    render_tables(console, [rep])
    table = console.export_text()
    assert "account contoso" in table and "authority [x] answered" in table  # brackets are text, not markup
    assert "presence-sync encrypt-secret" in table and "skipped" in table
    doc = json.loads(render_json([rep]))
    assert doc["exit_code"] == 3
    assert doc["accounts"][0]["checks"][1] == {"check": "credential", "status": "fail",
                                               "detail": "AADSTS7000215: bad",
                                               "fix": "run `presence-sync encrypt-secret`",
                                               "title": "credential works"}
