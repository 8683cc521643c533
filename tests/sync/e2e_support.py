"""Helpers for the end-to-end tests of the job against the local tenant (imported through tests/sync/conftest.py).

Configs are written the way an operator writes them (config.xml with EncryptedSecret / EncryptedPassword made by
the state directory's key); the job runs either in-process (``sync.job.run_job``) or as the real CLI in a
subprocess. Every subprocess output and every folder a run wrote is remembered in ``ARTIFACTS`` so the secret-leak
test can read them all at the end of the session.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import httpx

from sync.secrets import KeyStore

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("presence-sync"))

CONTOSO_TENANT = "6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"
FABRIKAM_TENANT = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
CONTOSO_APP = "11111111-2222-4333-8444-555555555555"
CONTOSO_APP_SECRET = "contoso-app-secret-value"
CONTOSO_APP_SECRET_ID = "a1b2c3d4-0000-4000-8000-00000000a001"
CONTOSO_EXPIRED_APP = "11111111-2222-4333-8444-555555555556"
CONTOSO_EXPIRED_SECRET = "contoso-expired-secret"
CONTOSO_PUBLIC_APP = "22222222-3333-4444-8555-666666666666"
CONTOSO_UNCONSENTED_APP = "22222222-3333-4444-8555-666666666667"
CONTOSO_SVC = ("svc-presence@contoso.com", "Pr3sence-Sync!2026")
CONTOSO_MFA = ("svc-mfa@contoso.com", "Mfa-Required!2026")
FABRIKAM_PUBLIC_APP = "44444444-5555-4666-8777-888888888888"
FABRIKAM_SVC = ("svc-presence@fabrikam.com", "Fabrikam-Svc!2026")

PRESENCE_COLUMNS = ["account_id", "agent_item_id", "upn", "user_id", "display_name", "availability", "activity",
                    "status_message", "out_of_office", "observed_at_utc"]
HISTORY_COLUMNS = ["account_id", "upn", "user_id", "from_availability", "from_activity", "to_availability",
                   "to_activity", "changed_at_utc"]
VALIDATION_COLUMNS = ["account_id", "agent_item_id", "raw_upn", "normalized_upn", "status", "codes", "severity",
                      "suggestion"]
# Emulator stats endpoints that change the Agent list (Graph list route and SharePoint REST).
WRITE_ENDPOINTS = ("graph.listitem.update", "sharepoint.item.update", "sharepoint.batch", "sharepoint.items.add",
                   "graph.listitem.create")
CYCLE_MARK = ": agents="  # the per-cycle INFO line: "account X: agents=... valid=..."


@dataclass
class Artifacts:
    """What the session's runs produced: folders to scan and captured process output."""

    dirs: list[Path] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def add_dir(self, *paths: Path) -> None:
        self.dirs.extend(p for p in paths if p not in self.dirs)

    def add_output(self, *texts: str) -> None:
        self.outputs.extend(texts)


ARTIFACTS = Artifacts()


# --- config.xml -------------------------------------------------------------------------------------------------


@dataclass
class Account:
    """One <Account> element; auth is chosen by what is set, exactly as the operator's config says."""

    id: str
    tenant: str  # emulator tenant name: contoso | fabrikam
    client_id: str
    secret: str | None = None
    username: str | None = None
    password: str | None = None


def account_xml(acc: Account, keys: KeyStore, info: dict[str, Any]) -> str:
    t = next(x for x in info["tenants"] if x["name"] == acc.tenant)
    attrs = [f"Id={quoteattr(acc.id)}", f'TenantId="{t["tenant_id"]}"', f'ClientId="{acc.client_id}"',
             f'AuthorityHost="{info["base_url"]}"', f'GraphUrl="{info["base_url"]}"']
    if acc.secret is not None:
        attrs.append(f'EncryptedSecret="{keys.encrypt(acc.secret)}"')
    if acc.username is not None:
        attrs.append(f"Username={quoteattr(acc.username)}")
    if acc.password is not None:
        attrs.append(f'EncryptedPassword="{keys.encrypt(acc.password)}"')
    agent_list = (f'<AgentList SiteUrl={quoteattr(t["site_url"])} List={quoteattr(t["list_title"])} '
                  f'UpnColumn={quoteattr(t["upn_column"])}/>')
    return f"      <Account {' '.join(attrs)}>\n        {agent_list}\n      </Account>"


