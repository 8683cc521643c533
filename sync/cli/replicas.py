"""`status`: the replicas sharing a PostgreSQL store and who holds each account."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from ..errors import SyncError, UsageError
from ..store.backend import is_url
from .common import _env, _fail, app, out


@app.command()
def status(
    store: Annotated[str | None, typer.Option("--store", metavar="URL",
                                              help="The PostgreSQL store the replicas share (default "
                                                   "PRESENCE_SYNC_STORE).", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """List the replicas sharing a PostgreSQL store (heartbeat age) and each account's holder, lease token and
    expiry. Exit 0; 2 without a store URL; 1 when the database cannot be read.

    Example: presence-sync status --store postgresql://sync@db.example/presence
    """
    try:
        url = store or _env().get("PRESENCE_SYNC_STORE", "").strip()
        if not url or not is_url(url):
            raise UsageError("status needs the replicas' PostgreSQL store: pass --store postgresql://... or set "
                             "PRESENCE_SYNC_STORE (a single replica's SQLite store has no leases)")
        from ..replicas.status import replica_status

        doc = replica_status(url)
    except SyncError as exc:
        raise _fail(exc) from None
    if as_json:
        out.print(json.dumps(doc, indent=2), markup=False, highlight=False, soft_wrap=True)
        return
    out.print(f"store: {doc['store']}", markup=False, highlight=False)
    reps = Table("replica", "host", "pid", "heartbeat", "accounts", title="replicas", title_justify="left")
    for r in doc["replicas"]:
        age = f"{r['heartbeat_age_s']:.1f} s ago" + ("" if r["live"] else " (not live)")
        reps.add_row(r["id"], r["host"], str(r["pid"]), age, str(r["accounts"]))
    accs = Table("account", "holder", "token", "lease expires", title="accounts", title_justify="left")
    for a in doc["accounts"]:
        expires = f"in {a['expires_in_s']:.1f} s" if a["holder"] else "-"
        accs.add_row(a["account"], a["holder"] or "(free)", str(a["token"]), expires)
    out.print(reps)
    out.print(accs)
