"""``presence-sync`` as a user runs it: a subprocess per command, against the session's local tenant.

Runs that reach the tenant use ``--dry-run`` or ``--roster FILE.csv`` so the shared tenant's Agent lists are
never written to by these tests (write-back is the end-to-end tests' business).
"""

from __future__ import annotations

import csv
import json
import os
import queue
import re
import ssl
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from sync.demo import write_demo_config
from sync.emulator.server import EmulatorServer
from sync.outputs.csv import CYCLE_COLUMNS, HISTORY_COLUMNS, SNAPSHOT_COLUMNS, VALIDATION_COLUMNS
from sync.secrets import KeyStore

COMMANDS = ("run", "validate", "export", "login", "encrypt-secret", "emulator", "demo")
_SCRIPT = Path(sys.executable).with_name("presence-sync")
BASE_CMD = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "sync.cli"]
# Values that must never show up in any output (fixture secrets, a development secret in the environment).
CONTOSO_SECRET = "contoso-app-secret-value"
FABRIKAM_PASSWORD = "Fabrikam-Svc!2026"
ENV_SECRET = "env-dev-secret-Zq81"
TOKEN_SHAPES = re.compile(r"eyJ[\w-]{8,}\.|0\.EMU\.|(?i:bearer)\s+\S{16,}")

