"""The pure parts of metrics, health and alerts, with plain values: endpoint names, readiness reasons, the
incident book (once per incident, once on recovery, kept across restarts), classification, redaction, and the
configuration attributes (MetricsPort, Alerts/@Webhook, ClientSecretExpires)."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from config_support import APP, TENANT, app_account, load, problems_of, write, xml

from sync.config import AccountConfig
from sync.errors import EXIT_USAGE, UsageError
from sync.models import CycleResult
from sync.observe.alerts import parse_command
from sync.observe.endpoints import ENDPOINTS, endpoint_of
from sync.observe.incidents import Alert, IncidentBook, classify
from sync.observe.monitor import FAILING_AFTER, Monitor
from sync.observe.redact import redact
from sync.secrets import KeyStore


@pytest.fixture()
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture()
def keys(state: Path) -> KeyStore:
    return KeyStore(state, env={})


@pytest.mark.parametrize(("url", "name"), [
    ("https://graph.microsoft.com/v1.0/communications/getPresencesByUserId", "presence"),
    ("https://login.microsoftonline.com/t/oauth2/v2.0/token", "token"),
    ("https://login.microsoftonline.com/t/v2.0/.well-known/openid-configuration", "login_discovery"),
    ("https://graph.microsoft.com/v1.0/$batch", "graph_batch"),
    ("https://graph.microsoft.com/v1.0/users/delta?$deltatoken=abc", "users_delta"),
    ("https://graph.microsoft.com/v1.0/users?$filter=x", "users"),
    ("https://graph.microsoft.com/v1.0/domains", "domains"),
    ("https://graph.microsoft.com/v1.0/sites/a,b,c/lists/l/items?$top=5000", "graph_lists"),
    ("https://contoso.sharepoint.com/sites/ucc/_api/contextinfo", "sharepoint_contextinfo"),
    ("https://contoso.sharepoint.com/sites/ucc/_api/$batch", "sharepoint_batch"),
    ("https://contoso.sharepoint.com/sites/ucc/_api/Web/lists/GetByTitle('Agents')/items(3)", "sharepoint_items"),
    ("https://contoso.sharepoint.com/sites/ucc/_api/Web/lists/GetByTitle('Agents')", "sharepoint_other"),
    ("https://example.com/whatever/12345", "other"),
])
def test_endpoint_names_are_a_small_fixed_set(url: str, name: str) -> None:
    assert endpoint_of(url) == name
    assert name in ENDPOINTS


def account(acc_id: str, expires: date | None = None) -> AccountConfig:
    return AccountConfig(id=acc_id, client_id=APP, tenant_id=TENANT, auth="secret", secret_expires=expires)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


def monitor(tmp_path: Path, *accounts: AccountConfig) -> tuple[Monitor, list[Alert], Clock]:
    sent: list[Alert] = []
    clock = Clock()
    book = IncidentBook(tmp_path / "alerts.json", clock=lambda: datetime.fromtimestamp(clock(), UTC))
    return Monitor(accounts, book, interval=5.0, sink=sent.append, clock=clock), sent, clock


def tick(acc: str, error: str | None = None) -> CycleResult:
    return CycleResult(account_id=acc, started_at=datetime.now(UTC), error=error)


def test_readiness_names_each_account_and_why(tmp_path: Path) -> None:
    mon, _, clock = monitor(tmp_path, account("a"), account("b"))
    ready, body = mon.readiness()
    assert not ready
    assert body["accounts"]["a"]["reason"] == "no good cycle since the start at 12:00:00Z"
    clock.now += 1
    mon.cycle_done("a", tick("a"))
    mon.cycle_done("b", tick("b"))
    assert mon.readiness()[0]
    clock.now += 2
    mon.step_failed("b", "SharePoint 429")
    assert mon.readiness()[0]  # one failure within 3 intervals: still ready
    clock.now += 3 * 5.0
    ready, body = mon.readiness()
    assert not ready
    assert body["accounts"]["b"]["reason"] == "no good cycle since 12:00:01Z: SharePoint 429"
    mon.needs_human("a", "account 'a' (tenant t): invalid_grant: AADSTS70008: revoked -> log in again")
    assert body["accounts"]["a"]["ready"] is False
    assert mon.readiness()[1]["accounts"]["a"]["reason"].startswith("login needed: account 'a'")


def test_an_account_failing_five_cycles_is_one_incident_and_one_recovery(tmp_path: Path) -> None:
    mon, sent, _ = monitor(tmp_path, account("a"))
    for n in range(FAILING_AFTER + 3):
        mon.cycle_done("a", tick("a", error=f"3 agent(s) stale: HTTP 503 (#{n})"))
        assert len(sent) == (0 if n < FAILING_AFTER - 1 else 1)
    assert sent[0].kind == "account_failing" and sent[0].state == "open"
    assert "5 failed cycles in a row" in sent[0].message and "#4" in sent[0].message
    mon.cycle_done("a", tick("a"))
    mon.cycle_done("a", tick("a"))
    assert [(a.kind, a.state) for a in sent] == [("account_failing", "open"), ("account_failing", "resolved")]
    assert sent[1].since == sent[0].since


def test_open_incidents_survive_a_restart_and_the_file_is_private(tmp_path: Path) -> None:
    mon, sent, _ = monitor(tmp_path, account("a"))
    mon.needs_human("a", "account 'a': invalid_client: AADSTS7000222: expired -> create a new secret")
    assert [(a.kind, a.state) for a in sent] == [("secret_invalid", "open")]
    assert sent[0].action == "Create a new secret."
    path = tmp_path / "alerts.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    mon2, sent2, _ = monitor(tmp_path, account("a"))  # the next run
    mon2.needs_human("a", "account 'a': invalid_client: AADSTS7000222: expired -> create a new secret")
    assert sent2 == []
    mon2.cycle_done("a", tick("a"))
    assert [(a.kind, a.state) for a in sent2] == [("secret_invalid", "resolved")]
    assert json.loads(path.read_text())["open"] == {}


def test_an_unreadable_book_starts_empty(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "alerts.json").write_text("{not json")
    book = IncidentBook(tmp_path / "alerts.json")
    assert book.open_kinds("a") == {}
    assert "cannot be read" in caplog.text
    assert len(book.open("a", "login_needed", "no login")) == 1


def test_secret_expiring_is_alerted_14_days_ahead_once_and_resolved_by_a_new_date(tmp_path: Path) -> None:
    mon, sent, _ = monitor(tmp_path, account("a", date(2026, 12, 20)), account("b", date(2026, 12, 10)))
    mon.check()
    mon.check()
    assert [(a.account, a.kind) for a in sent] == [("b", "secret_expiring")]
    assert "expires in 9 day(s) (2026-12-10" in sent[0].message
    mon.cycle_done("b", tick("b"))  # a good cycle does not resolve an expiring secret
    assert len(sent) == 1
    later, sent2, _ = monitor(tmp_path, account("b", date(2028, 1, 1)))
    later.check()
    assert [(a.account, a.kind, a.state) for a in sent2] == [("b", "secret_expiring", "resolved")]


@pytest.mark.parametrize(("message", "kind"), [
    ("invalid_client: AADSTS7000215: Invalid client secret provided", "secret_invalid"),
    ("invalid_grant: AADSTS65001: The user or administrator has not consented", "consent_missing"),
    ("invalid_grant: AADSTS70008: the refresh token has expired", "login_needed"),
    ("login_required: no cached login for this account", "login_needed"),
    ("invalid_grant: AADSTS50076: multi-factor authentication -> log in without a human", "needs_human"),
    ("the authority did not answer with an OpenID configuration", "needs_human"),
])
def test_classify(message: str, kind: str) -> None:
    assert classify(message) == kind


def test_alerts_never_carry_a_token_or_secret_parameter(tmp_path: Path) -> None:
    jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig"
    assert "eyJ" not in redact(f"failed with {jwt}")
    assert "s3cr3t" not in redact("POST https://login/t/token?client_secret=s3cr3t&x=1")
    book = IncidentBook(tmp_path / "alerts.json")
    alert = book.open("a", "needs_human", f"Authorization: Bearer {'x' * 40} refused")[0]
    assert "x" * 40 not in json.dumps(alert.body())
    assert alert.body()["text"].startswith("presence-sync: account a: needs a human:")


def test_config_metrics_and_alerts_attributes(tmp_path: Path, state: Path, keys: KeyStore) -> None:
    inner = '\n            <Alerts Webhook="https://hooks.example.com/a"/>'
    acc = app_account(keys, inner=inner).replace('<Account Id="contoso.com"',
                                                 '<Account Id="contoso.com" ClientSecretExpires="2027-03-01"')
    path = write(tmp_path, xml(acc, source='enabled="true" MetricsPort="9464"',
                               extra='\n        <Alerts Webhook="https://hooks.example.com/all"/>'))
    settings, warnings = load(path, state)
    assert warnings == []
    assert (settings.metrics_port, settings.metrics_host) == (9464, "127.0.0.1")
    assert settings.alerts_webhook == "https://hooks.example.com/all"
    (a,) = settings.accounts
    assert (a.secret_expires, a.alerts_webhook) == (date(2027, 3, 1), "https://hooks.example.com/a")
    flagged, _ = load(path, state, overrides={"metrics_port": 9100},
                      env={"PRESENCE_SYNC_METRICS_PORT": "9200", "PRESENCE_SYNC_METRICS_HOST": "0.0.0.0"})
    assert (flagged.metrics_port, flagged.metrics_host) == (9100, "0.0.0.0")


def test_config_metrics_and_alerts_problems(tmp_path: Path, state: Path, keys: KeyStore) -> None:
    inner = '\n            <Alerts Webhook="http://hooks.example.com/a"/>'
    acc = app_account(keys, inner=inner).replace('<Account Id="contoso.com"',
                                                 '<Account Id="contoso.com" ClientSecretExpires="next March"')
    path = write(tmp_path, xml(acc, source='enabled="true" MetricsPort="70000"',
                               extra='\n        <Alerts Webhook="ftp://x"/>'))
    found = {(p.attribute, p.message) for p in problems_of(path, state)}
    assert ("MsGraphPresenceSource/@MetricsPort", "'70000' is not a TCP port (1-65535).") in found
    assert any(a == "Alerts/@Webhook" and "'ftp://x' is not an https URL" in m for a, m in found)
    assert any(a == "Alerts/@Webhook" and "http://hooks.example.com/a" in m for a, m in found)
    assert ("Account/@ClientSecretExpires", "'next March' is not a date.") in found


def test_the_command_is_split_without_a_shell_and_checked_at_start(tmp_path: Path) -> None:
    script = tmp_path / "page me.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert parse_command(f"'{script}' --team 'cc ops' $HOME;rm") == [str(script), "--team", "cc ops", "$HOME;rm"]
    for bad, why in (("'unclosed", "cannot be split"), ("", "is empty"), ("no-such-program-xyz", "no program")):
        with pytest.raises(UsageError) as err:
            parse_command(bad)
        assert why in str(err.value) and err.value.exit_code == EXIT_USAGE
