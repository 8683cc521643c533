"""Alerts when a human is needed, end to end: the job against the local tenant, a webhook receiver on 127.0.0.1
and an --on-needs-human script that records what it gets. Each incident is alerted once and its end once, across
restarts (the state directory remembers what was sent); no secret or token is ever in an alert."""

from __future__ import annotations

import json
import re
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import e2e_support as sup
import httpx
import pytest
from metrics_support import free_port, wait_http

from sync.emulator.server import EmulatorServer

RECORDER = """
import json, os, sys
env = {k: v for k, v in os.environ.items() if k.startswith("PRESENCE_SYNC_")}
with open(sys.argv[1], "a", encoding="utf-8") as f:
    f.write(json.dumps({"env": env, "stdin": json.loads(sys.stdin.read())}) + "\\n")
"""
NEEDS_LOGIN = re.compile(r"Graph API needs authentication for account with ID 'contoso-dc' \(tenant: [^)]+\)\. "
                         r"Please login on \S+ with code (?P<code>[A-Z0-9-]+)")


class Receiver:
    """A webhook on 127.0.0.1 that keeps every JSON body it accepts; the very first POST gets a 503 (retried)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.refused = 0
        self._cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer._cond:
                    if outer.refused == 0:
                        outer.refused += 1
                        self.send_response(503)
                        self.send_header("Retry-After", "0.2")
                        self.end_headers()
                        return
                    outer.bodies.append(json.loads(data))
                    outer._cond.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?key=webhook-url-key"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self.bodies):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))
            return True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def with_alerts(config: Path, webhook: str, extra: dict[str, str] | None = None) -> Path:
    """Add <Alerts Webhook=...> to the presence source, and attributes to named Accounts."""
    text = config.read_text(encoding="utf-8").replace("    <Accounts>", f'    <Alerts Webhook="{webhook}"/>\n'
                                                                          "    <Accounts>", 1)
    for account, attrs in (extra or {}).items():
        text = text.replace(f'<Account Id="{account}" ', f'<Account Id="{account}" {attrs} ', 1)
    config.write_text(text, encoding="utf-8")
    return config


def recorder(tmp: Path) -> tuple[str, Path]:
    script, record = tmp / "record.py", tmp / "alerts.jsonl"
    script.write_text(RECORDER, encoding="utf-8")
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {shlex.quote(str(record))}", record


def recorded(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def assert_no_secrets(tenant_info: dict[str, Any], emulator: EmulatorServer, *texts: str) -> None:
    found = sup.leaks(sup.known_secrets(tenant_info, emulator), [], texts)
    assert not found, found
    assert not any(re.search(r"eyJ[\w-]{8,}\.|0\.EMU\.", t) for t in texts)


def kinds(bodies: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(b["account"], b["kind"], b["state"]) for b in bodies]


def test_lost_login_alerts_once_and_readyz_names_the_account(
        tmp_path: Path, emulator: EmulatorServer, tenant_info: dict[str, Any], ctl: httpx.Client,
        receiver: Receiver) -> None:
    config, state, out = sup.device_and_password(tmp_path, tenant_info, emulator)
    with_alerts(config, receiver.url)
    command, record = recorder(tmp_path)
    port = free_port()
    run = sup.Running(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out),
                       "--interval", "0.5", "--metrics-port", str(port), "--on-needs-human", command], cwd=tmp_path)
    metrics = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def approve(seen: int) -> None:
        assert run.wait_for(lambda lines: len(NEEDS_LOGIN.findall("\n".join(lines))) > seen, 30), run.text
        code = NEEDS_LOGIN.findall(run.text)[seen]
        r = ctl.post("/_emulator/devicecode/approve", json={"user_code": code, "upn": sup.CONTOSO_SVC[0]})
        assert r.status_code == 200, r.text

    def unready_for_login() -> httpx.Response:
        deadline = time.monotonic() + 30
        while True:
            r = metrics.get("/readyz")
            reason = r.json()["accounts"]["contoso-dc"].get("reason", "")
            if r.status_code == 503 and "login" in reason or time.monotonic() > deadline:
                return r
            time.sleep(0.2)

    try:
        # No login yet: alerted once, and not ready.
        assert receiver.wait(lambda b: len(b) >= 1, 30), run.text
        r = unready_for_login()
        assert r.status_code == 503 and "login needed" in r.json()["accounts"]["contoso-dc"]["reason"], r.text
        approve(0)
        assert receiver.wait(lambda b: len(b) >= 2, 30), (receiver.bodies, run.text)
        assert wait_http(metrics, "/readyz", 200, 30).status_code == 200

        # The login dies: readiness names the account and why, one alert, then one recovery.
        ctl.post("/_emulator/tokens/revoke", json={"client_id": sup.CONTOSO_PUBLIC_APP})
        r = unready_for_login()
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["ready"] is False and body["accounts"]["fabrikam"]["ready"] is True, body
        assert "login" in body["accounts"]["contoso-dc"]["reason"], body
        scrape = metrics.get("/metrics").text
        assert 'presence_sync_needs_human{account="contoso-dc"} 1.0' in scrape
        assert receiver.wait(lambda b: len(b) >= 3, 30), (receiver.bodies, run.text)
        approve(1)
        assert receiver.wait(lambda b: len(b) >= 4, 30), (receiver.bodies, run.text)
        assert wait_http(metrics, "/readyz", 200, 30).status_code == 200
        time.sleep(1.5)  # a few more ticks: nothing more to say
    finally:
        metrics.close()
        rc = run.terminate(signal.SIGTERM)
    assert rc == 0, run.text
    assert "Traceback" not in run.text
    expected = [("contoso-dc", "login_needed", "open"), ("contoso-dc", "login_needed", "resolved")] * 2
    assert kinds(receiver.bodies) == expected, receiver.bodies
    assert receiver.refused == 1  # the first POST was refused and sent again
    first = receiver.bodies[0]
    assert first["text"].startswith("presence-sync: account contoso-dc: login needed")
    assert "presence-sync login --account contoso-dc" in first["action"]
    assert datetime.fromisoformat(first["since"].replace("Z", "+00:00")) <= datetime.now(UTC)
    calls = recorded(record)
    assert [c["stdin"] for c in calls] == receiver.bodies
    for call in calls:
        env = call["env"]
        assert (env["PRESENCE_SYNC_ACCOUNT"], env["PRESENCE_SYNC_KIND"], env["PRESENCE_SYNC_STATE"]) == \
            (call["stdin"]["account"], call["stdin"]["kind"], call["stdin"]["state"])
        assert env["PRESENCE_SYNC_MESSAGE"] == call["stdin"]["message"]
    assert_no_secrets(tenant_info, emulator, json.dumps(receiver.bodies), record.read_text(encoding="utf-8"))


def test_each_incident_alerted_once_across_restarts(tmp_path: Path, emulator: EmulatorServer,
                                                     tenant_info: dict[str, Any], ctl: httpx.Client,
                                                     receiver: Receiver) -> None:
    state, out = tmp_path / "state", tmp_path / "out"
    soon = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()

    def config(fixed: bool) -> Path:
        expired = (sup.Account("expired", "contoso", sup.CONTOSO_APP, secret=sup.CONTOSO_APP_SECRET) if fixed
                   else sup.Account("expired", "contoso", sup.CONTOSO_EXPIRED_APP, secret=sup.CONTOSO_EXPIRED_SECRET))
        path = sup.write_config(tmp_path / "config.xml", [
            expired,
            sup.Account("no-consent", "contoso", sup.CONTOSO_UNCONSENTED_APP, username=sup.CONTOSO_SVC[0],
                        password=sup.CONTOSO_SVC[1]),
            sup.Account("contoso", "contoso", sup.CONTOSO_APP, secret=sup.CONTOSO_APP_SECRET),
        ], tenant_info, emulator.tls.ca_cert, state)
        return with_alerts(path, receiver.url,
                           {"contoso": f'ClientSecretExpires="{"2099-01-01" if fixed else soon}"'})

    sup.ARTIFACTS.add_dir(state, out)
    command, record = recorder(tmp_path)
    base = ["run", "--config", str(config(False)), "--state-dir", str(state), "--out", str(out),
            "--on-needs-human", command]
    run = sup.Running([*base, "--interval", "0.5"], cwd=tmp_path)
    try:
        assert receiver.wait(lambda b: len(b) >= 3, 60), (receiver.bodies, run.text)
        # The failing accounts are retried at every wake-up: still one alert each.
        assert run.wait_for(lambda _: len(run.cycle_lines("contoso")) >= 6, 60), run.text
    finally:
        rc = run.terminate(signal.SIGTERM)
    assert rc == 0, run.text
    assert sorted(kinds(receiver.bodies)) == [("contoso", "secret_expiring", "open"),
                                              ("expired", "secret_invalid", "open"),
                                              ("no-consent", "consent_missing", "open")], receiver.bodies
    by_account = {b["account"]: b for b in receiver.bodies}
    assert "AADSTS7000222" in by_account["expired"]["message"]
    assert "admin consent" in by_account["no-consent"]["message"] + by_account["no-consent"]["action"]
    assert soon in by_account["contoso"]["message"]
    assert len(recorded(record)) == 3

    # A restart with the same trouble: nothing new (the state directory remembers what was sent).
    again = sup.run_cli([*base, "--once"], cwd=tmp_path)
    assert again.returncode == 3, again.stderr
    assert len(receiver.bodies) == 3, receiver.bodies

    # Fixed: the right secret, a new expiry date: one "resolved" each, the consent still missing.
    base[2] = str(config(True))
    fixed = sup.run_cli([*base, "--once"], cwd=tmp_path)
    assert fixed.returncode == 3, fixed.stderr
    assert receiver.wait(lambda b: len(b) >= 5, 10), receiver.bodies
    assert sorted(kinds(receiver.bodies[3:])) == [("contoso", "secret_expiring", "resolved"),
                                                  ("expired", "secret_invalid", "resolved")]
    assert len(recorded(record)) == 5
    opened = json.loads((state / "alerts.json").read_text(encoding="utf-8"))["open"]
    assert list(opened) == ["no-consent"] and list(opened["no-consent"]) == ["consent_missing"]
    assert_no_secrets(tenant_info, emulator, json.dumps(receiver.bodies), record.read_text(encoding="utf-8"),
                      run.text, again.stderr, fixed.stderr)
    assert "webhook-url-key" not in run.text + again.stderr + fixed.stderr


def test_five_failed_ticks_in_a_row_alert_once_and_a_good_tick_resolves_it(
        tmp_path: Path, emulator: EmulatorServer, tenant_info: dict[str, Any], ctl: httpx.Client,
        receiver: Receiver) -> None:
    """Every presence call of the account fails (5xx) for a while: one "account failing" alert after the fifth
    failed tick, none for the ticks after it, one "resolved" once a tick reads presence again."""
    state, out = tmp_path / "state", tmp_path / "out"
    config = with_alerts(sup.write_config(tmp_path / "config.xml", [
        sup.Account("contoso", "contoso", sup.CONTOSO_APP, secret=sup.CONTOSO_APP_SECRET)],
        tenant_info, emulator.tls.ca_cert, state), receiver.url)
    run = sup.Running(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out),
                       "--interval", "0.5"], cwd=tmp_path)
    try:
        assert run.wait_for(lambda _: len(run.cycle_lines("contoso")) >= 2, 60), run.text
        ctl.post("/_emulator/faults", json={"replace": True, "error_rate": 1.0, "paths": ["/v1.0/communications"]})
        assert receiver.wait(lambda b: ("contoso", "account_failing", "open") in kinds(b), 30), (receiver.bodies,
                                                                                              run.text)
        failing = len(run.cycle_lines("contoso"))
        assert run.wait_for(lambda _: len(run.cycle_lines("contoso")) >= failing + 3, 30), run.text
        ctl.post("/_emulator/faults", json={"reset": True})
        assert receiver.wait(lambda b: ("contoso", "account_failing", "resolved") in kinds(b), 30), (receiver.bodies,
                                                                                                  run.text)
    finally:
        ctl.post("/_emulator/faults", json={"reset": True})
        rc = run.terminate(signal.SIGTERM)
    assert rc == 0, run.text
    assert kinds(receiver.bodies) == [("contoso", "account_failing", "open"),
                                      ("contoso", "account_failing", "resolved")], receiver.bodies
    opened = receiver.bodies[0]
    assert "5 failed cycles in a row" in opened["message"] and "HTTP 50" in opened["message"], opened
    assert_no_secrets(tenant_info, emulator, json.dumps(receiver.bodies), run.text)