GOOD_TENANT = "6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"
GOOD_CLIENT = "11111111-2222-4333-8444-555555555555"


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """The user's environment without our variables, with a private HOME (the default state dir lives there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCE_SYNC_")}
    env.update(HOME=str(home), XDG_STATE_HOME=str(home / "xdg-state"), COLUMNS="120", **extra)
    return env


def cli(*args: str, cwd: Path, stdin: str | bytes | None = None, env: dict[str, str] | None = None,
        timeout: float = 20) -> subprocess.CompletedProcess[str]:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    proc = subprocess.run([*BASE_CMD, *args], cwd=cwd, input=data if data is not None else b"",
                          capture_output=True, timeout=timeout, env=env or cli_env(cwd))
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode("utf-8", "replace"),
                                       proc.stderr.decode("utf-8", "replace"))


def assert_clean(proc: subprocess.CompletedProcess[str]) -> None:
    """No traceback and nothing secret in either stream."""
    both = proc.stdout + proc.stderr
    assert "Traceback" not in both, both
    for value in (CONTOSO_SECRET, FABRIKAM_PASSWORD, ENV_SECRET):
        assert value not in both
    assert not TOKEN_SHAPES.search(both), TOKEN_SHAPES.search(both)


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


# --- a config for the session's local tenant ---------------------------------------------------------------------


@dataclass
class Setup:
    root: Path
    config: Path
    state: Path
    keys: KeyStore


@pytest.fixture(scope="module")
def cfg(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """config.xml for contoso (client secret) and fabrikam (username + password), as ``presence-sync demo`` writes."""
    root = tmp_path_factory.mktemp("cli")
    state = root / "state"
    ctx = ssl.create_default_context(cafile=str(emulator.tls.ca_cert))
    info = httpx.get(f"{emulator.base_url}/_emulator/info", verify=ctx, timeout=10).json()
    keys = KeyStore(state, env={})
    config = write_demo_config(info, keys, emulator.tls.ca_cert, root / "config.xml")
    return Setup(root, config, state, keys)


@dataclass
class Ran:
    proc: subprocess.CompletedProcess[str]
    out: Path
    started: datetime


@pytest.fixture(scope="module")
def ran(cfg: Setup) -> Ran:
    """One ``run --once --dry-run`` of both accounts (the store and CSVs later tests read)."""
    started = datetime.now(UTC)
    out = cfg.root / "out"
    proc = cli("run", "--once", "--dry-run", "--config", str(cfg.config), "--state-dir", str(cfg.state),
               "--out", str(out), cwd=cfg.root)
    return Ran(proc, out, started)


# --- help ---------------------------------------------------------------------------------------------------------


def test_help_lists_every_command(tmp_path: Path) -> None:
    proc = cli("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in COMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\s", proc.stdout, re.M), name
    assert "Exit codes" in proc.stdout
    assert_clean(proc)


def test_no_arguments_shows_help(tmp_path: Path) -> None:
    proc = cli(cwd=tmp_path)
    assert "Usage" in proc.stdout + proc.stderr
    assert "run" in proc.stdout + proc.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_help_has_an_example_and_no_secret(command: str, tmp_path: Path, cfg: Setup) -> None:
    # A development secret and a config holding encrypted values are both in reach; help must show neither.
    (tmp_path / "config.xml").write_bytes(cfg.config.read_bytes())
    env = cli_env(tmp_path, PRESENCE_SYNC_SECRET__CONTOSO=ENV_SECRET, PRESENCE_SYNC_STATE_DIR=str(cfg.state))
    proc = cli(command, "--help", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"\bexample:", proc.stdout, re.I), proc.stdout
    assert "ps1:" not in proc.stdout
    assert_clean(proc)


def test_unknown_command_and_option_are_usage_errors(tmp_path: Path) -> None:
    for args in (("frobnicate",), ("run", "--no-such-option")):
        proc = cli(*args, cwd=tmp_path)
        assert proc.returncode == 2, args
        assert_clean(proc)


# --- encrypt-secret -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stdin", "secret"), [
    ("s3cret-value\n", "s3cret-value"),
    ("s3cret-value\r\n", "s3cret-value"),
    ("s3cret-value", "s3cret-value"),
    ("two words ÄÖ~.\n", "two words ÄÖ~."),
])
def test_encrypt_secret_strips_one_trailing_newline(stdin: str, secret: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = cli("encrypt-secret", "--state-dir", str(state), cwd=tmp_path, stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert token.startswith("ps1:") and "\n" not in token
    assert secret not in proc.stdout + proc.stderr
    assert KeyStore(state, env={}).decrypt(token) == secret


def test_encrypt_secret_creates_a_private_key(tmp_path: Path) -> None:
    state = tmp_path / "deep" / "state"
    proc = cli("encrypt-secret", "--state-dir", str(state), cwd=tmp_path, stdin="x")
    assert proc.returncode == 0, proc.stderr
    key = state / "secret.key"
    assert key.is_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) & 0o077 == 0
    # The same state dir keeps the same key.
    again = cli("encrypt-secret", "--state-dir", str(state), cwd=tmp_path, stdin="y").stdout.strip()
    assert KeyStore(state, env={}).decrypt(again) == "y"


def test_encrypt_secret_default_state_dir_is_under_home(tmp_path: Path) -> None:
    proc = cli("encrypt-secret", cwd=tmp_path, stdin="abc\n")
    assert proc.returncode == 0, proc.stderr
    state = tmp_path / "xdg-state" / "presence-sync"
    assert KeyStore(state, env={}).decrypt(proc.stdout.strip()) == "abc"


@pytest.mark.parametrize("stdin", ["", "\n", "\r\n"])
def test_encrypt_secret_refuses_empty_input(stdin: str, tmp_path: Path) -> None:
    proc = cli("encrypt-secret", "--state-dir", str(tmp_path / "state"), cwd=tmp_path, stdin=stdin)
    assert proc.returncode == 2
    assert "nothing to encrypt" in proc.stderr
    assert proc.stdout.strip() == ""
    assert_clean(proc)


def test_encrypt_secret_honours_key_file_variable(tmp_path: Path) -> None:
    keyfile_state = tmp_path / "keys"
    KeyStore(keyfile_state, env={}).encrypt("make the key")
    key_file = keyfile_state / "secret.key"
    env = cli_env(tmp_path, PRESENCE_SYNC_KEY_FILE=str(key_file))
    proc = cli("encrypt-secret", "--state-dir", str(tmp_path / "unused"), cwd=tmp_path, stdin="v4lue\n", env=env)
    assert proc.returncode == 0, proc.stderr
    assert KeyStore(keyfile_state, env={}).decrypt(proc.stdout.strip()) == "v4lue"
    assert not (tmp_path / "unused" / "secret.key").exists()
    # A key file variable naming nothing is an error, not a silently minted new key.
    env = cli_env(tmp_path, PRESENCE_SYNC_KEY_FILE=str(tmp_path / "typo.key"))
    proc = cli("encrypt-secret", cwd=tmp_path, stdin="v4lue\n", env=env)
    assert proc.returncode == 2
    assert "PRESENCE_SYNC_KEY_FILE" in proc.stderr and "typo.key" in proc.stderr
    assert not (tmp_path / "typo.key").exists()
    assert_clean(proc)


def test_encrypt_secret_unusable_state_dir(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    proc = cli("encrypt-secret", "--state-dir", str(tmp_path / "file" / "state"), cwd=tmp_path, stdin="x")
    assert proc.returncode == 2
    assert "file" in proc.stderr
    assert_clean(proc)


# --- configuration errors -----------------------------------------------------------------------------------------


def _config(*accounts: str, enabled: str = "true") -> str:
    return ('<?xml version="1.0" encoding="utf-8"?>\n<Configuration>\n<PresenceProvider>\n'
            f'<MsGraphPresenceSource enabled="{enabled}">\n<Accounts>\n' + "\n".join(accounts)
            + "\n</Accounts>\n</MsGraphPresenceSource>\n</PresenceProvider>\n</Configuration>\n")


SITE = '<AgentList SiteUrl="https://contoso.sharepoint.com/sites/agents"/>'
OK_ACCOUNT = f'<Account Id="ok" ClientId="{GOOD_CLIENT}" TenantId="{GOOD_TENANT}">{SITE}</Account>'
BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<Configuration><PresenceProvider><MsGraphPresenceSource><Accounts>
<Account Id="&lol3;" ClientId="11111111-2222-4333-8444-555555555555" TenantId="6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"/>
</Accounts></MsGraphPresenceSource></PresenceProvider></Configuration>
"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<Configuration><PresenceProvider><MsGraphPresenceSource><Accounts>
<Account Id="&x;" ClientId="11111111-2222-4333-8444-555555555555" TenantId="6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"/>
</Accounts></MsGraphPresenceSource></PresenceProvider></Configuration>
"""

