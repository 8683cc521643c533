"""One ``run`` per state directory: two jobs on one store would record every transition twice and write back twice.

``state_lock`` takes an exclusive ``flock`` on ``<state dir>/presence-sync.lock`` for as long as the job runs and
writes the holder's pid and start time into it, so a second ``run`` can say who holds it. The kernel releases the
lock when the process ends, however it ends, so a killed job never blocks the next start.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from .errors import UsageError

__all__ = ["LOCK_NAME", "state_lock"]

LOCK_NAME = "presence-sync.lock"


@contextmanager
def state_lock(state_dir: Path) -> Iterator[Path]:
    """Hold the state directory's lock; UsageError (exit 2) at once when another process holds it."""
    path = state_dir / LOCK_NAME
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        probe = state_dir / f".write-probe-{os.getpid()}"  # the lock file may exist in a read-only directory
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"the state directory {state_dir} cannot be written ({exc.strerror}: {exc.filename}).",
                         hint="Give the user running presence-sync write access to it, or point --state-dir "
                              "(PRESENCE_SYNC_STATE_DIR) at a directory it can write.") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "pid unknown"
            raise UsageError(f"another presence-sync ({holder}) is using {state_dir}.",
                             hint="Stop it first, or give this run its own --state-dir.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, since {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock
