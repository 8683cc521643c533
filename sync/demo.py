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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import httpx
from rich.console import Console
from rich.table import Table

from .config import load_settings
from .job import run_job
from .models import ValidationRow
from .observe.server import free_port
from .secrets import KeyStore
from .validate import print_validation_summary

__all__ = ["app_account_xml", "delegated_account_xml", "run_demo", "write_demo_config"]


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


def _show_presence(console: Console, presence_csv: Path, limit: int = 12) -> None:
    with presence_csv.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    table = Table(title=f"presence.csv ({len(rows)} agents; first {min(limit, len(rows))})")
    for col in ("account_id", "upn", "availability", "activity", "observed_at_utc"):
        table.add_column(col)
    for r in rows[:limit]:
        table.add_row(*(r[c] for c in ("account_id", "upn", "availability", "activity", "observed_at_utc")))
    console.print(table)


def _agent_list_sample(tenant: Any, name: str, limit: int = 10) -> Table:
    """What the write-back left in the first tenant's Agent list (read from the local tenant itself)."""
    t = next(t for t in tenant.state.world.tenants.values() if t.name == name)
    lst = t.site.list_by_title("Agents")
    cols = (t.upn_column, "UpnStatus", "Availability", "Activity", "PresenceUpdated")
    table = Table(title=f"Agent list of {name} after write-back ({len(lst.items)} items; first {limit})")
    for c in cols:
        table.add_column(c)
    for item in list(lst.items.values())[:limit]:
        table.add_row(*(repr(item.fields.get(c)) if c == t.upn_column else str(item.fields.get(c) or "")
                        for c in cols))
    return table


def run_demo(workdir: Path, *, cycles: int = 3, interval: float = 2.0, console: Console | None = None) -> int:
    from .emulator.server import EmulatorServer

    console = console or Console()
    state_dir = workdir / "state"
    out_dir = workdir / "out"
    # Each demo starts clean (the local tenant gets a new port each time); its CA is kept and reused.
    for stale in (state_dir / "tokens", out_dir):
        shutil.rmtree(stale, ignore_errors=True)
    for stale_file in state_dir.glob("presence-sync.sqlite*"):
        stale_file.unlink()
    with EmulatorServer(state_dir=state_dir / "emulator") as tenant:
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
                                             "metrics_port": metrics_port}, env={})
        report = asyncio.run(run_job(settings, max_cycles=cycles))
        written = _agent_list_sample(tenant, info["tenants"][0]["name"])
    outputs = report.outputs
    _show_presence(console, outputs.presence_csv)
    console.print(written)
    rows: list[tuple[str, ValidationRow]] = [(a, v) for a, vs in sorted(outputs.validation.items()) for v in vs]
    print_validation_summary(console, rows, outputs.validation_csv)
    from .reporting import Scope, build_report

    page = build_report(state_dir / "presence-sync.sqlite", out_dir, Scope())  # what `presence-sync report` writes
    console.print(f"presence history: {outputs.history_csv}\nstore: {state_dir / 'presence-sync.sqlite'}\n"
                  f"data-quality report (open it in a browser): {page}", highlight=False)
    return report.exit_code