# (name, config.xml, expected "file:line: attribute" fragments, other expected text)
CONFIG_CASES = [
    ("malformed", "<Configuration><PresenceProvider>\n<MsGraphPresenceSource>\n<Accounts><Account Id='a'\n"
     "</Configuration>", [":4:"], ["malformed XML"]),
    ("billion-laughs", BILLION_LAUGHS, [":2:"], ["DTD"]),
    ("external-entity", EXTERNAL_ENTITY, [":2:"], ["DTD"]),
    ("tenant-missing", _config(f'<Account Id="a" ClientId="{GOOD_CLIENT}">{SITE}</Account>'),
     [":6: Account/@TenantId"], ["missing"]),
    ("non-guid", _config(f'<Account Id="a"\n ClientId="not-a-guid"\n TenantId="6f1c2f4e">{SITE}</Account>'),
     [":7: Account/@ClientId", ":8: Account/@TenantId"], ["'not-a-guid' is not a GUID", "'6f1c2f4e'"]),
    ("duplicate-ids", _config(OK_ACCOUNT, OK_ACCOUNT.replace('Id="ok"', 'Id="OK"')),
     [":7: Account/@Id"], ["used twice"]),
    ("source-disabled", _config(OK_ACCOUNT, enabled="false"), [":4: MsGraphPresenceSource/@enabled"],
     ["no account is enabled"]),
    ("all-accounts-disabled", _config(OK_ACCOUNT.replace('Id="ok"', 'Id="ok" Enabled="false"')),
     [":4: Account/@Enabled"], ["none is enabled"]),
    ("no-accounts", _config(), [":4: Accounts"], ["no account is enabled"]),
    ("forbidden-username", _config(
        f'<Account Id="a" ClientId="{GOOD_CLIENT}" TenantId="{GOOD_TENANT}"\n'
        f'  Username="svc%presence@contoso.com" EncryptedPassword="ps1:AAAA">{SITE}</Account>'),
     [":7: Account/@Username"], ["percent sign"]),
    ("username-with-space", _config(
        f'<Account Id="a" ClientId="{GOOD_CLIENT}" TenantId="{GOOD_TENANT}" Username="svc presence@contoso.com"'
        f' EncryptedPassword="ps1:AAAA">{SITE}</Account>'), [":6: Account/@Username"], ["whitespace"]),
    ("plain-secret", _config(
        f'<Account Id="a" ClientId="{GOOD_CLIENT}" TenantId="{GOOD_TENANT}"\n'
        f'  EncryptedSecret="{CONTOSO_SECRET}">{SITE}</Account>'),
     [":7: Account/@EncryptedSecret"], ["not an encrypted value"]),
]


def _check_config_error(proc: subprocess.CompletedProcess[str], path: Path, fragments: list[str],
                        texts: list[str], out: Path) -> None:
    assert proc.returncode == 2, proc.stderr
    assert_clean(proc)
    assert "configuration error" in proc.stderr
    for frag in fragments:
        assert f"{path}{frag}" in proc.stderr, (frag, proc.stderr)
    for text in texts:
        assert text in proc.stderr, (text, proc.stderr)
    assert not out.exists(), "a config error must write nothing"


