"""Several replicas, one OutDir: each account's CSVs in ``accounts/<id>/``, written by the replica that holds the
account, and the whole-folder presence.csv, validation.csv and presence_history.csv built from them.

    OutDir/
    ├── presence.csv, validation.csv     every configured account: the per-account files' rows, concatenated in
    │                                    the configured order after each write (atomically, as always)
    ├── presence_history.csv             every account's transitions, appended by the holder as they happen
    └── accounts/<id>/                   presence.csv, validation.csv, presence_history.csv of one account
                                         (written only by the replica holding its lease)

Replicas writing one folder (a shared volume) take an exclusive ``flock`` on ``OutDir/.presence-sync.lock`` for each
write, so an append never interleaves with another and a rebuild reads whole per-account files. A row is written
by one replica only (the holder's token is checked before every write), so the whole-folder files have no
duplicate rows; an account whose holder died keeps its last rows until the next holder writes them again.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .csv import EOL, atomic_write

__all__ = ["ACCOUNTS_DIR", "LOCK_FILE", "account_dir", "folder_lock", "merge_csv"]

ACCOUNTS_DIR = "accounts"
LOCK_FILE = ".presence-sync.lock"
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


def account_dir(out_dir: Path, account: str) -> Path:
    """``OutDir/accounts/<id>``: the Id itself when it is a plain file name, else a readable slug and a hash."""
    if _PLAIN.fullmatch(account) and ".." not in account:
        name = account
    else:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", account).strip("._")[:40] or "account"
        name = f"{slug}-{hashlib.sha256(account.encode('utf-8')).hexdigest()[:8]}"
    return out_dir / ACCOUNTS_DIR / name


@contextmanager
def folder_lock(out_dir: Path) -> Iterator[None]:
    """An exclusive lock on the output folder, across processes (``flock``; released when closed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(out_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def merge_csv(target: Path, parts: Sequence[Path], header: Sequence[str], encoding: str = "utf-8") -> Path:
    """``target``: the header, then the rows of every part that exists (each part's own header dropped; a
    byte-order mark too), written atomically in ``encoding``. Parts are whole files (they are replaced
    atomically), so every row is whole."""
    def fill(fh: object) -> None:
        write = fh.write  # type: ignore[attr-defined]
        write(",".join(header) + EOL)
        for part in parts:
            try:
                text = part.read_text(encoding="utf-8-sig")
            except FileNotFoundError:
                continue
            write(text.partition("\n")[2])

    return atomic_write(target, fill, encoding)
