"""``presence-sync demo``: the whole job against the embedded local tenant, end to end.

Starts the local tenant in this process, writes a config.xml that points at it (one account with
application permissions and an encrypted client secret, one delegated account with an encrypted
username/password), runs a few cycles with SharePoint write-back, and shows where the outputs are.
"""

from __future__ import annotations

import asyncio
import csv
import shutil
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import httpx
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .config import load_settings
from .errors import SyncError
from .job import run_job
from .models import ValidationRow
from .observe.server import free_port
from .secrets import KeyStore
from .validate import print_validation_summary

__all__ = ["app_account_xml", "delegated_account_xml", "run_demo", "shown_cell", "write_demo_config"]


def app_account_xml(t: dict[str, Any], keys: KeyStore, base: str) -> str:
    """One <Account> with application permissions (the tenant's confidential app, secret encrypted)."""
    app = next(a for a in t["apps"] if a["kind"] == "confidential" and a.get("client_secret")
               and not a.get("secret_expired") and "Presence.Read.All" in a["permissions"])
    return (f'      <Account Id="{t["name"]}" TenantId="{t["tenant_id"]}" ClientId="{app["client_id"]}"\n'
            f'               EncryptedSecret="{keys.encrypt(app["client_secret"])}" AuthorityHost="{base}" '
            f'GraphUrl="{base}">\n'
            f'        <AgentList SiteUrl={quoteattr(t["site_url"])} List={quoteattr(t["list_title"])} '
            f'UpnColumn={quoteattr(t["upn_column"])}/>\n      </Account>')


def delegated_account_xml(t: dict[str, Any], keys: KeyStore, base: str) -> str:
    """One <Account> with delegated permissions (the public app and a licence-free service account's password)."""
    app = next(a for a in t["apps"] if a["kind"] == "public" and a.get("admin_consented", True))
    svc = next(s for s in t["service_accounts"] if not s.get("mfa_required"))
    return (f'      <Account Id="{t["name"]}" TenantId="{t["tenant_id"]}" ClientId="{app["client_id"]}"\n'
            f'               Username="{svc["upn"]}" EncryptedPassword="{keys.encrypt(svc["password"])}" '
            f'AuthorityHost="{base}" GraphUrl="{base}">\n'
            f'        <AgentList SiteUrl={quoteattr(t["site_url"])} List={quoteattr(t["list_title"])} '
            f'UpnColumn={quoteattr(t["upn_column"])}/>\n      </Account>')


def write_demo_config(info: dict, keys: KeyStore, ca_file: Path, path: Path) -> Path:
    """A config.xml for the local tenant's first two tenants (secret app, then password account)."""
    base = info["base_url"]
    accounts = []
    for n, t in enumerate(info["tenants"][:2]):
        if n == 0:
            accounts.append('      <!-- application permissions: client id + encrypted client secret -->\n'
                            + app_account_xml(t, keys, base))
        else:
            accounts.append('      <!-- delegated permissions: a licence-free service account (username + password) -->\n'
                            + delegated_account_xml(t, keys, base))
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        "<!-- Written by `presence-sync demo` for the local tenant; see config/config.example.xml -->\n"
        "<Configuration>\n  <PresenceProvider>\n"
        f'    <MsGraphPresenceSource enabled="true" CaBundle={quoteattr(str(ca_file.resolve()))}>\n'
        "    <Accounts>\n" + "\n".join(accounts) + "\n    </Accounts>\n"
        "    </MsGraphPresenceSource>\n  </PresenceProvider>\n</Configuration>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(xml, encoding="utf-8")
    return path


_VISIBLE = {"\u00a0": "⎵", "\t": "→", "\n": "↵", "\r": "␍"}
_EDGE_SPACE = "·"


def shown_cell(value: object) -> str:
    """A hand-typed cell as typed, for a terminal: spaces at its edges shown as ``·``, a non-breaking space as
    ``⎵``, a tab as ``→``, a line break as ``↵``, any other invisible character as ``⟨U+200B⟩``; an empty
    cell (None or "") as ``(empty)``. Never a Python repr."""
    if value is None or value == "":
        return "(empty)"
    text = str(value)
    core = text.strip(" ")
    if not core:
        return _EDGE_SPACE * len(text)
    lead, trail = len(text) - len(text.lstrip(" ")), len(text) - len(text.rstrip(" "))
    middle = "".join(_VISIBLE.get(c) or (c if c.isprintable() else f"⟨U+{ord(c):04X}⟩") for c in core)
    return _EDGE_SPACE * lead + middle + _EDGE_SPACE * trail


_GAP = 2  # characters between two columns: the right padding and the box's blank vertical line


def _table(title: str, columns: Sequence[tuple[str, int]], rows: Sequence[Sequence[str]], width: int) -> Table:
    """A table that fits ``width`` characters. Each column is (header, how early it gives way): 0 stays whole
    (codes, times); the others are narrowed, the highest first, and fold their cells onto more lines, never
    cutting them. rich itself narrows no column below its longest word, and a UPN is one word."""
    widths = [max([cell_len(h)] + [cell_len(r[i]) for r in rows]) for i, (h, _) in enumerate(columns)]
    excess = sum(widths) + _GAP * (len(widths) - 1) - width
    for i in sorted((i for i, (_, give) in enumerate(columns) if give), key=lambda i: -columns[i][1]):
        cut = max(0, min(excess, widths[i] - _NARROWEST))
        widths[i] -= cut
        excess -= cut
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0),
                  title_justify="left")
    for (header, _), w in zip(columns, widths, strict=True):
        table.add_column(header, width=w, overflow="fold")
    for r in rows:
        table.add_row(*map(Text, r))  # Text: a cell holding [brackets] is not read as console markup
    return table