def write_config(path: Path, accounts: Sequence[Account], info: dict[str, Any], ca_file: Path, state_dir: Path,
                 source_attrs: str = "") -> Path:
    """A config.xml for the local tenant; secrets encrypted with the key in ``state_dir``."""
    keys = KeyStore(state_dir, env={})
    body = "\n".join(account_xml(a, keys, info) for a in accounts)
    xml = ('<?xml version="1.0" encoding="utf-8"?>\n<Configuration>\n  <PresenceProvider>\n'
           f'    <MsGraphPresenceSource enabled="true" CaBundle={quoteattr(str(ca_file))} {source_attrs}>\n'
           f"    <Accounts>\n{body}\n    </Accounts>\n    </MsGraphPresenceSource>\n"
           "  </PresenceProvider>\n</Configuration>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(xml, encoding="utf-8")
    return path


# --- the CLI in a subprocess --------------------------------------------------------------------------------------


def cli_env() -> dict[str, str]:
    """The caller's environment without any PRESENCE_SYNC_* setting (the test's flags decide); wide enough that
    rich does not wrap printed lines."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCE_SYNC_")}
    env["COLUMNS"] = "400"
    return env


def run_cli(args: Sequence[str], cwd: Path, timeout: float = 60.0,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([CLI, *args], cwd=cwd, env={**cli_env(), **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)
    ARTIFACTS.add_output(proc.stdout, proc.stderr)
    return proc


class Running:
    """A CLI process whose stderr/stdout lines are collected by threads while the test drives it."""

    def __init__(self, args: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([CLI, *args], cwd=cwd, env={**cli_env(), **(env or {})}, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines: list[str] = []
        self.stdout: list[str] = []
        self._cond = threading.Condition()
        self._threads = [threading.Thread(target=self._pump, args=(self.proc.stderr, self.lines), daemon=True),
                         threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout), daemon=True)]
        for t in self._threads:
            t.start()

    def _pump(self, stream: Any, sink: list[str]) -> None:
        for line in stream:
            with self._cond:
                sink.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[list[str]], bool], timeout: float) -> bool:
        """Wait until ``pred(all lines so far)`` holds (True) or the process ended / time ran out (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self.lines + self.stdout):
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not any(t.is_alive() for t in self._threads)):
                    return pred(self.lines + self.stdout)
                self._cond.wait(min(left, 0.2))
            return True

    def cycle_lines(self, account: str | None = None) -> list[str]:
        with self._cond:
            return [ln for ln in self.lines if CYCLE_MARK in ln and (account is None or f"account {account}:" in ln)]

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        self.proc.send_signal(sig)
        return self.finish(timeout)

    def finish(self, timeout: float = 15.0) -> int:
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            for t in self._threads:
                t.join(5)
            ARTIFACTS.add_output("\n".join(self.lines), "\n".join(self.stdout))
        return code

    @property
    def text(self) -> str:
        return "\n".join(self.lines + self.stdout)

    @property
    def flat(self) -> str:
        """All output with whitespace runs folded to one space (printed text may wrap)."""
        return " ".join(self.text.split())


# --- outputs -------------------------------------------------------------------------------------------------


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def assert_leading_columns(path: Path, expected: list[str]) -> list[dict[str, str]]:
    header, rows = read_csv(path)
    assert header[: len(expected)] == expected, f"{path.name}: header {header} does not start with {expected}"
    return rows


