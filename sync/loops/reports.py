"""The reports loop: an account's validation.csv and report.html, uploaded to a document library of its site.

Supervisors find the findings next to the Agent list (``<Reports Library="Shared Documents"
Folder="presence-sync"/>`` in the Account). Each file holds this account's rows only: a tenant never sees
another tenant's agents. The loop looks at the verdicts every ``interval`` seconds (the write-back cadence);
when they changed it builds both files (report.html in a child process, ``presence-sync report --account``, so
pandas never competes with the presence loop) and uploads the ones whose bytes differ from the last upload.
Uploads go through the roster source's SharePoint door, so they wait on the same Retry-After and RU budget as
the write-back. A failed upload is logged and tried again at the next look; it never stops the account.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from ..config import ReportsTarget
from ..errors import GraphError, SyncError
from ..models import ValidationRow
from ..outputs.csv import validation_csv
from .state import AccountState
from .ticker import sleep_or_stop

__all__ = ["ReportsLoop", "Upload"]

log = logging.getLogger(__name__)

Upload = Callable[[str, str, str, bytes, str], Awaitable[None]]  # (library, folder, name, data, content type)
CSV_TYPE = "text/csv; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"


class ReportsLoop:
    def __init__(self, state: AccountState, target: ReportsTarget, upload: Upload, store: str | Path,
                 interval: float = 60.0, csv_encoding: str = "utf-8") -> None:
        self.state = state
        self.target = target
        self.upload = upload
        self.store = store  # the state directory (its SQLite store) or a PostgreSQL URL
        self.interval = interval
        self.csv_encoding = csv_encoding  # utf-8-sig: the uploaded validation.csv opens right in Excel
        self.uploads = 0  # files uploaded, all told
        self._seen: tuple[ValidationRow, ...] | None = None
        self._sent: dict[str, str] = {}  # file name -> sha256 of what the library holds

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.step()
            if await sleep_or_stop(stop, self.interval):
                return

    async def step(self) -> int:
        """Build and upload what changed since the last look; returns the number of files uploaded."""
        verdicts = self.state.validation
        if not verdicts or verdicts is self._seen:
            return 0
        text = validation_csv([(self.state.account_id, v) for v in verdicts])
        files = {"validation.csv": (text.encode(self.csv_encoding), CSV_TYPE)}
        html = await asyncio.to_thread(self._build_report)
        if html is not None:
            files["report.html"] = (html, HTML_TYPE)
        sent = 0
        for name, (data, kind) in files.items():
            digest = hashlib.sha256(data).hexdigest()
            if self._sent.get(name) == digest:
                continue
            try:
                await self.upload(self.target.library, self.target.folder, name, data, kind)
            except (GraphError, SyncError, OSError) as exc:
                self.state.note_failure(f"upload of {name} to {self.target.library}/{self.target.folder} failed "
                                        f"(tried again in {self.interval:g} s): {exc}")
                return sent
            self._sent[name] = digest
            sent += 1
        self._seen = verdicts
        self.uploads += sent
        if sent:
            log.info("account %s: %d report file(s) uploaded to %s/%s", self.state.account_id, sent,
                     self.target.library, self.target.folder)
        return sent

    def _build_report(self) -> bytes | None:
        """This account's report.html, built by `presence-sync report` in a child process (None: not built)."""
        with tempfile.TemporaryDirectory(prefix="presence-sync-report-") as tmp:
            failed = report_in_child(self.store, Path(tmp), [self.state.account_id])
            if failed:
                log.warning("account %s: report.html not built for the library: %s", self.state.account_id, failed)
                return None
            return (Path(tmp) / "report.html").read_bytes()


def report_in_child(store: str | Path, out_dir: Path, accounts: Sequence[str] = ()) -> str:
    """Run `presence-sync report` for the store (a state directory's SQLite store, or a PostgreSQL URL, handed
    over in the child's environment so that its password is not on a command line) into ``out_dir`` in a child
    process (pandas costs seconds of CPU and hundreds of MB at 30,000 agents; none of it belongs in the job).
    "" when it worked, else what went wrong, in one line."""
    where, env = ([], {**os.environ, "PRESENCE_SYNC_STORE": store}) if isinstance(store, str) else (
        ["--state-dir", str(store)], None)
    cmd = [sys.executable, "-m", "sync.cli", "report", *where, "--out", str(out_dir),
           *(a for acc in accounts for a in ("--account", acc))]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if proc.returncode != 0:
        last = [ln for ln in proc.stderr.splitlines() if ln.strip()][-1:] or [""]
        return f"exit {proc.returncode}: {last[0]}"
    return ""