_NARROWEST = 11  # a folding column keeps at least this many characters a line


def _clock(stamp: object) -> str:
    """HH:MM:SS of an ISO 8601 UTC timestamp (the table's title says the day and UTC)."""
    text = str(stamp or "")
    return text[11:19] if len(text) >= 19 and text[10] == "T" else text


def _show_presence(console: Console, presence_csv: Path, limit: int = 12) -> None:
    with presence_csv.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    day = rows[0]["observed_at_utc"][:10] if rows else ""
    cells = [(r["account_id"], r["upn"], r["availability"], r["activity"], _clock(r["observed_at_utc"]))
             for r in rows[:limit]]
    console.print(_table(f"presence.csv ({len(rows)} agents; first {len(cells)}; times UTC, {day})",
                         [("account", 0), ("upn", 1), ("availability", 0), ("activity", 2), ("observed", 0)],
                         cells, console.width))


def _agent_list_sample(tenant: Any, name: str, width: int, limit: int = 10) -> Table:
    """What the write-back left in the first tenant's Agent list (read from the local tenant itself): the UPN
    cell as typed (whitespace made visible), the verdict and the presence written back (PresenceUpdated is
    left out to fit 80 columns)."""
    t = next(t for t in tenant.state.world.tenants.values() if t.name == name)
    lst = t.site.list_by_title("Agents")
    cells = [(shown_cell(f.get(t.upn_column)), *(str(f.get(c) or "") for c in ("UpnStatus", "Availability",
                                                                                 "Activity")))
             for f in (item.fields for item in list(lst.items.values())[:limit])]
    return _table(f"Agent list of {name} after write-back ({len(lst.items)} items; first {len(cells)})",
                  [(f"{t.upn_column} (as typed)", 1), ("UpnStatus", 3), ("Availability", 0), ("Activity", 2)],
                  cells, width)


def run_demo(workdir: Path, *, cycles: int = 3, interval: float = 2.0, console: Console | None = None,
             csv_encoding: str | None = None, fixtures_dir: Path | None = None) -> int:
    """The demo; ``fixtures_dir`` None serves the tenants shipped in the package. Returns the job's exit code."""
    from .emulator.model.fixtures import FixturesError
    from .emulator.server import EmulatorServer

    console = console or Console()
    state_dir = workdir / "state"
    out_dir = workdir / "out"
    try:
        server = EmulatorServer(state_dir=state_dir / "emulator", fixtures_dir=fixtures_dir)
    except FixturesError as exc:
        raise SyncError(f"the demo cannot start the local tenant: {exc}") from None
    # Each demo starts clean (the local tenant gets a new port each time); its CA is kept and reused.
    for stale in (state_dir / "tokens", out_dir):
        shutil.rmtree(stale, ignore_errors=True)
    for stale_file in state_dir.glob("presence-sync.sqlite*"):
        stale_file.unlink()
    with server as tenant:
        console.print(f"local tenant on {tenant.base_url} (CA {tenant.tls.ca_cert})", highlight=False)
        ctx = ssl.create_default_context(cafile=str(tenant.tls.ca_cert))
        info = httpx.get(f"{tenant.base_url}/_emulator/info", verify=ctx, timeout=10).json()
        # Presence changes every few minutes per agent during working hours: start the tenant's clock at a
        # weekday afternoon (UTC) and run it 60x, so a short demo shows agents at work and some changes.
        day = datetime.now(UTC).date()
        while day.weekday() >= 5:
            day += timedelta(days=1)
        start = datetime(day.year, day.month, day.day, 14, 0, tzinfo=UTC)
        httpx.post(f"{tenant.base_url}/_emulator/clock", json={"set": start.isoformat(), "speed": 60}, verify=ctx,
                   timeout=10)
        console.print(f"the local tenant's presence clock starts at {start:%a %Y-%m-%d %H:%M} UTC and runs 60x "
                      "faster for the demo", highlight=False)
        config = write_demo_config(info, KeyStore(state_dir), tenant.tls.ca_cert, workdir / "config.xml")
        console.print(f"config: {config}", highlight=False)
        metrics_port = free_port()  # the metrics, while the demo runs
        console.print(f"metrics while the job runs: http://127.0.0.1:{metrics_port}/metrics (and /healthz, /readyz)",
                      highlight=False)
        settings, _ = load_settings(config, {"state_dir": state_dir, "out_dir": out_dir, "interval": interval,
                                             "metrics_port": metrics_port, "csv_encoding": csv_encoding}, env={})
        report = asyncio.run(run_job(settings, max_cycles=cycles))
        written = _agent_list_sample(tenant, info["tenants"][0]["name"], console.width)
    outputs = report.outputs
    console.print()
    _show_presence(console, outputs.presence_csv)
    console.print()
    console.print(written)
    console.print()
    rows: list[tuple[str, ValidationRow]] = [(a, v) for a, vs in sorted(outputs.validation.items()) for v in vs]
    print_validation_summary(console, rows, outputs.validation_csv)
    from .reporting import Scope, build_report

    page = build_report(state_dir / "presence-sync.sqlite", out_dir, Scope())  # what `presence-sync report` writes
    console.print(f"presence history: {outputs.history_csv}\nstore: {state_dir / 'presence-sync.sqlite'}\n"
                  f"data-quality report (open it in a browser): {page}", highlight=False)
    return report.exit_code