# --- the tenant's side ---------------------------------------------------------------------------------------


def list_fields(emulator: Any, tenant: str) -> dict[int, dict[str, Any]]:
    """A copy of every Agent-list item's fields, straight from the emulator's state."""
    t = emulator.state.world.resolve_tenant(tenant)
    lst = t.site.list_by_title("Agents")
    return {i: dict(item.fields) for i, item in lst.items.items()}


def write_requests(stats: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in stats["requests"].items() if k in WRITE_ENDPOINTS and v}


def known_secrets(info: dict[str, Any], emulator: Any) -> set[str]:
    """Client secrets, passwords and every access/refresh token the tenant has issued so far."""
    out: set[str] = set()
    for t in info["tenants"]:
        out.update(a["client_secret"] for a in t["apps"] if a.get("client_secret"))
        out.update(s["password"] for s in t["service_accounts"])
    tokens = emulator.state.tokens
    out.update(getattr(tokens, "_access", {}).keys())
    out.update(getattr(tokens, "_refresh", {}).keys())
    return {s for s in out if len(s) >= 8}


def leaks(secrets: Iterable[str], files: Iterable[Path], texts: Iterable[str]) -> list[str]:
    """Where any secret appears in clear: 'file: <secret prefix>...' lines (the secret itself is not repeated)."""
    found: list[str] = []
    needles = [(s, s.encode()) for s in secrets]
    for f in files:
        data = f.read_bytes()
        found += [f"{f}: {s[:6]}..." for s, b in needles if b in data]
    for n, text in enumerate(texts):
        found += [f"process output #{n}: {s[:6]}..." for s, _ in needles if s in text]
    return found


def control(base_url: str, ca_file: Path) -> httpx.Client:
    import ssl

    return httpx.Client(base_url=base_url, verify=ssl.create_default_context(cafile=str(ca_file)), timeout=30)


def contoso_app_run(tmp: Path, info: dict[str, Any], ca_file: Path) -> tuple[list[str], Path, Path]:
    """`run --once` args for contoso alone with application permissions; returns (args, state dir, out dir)."""
    state, out = tmp / "state", tmp / "out"
    config = write_config(tmp / "config.xml", [Account("contoso", "contoso", CONTOSO_APP, secret=CONTOSO_APP_SECRET)],
                          info, ca_file, state)
    ARTIFACTS.add_dir(state, out)
    return ["run", "--config", str(config), "--state-dir", str(state), "--out", str(out), "--once"], state, out


def device_and_password(tmp: Path, info: dict[str, Any], emulator: Any) -> tuple[Path, Path, Path]:
    """contoso-dc: delegated with neither secret nor password (device code); fabrikam: username/password."""
    state, out = tmp / "state", tmp / "out"
    config = write_config(tmp / "config.xml", [
        Account("contoso-dc", "contoso", CONTOSO_PUBLIC_APP),
        Account("fabrikam", "fabrikam", FABRIKAM_PUBLIC_APP, username=FABRIKAM_SVC[0],
                    password=FABRIKAM_SVC[1]),
    ], info, emulator.tls.ca_cert, state)
    ARTIFACTS.add_dir(state, out)
    return config, state, out


def both_tenants(tmp: Path, info: dict[str, Any], emulator: Any) -> tuple[Path, Path, Path]:
    """contoso with application permissions (encrypted client secret), fabrikam delegated (username/password)."""
    state, out = tmp / "state", tmp / "out"
    config = write_config(tmp / "config.xml", [
        Account("contoso", "contoso", CONTOSO_APP, secret=CONTOSO_APP_SECRET),
        Account("fabrikam", "fabrikam", FABRIKAM_PUBLIC_APP, username=FABRIKAM_SVC[0],
                    password=FABRIKAM_SVC[1]),
    ], info, emulator.tls.ca_cert, state)
    ARTIFACTS.add_dir(state, out)
    return config, state, out