@pytest.mark.parametrize(("name", "xml", "fragments", "texts"), CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_errors_exit_2_with_file_line_attribute(name: str, xml: str, fragments: list[str],
                                                        texts: list[str], tmp_path: Path) -> None:
    path = tmp_path / "config.xml"
    path.write_text(xml, encoding="utf-8")
    out = tmp_path / "out"
    proc = cli("run", "--once", "--config", str(path), "--state-dir", str(tmp_path / "state"), "--out", str(out),
               cwd=tmp_path)
    _check_config_error(proc, path, fragments, texts, out)
    assert "root:" not in proc.stderr  # nothing from an external entity was read


def test_config_lists_every_problem_at_once(tmp_path: Path) -> None:
    path = tmp_path / "config.xml"
    path.write_text(_config(
        f'<Account Id="a" ClientId="bad-client">{SITE}</Account>',
        f'<Account Id="a" ClientId="{GOOD_CLIENT}" TenantId="{GOOD_TENANT}" Username="x`y@contoso.com"'
        f' EncryptedPassword="ps1:AAAA">{SITE}</Account>'), encoding="utf-8")
    out = tmp_path / "out"
    for command in ("run", "validate"):
        proc = cli(command, "--config", str(path), "--state-dir", str(tmp_path / "state"), "--out", str(out),
                   cwd=tmp_path)
        _check_config_error(proc, path, [":6: Account/@ClientId", ":6: Account/@TenantId", ":7: Account/@Id",
                                          ":7: Account/@Username"], ["backtick"], out)
        assert re.search(r"\((\d+) problem", proc.stderr) and int(
            re.search(r"\((\d+) problem", proc.stderr).group(1)) >= 4  # type: ignore[union-attr]


def test_secret_encrypted_with_another_key(tmp_path: Path) -> None:
    other = tmp_path / "other-state"
    token = cli("encrypt-secret", "--state-dir", str(other), cwd=tmp_path, stdin=CONTOSO_SECRET + "\n").stdout.strip()
    mine = tmp_path / "state"
    assert cli("encrypt-secret", "--state-dir", str(mine), cwd=tmp_path, stdin="mine").returncode == 0
    path = tmp_path / "config.xml"
    path.write_text(_config(f'<Account Id="a" ClientId="{GOOD_CLIENT}" TenantId="{GOOD_TENANT}"\n'
                            f'         EncryptedSecret="{token}">{SITE}</Account>'), encoding="utf-8")
    out = tmp_path / "out"
    proc = cli("run", "--once", "--config", str(path), "--state-dir", str(mine), "--out", str(out), cwd=tmp_path)
    _check_config_error(proc, path, [":7: Account/@EncryptedSecret"], ["does not decrypt", "encrypt-secret"], out)
    assert token not in proc.stderr


def test_unknown_attribute_is_a_warning_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "config.xml"
    path.write_text(_config(OK_ACCOUNT.replace('Id="ok"', 'Id="ok" Colour="blue"')), encoding="utf-8")
    # No Agent-list CSV and an unreachable tenant: the run fails later; what matters is the warning line.
    proc = cli("run", "--once", "--config", str(path), "--roster", str(tmp_path / "missing.csv"),
               "--state-dir", str(tmp_path / "state"), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert re.search(rf"warning: {re.escape(str(path))}:6: Account/@Colour", proc.stderr), proc.stderr
    assert "configuration error" not in proc.stderr
    assert_clean(proc)


# --- missing files, usage errors ----------------------------------------------------------------------------------


def test_run_without_any_config_says_how_to_start(tmp_path: Path) -> None:
    for command in ("run", "validate", "login"):
        args = (command, "--account", "x") if command == "login" else (command,)
        proc = cli(*args, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert "config/config.example.xml" in proc.stderr
        assert "presence-sync demo" in proc.stderr
        assert "--config" in proc.stderr
        assert_clean(proc)


def test_missing_config_file_names_the_path(tmp_path: Path) -> None:
    proc = cli("run", "--once", "--config", "nope/config.xml", cwd=tmp_path)
    assert proc.returncode == 2
    assert str(tmp_path / "nope" / "config.xml") in proc.stderr
    assert "config/config.example.xml" in proc.stderr
    assert_clean(proc)


def test_config_variable_wins_over_local_config_xml(tmp_path: Path, cfg: Setup) -> None:
    (tmp_path / "config.xml").write_text("<not xml", encoding="utf-8")
    env = cli_env(tmp_path, PRESENCE_SYNC_CONFIG=str(cfg.config), PRESENCE_SYNC_STATE_DIR=str(cfg.state))
    proc = cli("login", "--account", "nobody", cwd=tmp_path, env=env)
    # The variable's config was read (it knows contoso and fabrikam), not the broken ./config.xml.
    assert proc.returncode == 2
    assert "nobody" in proc.stderr and "contoso" in proc.stderr
    assert "malformed" not in proc.stderr
    assert_clean(proc)


def test_unwritable_out_is_a_clear_usage_error(tmp_path: Path, cfg: Setup) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    roster = tmp_path / "roster.csv"
    roster.write_text("UPN\nhannah.novak@contoso.co.uk\n", encoding="utf-8")
    for args in (("run", "--once", "--dry-run"), ("validate",)):
        proc = cli(*args, "--config", str(cfg.config), "--state-dir", str(cfg.state), "--roster", str(roster),
                   "--out", str(blocker / "out"), cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert str(blocker / "out") in proc.stderr and "--out" in proc.stderr
        assert_clean(proc)


def test_bad_log_format_is_a_usage_error(tmp_path: Path, cfg: Setup) -> None:
    proc = cli("run", "--once", "--config", str(cfg.config), "--state-dir", str(cfg.state), "--log-format", "xml",
               "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "--log-format" in proc.stderr and "text or json" in proc.stderr
    assert not (tmp_path / "out").exists()
    assert_clean(proc)


def test_unknown_account_filter_is_a_config_error(tmp_path: Path, cfg: Setup) -> None:
    proc = cli("run", "--once", "--config", str(cfg.config), "--state-dir", str(cfg.state), "--account",
               "northwind", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "northwind" in proc.stderr and "contoso" in proc.stderr
    assert_clean(proc)


# --- running against the local tenant -----------------------------------------------------------------------------


def test_run_once_against_the_local_tenant(ran: Ran) -> None:
    assert ran.proc.returncode == 0, ran.proc.stderr
    assert_clean(ran.proc)
    cycle_lines = [ln for ln in ran.proc.stderr.splitlines() if re.search(r"account \w+: agents=\d+", ln)]
    assert {re.search(r"account (\w+):", ln).group(1) for ln in cycle_lines} == {"contoso", "fabrikam"}  # type: ignore[union-attr]
    for field in ("agents=", "valid=", "resolved=", "presences=", "changes=", "requests=", "429s=", "duration="):
        assert all(field in ln for ln in cycle_lines), field
    assert "dry-run" in ran.proc.stderr  # it says what it would have written back
    header, rows = read_csv(ran.out / "presence.csv")
    assert header[:10] == ["account_id", "agent_item_id", "upn", "user_id", "display_name", "availability",
                           "activity", "status_message", "out_of_office", "observed_at_utc"]
    assert {r["account_id"] for r in rows} == {"contoso", "fabrikam"}
    assert all(r["availability"] for r in rows)
    header, _ = read_csv(ran.out / "presence_history.csv")
    assert tuple(header[:8]) == HISTORY_COLUMNS


def test_validate_prints_the_summary_and_writes_validation_csv(tmp_path: Path, cfg: Setup) -> None:
    out = tmp_path / "out"
    proc = cli("validate", "--config", str(cfg.config), "--state-dir", str(cfg.state), "--out", str(out),
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert_clean(proc)
    assert "UPN findings by code and account" in proc.stdout
    header_line = next(ln for ln in proc.stdout.splitlines() if "code" in ln and "severity" in ln)
    assert "contoso" in header_line and "fabrikam" in header_line
    for code in ("EMPTY", "WHITESPACE", "PREFIX", "SYNTAX", "DISPLAY_NAME", "UNKNOWN_DOMAIN", "DUPLICATE", "GUEST",
                 "NOT_UPN"):
        assert re.search(rf"\b{code}\b", proc.stdout), code
    header, rows = read_csv(out / "validation.csv")
    assert tuple(header) == VALIDATION_COLUMNS
    assert {r["account_id"] for r in rows} == {"contoso", "fabrikam"}
    assert {r["status"] for r in rows} == {"ok", "fixed", "invalid"}
    # The table's totals match the file.
    invalid_row = next(ln for ln in proc.stdout.splitlines() if "rows invalid" in ln)
    counts = [int(n) for n in re.findall(r"\d+", invalid_row)]
    assert sum(counts) == sum(r["status"] == "invalid" for r in rows)
    assert str(out / "validation.csv") in proc.stdout
    assert not (out / "presence.csv").exists()  # validate does not collect presence


def test_export_writes_the_audit_csvs_for_a_range(ran: Ran, cfg: Setup, tmp_path: Path) -> None:
    assert ran.proc.returncode == 0, ran.proc.stderr
    day = timedelta(days=1)
    since, until = (ran.started - day).isoformat(), (datetime.now(UTC) + day).isoformat()
    out = tmp_path / "all"
    proc = cli("export", "--state-dir", str(cfg.state), "--since", since, "--until", until, "--out", str(out),
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert_clean(proc)
    files = {p: read_csv(out / p) for p in ("export_history.csv", "export_snapshot.csv", "export_cycles.csv")}
    assert tuple(files["export_history.csv"][0][:8]) == HISTORY_COLUMNS
    assert tuple(files["export_snapshot.csv"][0][:7]) == SNAPSHOT_COLUMNS
    assert tuple(files["export_cycles.csv"][0][:14]) == CYCLE_COLUMNS
    for name in files:
        assert str(out / name) in proc.stdout
    history = files["export_history.csv"][1]
    assert {r["account_id"] for r in history} == {"contoso", "fabrikam"}
    assert {r["account_id"] for r in files["export_cycles.csv"][1]} == {"contoso", "fabrikam"}

    # --account narrows every file to that account.
    one = tmp_path / "one"
    proc = cli("export", "--state-dir", str(cfg.state), "--since", since, "--until", until, "--account",
               "fabrikam", "--out", str(one), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in files:
        rows = read_csv(one / name)[1]
        assert rows and {r["account_id"] for r in rows} == {"fabrikam"}, name
    assert len(read_csv(one / "export_history.csv")[1]) == sum(r["account_id"] == "fabrikam" for r in history)

    # A range after the run holds no transitions and no cycles; a Z suffix and a bare date are accepted.
    later = tmp_path / "later"
    proc = cli("export", "--state-dir", str(cfg.state), "--since", (datetime.now(UTC) + 2 * day).strftime(
        "%Y-%m-%dT%H:%M:%SZ"), "--until", (datetime.now(UTC) + 3 * day).date().isoformat(), "--out", str(later),
        cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert read_csv(later / "export_history.csv")[1] == []
    assert read_csv(later / "export_cycles.csv")[1] == []

    # Nothing before the first run; and a split at a transition time puts every row on exactly one side
    # ([since, until): the boundary row belongs to --since).
    proc = cli("export", "--state-dir", str(cfg.state), "--until", ran.started.isoformat(), "--out",
               str(tmp_path / "before"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert read_csv(tmp_path / "before" / "export_history.csv")[1] == []
    times = sorted({r["changed_at_utc"] for r in history})
    assert len(times) >= 2, times
    split = times[len(times) // 2]
    sides = {}
    for option in ("--since", "--until"):
        folder = tmp_path / option.strip("-")
        proc = cli("export", "--state-dir", str(cfg.state), option, split, "--out", str(folder), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        sides[option] = [r["changed_at_utc"] for r in read_csv(folder / "export_history.csv")[1]]
    assert sides["--since"] and all(t >= split for t in sides["--since"])
    assert sides["--until"] and all(t < split for t in sides["--until"])
    assert len(sides["--since"]) + len(sides["--until"]) == len(history)


def test_export_without_a_store(tmp_path: Path) -> None:
    proc = cli("export", "--state-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "no store" in proc.stderr and "presence-sync run" in proc.stderr and "--state-dir" in proc.stderr
    assert not (tmp_path / "out").exists()
    assert_clean(proc)


@pytest.mark.parametrize("option", ["--since", "--until"])
def test_export_bad_time_is_a_usage_error(option: str, tmp_path: Path, ran: Ran, cfg: Setup) -> None:
    proc = cli("export", "--state-dir", str(cfg.state), option, "last tuesday", "--out", str(tmp_path / "out"),
               cwd=tmp_path)
    assert proc.returncode == 2
    assert option in proc.stderr and "ISO 8601" in proc.stderr
    assert not (tmp_path / "out").exists()
    assert_clean(proc)


def test_export_to_an_unwritable_out(tmp_path: Path, ran: Ran, cfg: Setup) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    proc = cli("export", "--state-dir", str(cfg.state), "--out", str(blocker / "audit"), cwd=tmp_path)
    assert proc.returncode == 2
    assert str(blocker / "audit") in proc.stderr
    assert_clean(proc)


def test_roster_csv_with_json_logs(tmp_path: Path, cfg: Setup) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("Id,Name,UPN\n7,Hannah,hannah.novak@contoso.co.uk\n8,Wesley, WESLEY.ITO@contoso.co.uk\n"
                      "9,Nobody,Nobody Here\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = cli("run", "--once", "--config", str(cfg.config), "--state-dir", str(cfg.state), "--account",
               "contoso", "--roster", str(roster), "--out", str(out), "--log-format", "json", "--verbose",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert_clean(proc)
    records = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    assert records and all({"time", "level", "message"} <= set(r) for r in records)
    cycle = [r for r in records if r["level"] == "INFO" and "agents=" in r["message"]]
    assert len(cycle) == 1 and "account contoso: agents=3 " in cycle[0]["message"]
    _, presence = read_csv(out / "presence.csv")
    assert {(r["agent_item_id"], r["upn"]) for r in presence} == {
        ("7", "hannah.novak@contoso.co.uk"), ("8", "wesley.ito@contoso.co.uk")}
    _, validation = read_csv(out / "validation.csv")
    assert {r["agent_item_id"]: r["status"] for r in validation} == {"7": "ok", "8": "fixed", "9": "invalid"}


def test_roster_csv_without_the_upn_column(tmp_path: Path, cfg: Setup) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("Name,Email\nHannah,hannah.novak@contoso.co.uk\n", encoding="utf-8")
    out = tmp_path / "out"
    for args in (("run", "--once"), ("validate",)):
        proc = cli(*args, "--config", str(cfg.config), "--state-dir", str(cfg.state), "--roster", str(roster),
                   "--out", str(out), cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert "--roster" in proc.stderr and "'UPN'" in proc.stderr and "Name, Email" in proc.stderr
        assert not out.exists()
        assert_clean(proc)
    proc = cli("run", "--once", "--config", str(cfg.config), "--state-dir", str(cfg.state), "--roster",
               str(tmp_path / "missing.csv"), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2
    assert "missing.csv" in proc.stderr
    assert_clean(proc)


# --- the local tenant as a command --------------------------------------------------------------------------------


def _lines(stream: object, into: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        into.put(line)


@pytest.fixture()
def emulator_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str]]]:
    proc = subprocess.Popen([*BASE_CMD, "emulator", "--port", "0", "--state-dir", str(tmp_path / "emu")],
                            cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    try:
        yield proc, lines
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def test_emulator_command_serves_the_tenant(emulator_process: tuple[subprocess.Popen[str], queue.Queue[str]],
                                            tmp_path: Path) -> None:
    proc, lines = emulator_process
    seen: list[str] = []
    base = ca = None
    deadline = datetime.now(UTC) + timedelta(seconds=15)
    while (base is None or ca is None) and datetime.now(UTC) < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            assert proc.poll() is None, "".join(seen)
            continue
        seen.append(line)
        base = base or (m.group(0) if (m := re.search(r"https://127\.0\.0\.1:\d+", line)) else None)
        ca = ca or next((Path(w) for w in re.findall(r"/\S+\.pem", line) if Path(w).is_file()), None)
    assert base and ca, "".join(seen)
    assert ca.is_relative_to(tmp_path / "emu")
    assert CONTOSO_SECRET not in "".join(seen)  # secrets are hidden unless asked for
    info = httpx.get(f"{base}/_emulator/info", verify=ssl.create_default_context(cafile=str(ca)), timeout=10).json()
    assert {t["name"] for t in info["tenants"]} >= {"contoso", "fabrikam"}
    proc.terminate()
    assert proc.wait(timeout=10) in (0, -15)


# --- login, the loop, the demo ------------------------------------------------------------------------------------


def test_login_checks_a_secret_account(tmp_path: Path, cfg: Setup) -> None:
    proc = cli("login", "--account", "contoso", "--config", str(cfg.config), "--state-dir", str(cfg.state),
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "account 'contoso'" in proc.stdout and "client secret" in proc.stdout
    assert_clean(proc)


def test_login_device_code_once_then_silent(emulator: EmulatorServer, tmp_path: Path, cfg: Setup) -> None:
    base = emulator.base_url
    config = tmp_path / "config.xml"
    config.write_text(_config(
        f'<Account Id="contoso-dev" ClientId="22222222-3333-4444-8555-666666666666" TenantId="{GOOD_TENANT}"\n'
        f'  AuthorityHost="{base}" GraphUrl="{base}"><AgentList SiteUrl="{base}/sites/contoso-agents"/></Account>'
    ).replace("<MsGraphPresenceSource ", f'<MsGraphPresenceSource CaBundle="{emulator.tls.ca_cert}" '),
        encoding="utf-8")
    args = [*BASE_CMD, "login", "--account", "contoso-dev", "--config", str(config), "--state-dir",
            str(cfg.state)]
    proc = subprocess.Popen(args, cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        prompt = proc.stderr.readline()
        code = re.search(r"code ([A-Z0-9-]{6,})", prompt)
        assert code and "devicelogin" in prompt, prompt
        ctx = ssl.create_default_context(cafile=str(emulator.tls.ca_cert))
        r = httpx.post(f"{base}/_emulator/devicecode/approve", verify=ctx, timeout=10,
                       json={"user_code": code.group(1), "upn": "svc-presence@contoso.com"})
        assert r.status_code == 200, r.text
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode == 0, stderr
    assert "account 'contoso-dev'" in stdout and "device login" in stdout
    # The encrypted token cache makes the next login silent: no code, no waiting.
    again = cli("login", "--account", "contoso-dev", "--config", str(config), "--state-dir", str(cfg.state),
                cwd=tmp_path, timeout=15)
    assert again.returncode == 0, again.stderr
    assert "code" not in again.stderr.lower()
    assert_clean(again)


def test_interval_run_stops_cleanly_on_sigterm(tmp_path: Path, cfg: Setup) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("UPN\nhannah.novak@contoso.co.uk\nwesley.ito@contoso.co.uk\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.Popen([*BASE_CMD, "run", "--interval", "0.5", "--config", str(cfg.config), "--state-dir",
                             str(cfg.state), "--account", "contoso", "--roster", str(roster), "--out", str(out)],
                            cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stderr is not None
        cycles = 0
        seen: list[str] = []
        while cycles < 2:
            line = proc.stderr.readline()
            assert line, "".join(seen)
            seen.append(line)
            cycles += "agents=2 " in line
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    _, rows = read_csv(out / "presence.csv")
    assert {r["upn"] for r in rows} == {"hannah.novak@contoso.co.uk", "wesley.ito@contoso.co.uk"}


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    proc = cli("demo", "--cycles", "1", "--dir", str(tmp_path / "demo"), cwd=tmp_path, timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert_clean(proc)
    out = tmp_path / "demo" / "out"
    for name in ("presence.csv", "presence_history.csv", "validation.csv"):
        assert (out / name).is_file(), name
    assert "local tenant on https://127.0.0.1:" in proc.stdout
    assert "UPN findings by code and account" in proc.stdout
    assert (tmp_path / "demo" / "config.xml").is_file()


# --- one state directory and one log format, however they are given ------------------------------------------------


def test_json_logs_cover_config_errors_and_warnings(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text(_config(f'<Account Id="a" ClientId="{GOOD_CLIENT}">{SITE}</Account>'), encoding="utf-8")
    proc = cli("run", "--once", "--config", str(bad), "--log-format", "json", "--out", str(tmp_path / "out"),
               cwd=tmp_path)
    assert proc.returncode == 2
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    assert records and all(r["level"] == "ERROR" for r in records)
    assert any(f"{bad}:6: Account/@TenantId" in r["message"] for r in records)
    warn = tmp_path / "warn.xml"
    warn.write_text(_config(OK_ACCOUNT.replace('Id="ok"', 'Id="ok" Colour="blue"')), encoding="utf-8")
    proc = cli("run", "--once", "--config", str(warn), "--log-format", "json", "--roster",
               str(tmp_path / "missing.csv"), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    assert any(r["level"] == "WARNING" and "Account/@Colour" in r["message"] for r in records), records
    assert any(r["level"] == "ERROR" and "missing.csv" in r["message"] for r in records), records


def test_state_dir_variable_is_honoured_by_every_command(tmp_path: Path, cfg: Setup, ran: Ran) -> None:
    assert ran.proc.returncode == 0, ran.proc.stderr
    env = cli_env(tmp_path, PRESENCE_SYNC_STATE_DIR=str(cfg.state))
    proc = cli("export", "--out", str(tmp_path / "audit"), cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert read_csv(tmp_path / "audit" / "export_cycles.csv")[1]
    # encrypt-secret uses the same key as run, so its output decrypts with cfg.state's key (from .env too).
    (tmp_path / ".env").write_text(f"PRESENCE_SYNC_STATE_DIR={cfg.state}\n", encoding="utf-8")
    proc = cli("encrypt-secret", cwd=tmp_path, stdin="via-dotenv\n")
    assert proc.returncode == 0, proc.stderr
    assert cfg.keys.decrypt(proc.stdout.strip()) == "via-dotenv"
    assert not (tmp_path / "xdg-state").exists()


def test_export_empty_range_is_a_usage_error(tmp_path: Path) -> None:
    proc = cli("export", "--since", "2026-02-01", "--until", "2026-01-01", "--state-dir", str(tmp_path / "none"),
               "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "--since" in proc.stderr and "--until" in proc.stderr
    assert not (tmp_path / "out").exists()
    assert_clean(proc)
