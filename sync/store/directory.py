"""The per-account directory cache: every Entra user, kept current from `/users/delta`.

`directory_version(account)` grows on every change, so callers can keep their own UPN/mail/proxy indexes
and rebuild them only when the number moved, instead of re-reading 100,000 users each cycle.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import islice

from sync.models import DirectoryUser
from sync.store._db import ts
from sync.store.backend import TableBase, Writer

__all__ = ["DirectoryTables"]

_UPSERT = (
    "INSERT INTO users (account_id, id, upn, display_name, mail, proxy_addresses, im_addresses,"
    " account_enabled, user_type) VALUES (?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (account_id, id) DO UPDATE SET upn=excluded.upn, display_name=excluded.display_name,"
    " mail=excluded.mail, proxy_addresses=excluded.proxy_addresses, im_addresses=excluded.im_addresses,"
    " account_enabled=excluded.account_enabled, user_type=excluded.user_type"
)
_BUMP = (
    "INSERT INTO directory_state (account_id, version) VALUES (?, 1)"
    " ON CONFLICT (account_id) DO UPDATE SET version = directory_state.version + 1"
)


class DirectoryTables(TableBase):
    """users + directory_state."""

    _dir_versions: dict[str, int]

    def upsert_users(self, account_id: str, users: Iterable[DirectoryUser]) -> int:
        """Insert or replace users (a delta page, or the first full sync). Returns how many were written."""
        dumps = json.dumps
        rows = (
            (
                account_id, u.id, u.upn, u.display_name, u.mail, dumps(list(u.proxy_addresses)),
                dumps(list(u.im_addresses)), int(u.account_enabled), u.user_type,
            )
            for u in users
        )
        # Short transactions: a 100,000-user first read must not hold the store from the presence loop's writes.
        # Rows are made 5,000 at a time, so the text of the whole directory never exists at once.
        count = 0
        chunk = list(islice(rows, 5000))
        while chunk:
            following = list(islice(rows, 5000))
            with self._tx("saving directory users", account_id) as c:
                c.executemany(_UPSERT, chunk)
                if not following:
                    self._bump(c, account_id)
            count += len(chunk)
            chunk = following
        return count

    def delete_users(self, account_id: str, ids: Iterable[str]) -> int:
        """Remove users the delta reported as `@removed`. Returns how many ids were given."""
        keys = [(account_id, i) for i in ids]
        if keys:
            with self._tx("deleting directory users", account_id) as c:
                c.executemany("DELETE FROM users WHERE account_id = ? AND id = ?", keys)
                self._bump(c, account_id)
        return len(keys)

    def load_directory(self, account_id: str) -> list[DirectoryUser]:
        """Every cached user of the account (call it when `directory_version` moved, not every cycle)."""
        rows = self._read(
            "SELECT id, upn, display_name, mail, proxy_addresses, im_addresses, account_enabled, user_type"
            " FROM users WHERE account_id = ?",
            (account_id,),
        )
        loads = json.loads
        return [
            DirectoryUser(i, upn, dn, mail, tuple(loads(px)), tuple(loads(im)), bool(en), ut)
            for i, upn, dn, mail, px, im, en, ut in rows
        ]

    def get_delta_link(self, account_id: str) -> str | None:
        """The deltaLink to continue from, or None when a full sync is needed."""
        rows = self._read("SELECT delta_link FROM directory_state WHERE account_id = ?", (account_id,))
        return rows[0][0] if rows else None

    def set_delta_link(self, account_id: str, delta_link: str | None, synced_at: datetime | None = None) -> None:
        """Remember where the next delta round starts (after its pages were stored)."""
        when = ts(synced_at or datetime.now(UTC))
        with self._tx("saving the delta link", account_id) as c:
            c.execute(
                "INSERT INTO directory_state (account_id, delta_link, synced_at) VALUES (?,?,?)"
                " ON CONFLICT (account_id) DO UPDATE SET delta_link=excluded.delta_link,"
                " synced_at=excluded.synced_at",
                (account_id, delta_link, when),
            )

    def directory_synced_at(self, account_id: str) -> datetime | None:
        """When the delta link was last saved (None: never)."""
        rows = self._read("SELECT synced_at FROM directory_state WHERE account_id = ?", (account_id,))
        return datetime.fromisoformat(rows[0][0]) if rows and rows[0][0] else None

    def directory_version(self, account_id: str) -> int:
        """A number that grows whenever the account's cached directory changes (0: never filled)."""
        v = self._dir_versions.get(account_id)
        if v is None:
            rows = self._read("SELECT version FROM directory_state WHERE account_id = ?", (account_id,))
            v = self._dir_versions[account_id] = int(rows[0][0]) if rows else 0
        return v

    def reset_directory(self, account_id: str) -> None:
        """Forget the account's users and delta link (the token expired, HTTP 410): the next sync is full."""
        with self._tx("resetting the directory", account_id) as c:
            c.execute("DELETE FROM users WHERE account_id = ?", (account_id,))
            self._bump(c, account_id)
            c.execute(
                "UPDATE directory_state SET delta_link = NULL, synced_at = NULL WHERE account_id = ?",
                (account_id,),
            )

    def _bump(self, c: Writer, account_id: str) -> None:
        c.execute(_BUMP, (account_id,))
        # Re-read on the next directory_version() call: one query after a change, none otherwise.
        self._dir_versions.pop(account_id, None)
