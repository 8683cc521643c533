"""CSV outputs: presence.csv, presence_history.csv, validation.csv (the audit export is sync.reporting.export).

Never a half-written file:
- whole-file outputs go to a temporary file in the same directory, are fsynced and then `os.replace`d over
  the target (readers see the old file or the new one, nothing in between);
- the history is appended with ONE `os.write` on an `O_APPEND` descriptor followed by fsync; should a crash
  still leave a torn last line, the next append cuts it off before writing (a warning is logged).

Encoding: UTF-8 without a byte-order mark by default; ``utf-8-sig`` (``CsvEncoding``, ``--csv-encoding``) starts each
file with one, so Excel on Windows reads accented names right. An append never adds a BOM mid-file: only a new
history file gets one. Cells: CRLF line ends (RFC 4180), timestamps ISO 8601 UTC with milliseconds and "Z" (2026-11-27T06:30:00.123Z),
booleans `true`/`false`, codes joined by ";".

CSV injection: a text cell that starts with `=`, `+`, `-`, `@`, tab or carriage return gets a leading
apostrophe (`'=HYPERLINK(...)`), so a spreadsheet shows it as text instead of running it as a formula. UPNs
are typed by hand into the Agent list and status messages are free text, so every text column is guarded.

Speed: rows become columns with `operator.attrgetter`, are joined in C (`render`) and are proven in C to
need no quoting (csv.writer takes over when some cell does), so 30,000 presence rows are written without a
Python-level loop per row; the injection check runs once per column on the joined text and falls back to
per-cell work only when a dangerous cell exists. Callers write presence.csv only when something changed
(`Store.snapshot_version` moved, or the stale set changed).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import logging
import operator
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import IO, Any

from sync.models import Change, Presence, ValidationRow
from sync.validation.text import CONTROL

__all__ = [
    "CYCLE_COLUMNS",
    "HISTORY_COLUMNS",
    "PRESENCE_COLUMNS",
    "SNAPSHOT_COLUMNS",
    "VALIDATION_COLUMNS",
    "PresenceCsv",
    "append_history_csv",
    "atomic_write",
    "format_utc",
    "guard_cell",
    "render",
    "write_presence_csv",
    "validation_csv",
    "write_validation_csv",
]

log = logging.getLogger(__name__)

PRESENCE_COLUMNS = (
    "account_id", "agent_item_id", "upn", "user_id", "display_name", "availability", "activity",
    "status_message", "out_of_office", "observed_at_utc", "stale", "sequence_number",
)
HISTORY_COLUMNS = (
    "account_id", "upn", "user_id", "from_availability", "from_activity", "to_availability", "to_activity",
    "changed_at_utc",
)
VALIDATION_COLUMNS = (
    "account_id", "agent_item_id", "raw_upn", "normalized_upn", "status", "codes", "severity", "suggestion",
    "candidates", "detail",
)
SNAPSHOT_COLUMNS = ("account_id", "upn", "user_id", "availability", "activity", "since_utc", "as_of_utc")
CYCLE_COLUMNS = (
    "account_id", "started_at_utc", "agents", "valid", "resolved", "presences", "changes", "requests",
    "throttled", "stale", "written_back", "duration_s", "error", "needs_human",
)

_DANGER = ("=", "+", "-", "@", "\t", "\r")
_DANGER_AT_START = re.compile("\n[=+\\-@\t\r]")
REPLACEMENT = "\ufffd"
EOL = "\r\n"  # RFC 4180; with it csv.writer also quotes cells holding a lone CR or LF
_BOOL = {True: "true", False: "false"}.__getitem__
_STALE = attrgetter("stale")


def format_utc(value: datetime) -> str:
    """ISO 8601 UTC with milliseconds and "Z"; naive datetimes are taken as UTC."""
    if value.tzinfo is not None and value.utcoffset():
        value = value.astimezone(UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


class _UtcCache(dict[datetime, str]):
    """format_utc through a dict: a cycle's rows share a handful of timestamps, formatted once each."""

    def __missing__(self, key: datetime) -> str:
        text = self[key] = format_utc(key)
        return text


def guard_cell(value: str) -> str:
    """Neutralise a cell a spreadsheet would read as a formula (leading apostrophe); control characters become
    U+FFFD (validation reports them where they came from)."""
    if not value.isprintable():  # a C-level test; the regex runs only for the rare cell that fails it
        value = CONTROL.sub(REPLACEMENT, value)
    return "'" + value if value.startswith(_DANGER) else value


def _guarded(column: list[str]) -> list[str]:
    """The column with dangerous cells guarded; two C-level scans when (as usual) there are none."""
    joined = "\n".join(column)
    if not _DANGER_AT_START.search("\n" + joined) and not CONTROL.search(joined):
        return column
    return list(map(guard_cell, column))


def atomic_write(path: str | os.PathLike[str], fill: Callable[[IO[str]], object], encoding: str = "utf-8") -> Path:
    """Write a whole file through `fill(text_stream)`: temp file, fsync, rename; the old file survives errors.
    ``utf-8-sig`` writes the byte-order mark first (Python's codec does, once per stream)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with open(fd, "w", encoding=encoding, newline="") as fh:
            fill(fh)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(target.parent)
    return target


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (best effort: some file systems refuse directory fsync)."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _writer(fh: IO[str]) -> Any:
    return csv.writer(fh, lineterminator=EOL)


def _columns(rows: Sequence[object], names: Sequence[str]) -> list[list[Any]]:
    return [list(map(attrgetter(n), rows)) for n in names]


_NEEDS_QUOTES = re.compile('[,"\r\n]')


def _quote(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"' if _NEEDS_QUOTES.search(cell) else cell


def _quoted(column: Sequence[str]) -> Sequence[str]:
    """The column as csv.writer's QUOTE_MINIMAL writes it; one C-level scan when no cell needs quotes."""
    if not _NEEDS_QUOTES.search("\x00".join(column)):
        return column
    return list(map(_quote, column))


def render(header: Sequence[str], columns: Sequence[Sequence[str]]) -> str:
    """CSV text of string columns, exactly as `csv.writer` (QUOTE_MINIMAL, CRLF) would write it.

    Column by column: a column whose cells need no quotes (the usual case) is used as is; otherwise only its
    cells holding ",", '"', CR or LF are quoted. Then cells are joined with "," and rows with CRLF, in C.
    """
    head = ",".join(header) + EOL
    if not columns or not len(columns[0]):
        return head
    cols = [_quoted(c) for c in columns]
    return head + EOL.join(map(",".join, zip(*cols, strict=True))) + EOL


def _write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    return atomic_write(path, lambda fh: fh.write(text), encoding)


def _presence_parts(p: Presence) -> tuple[str, str]:
    """A presence row's text before and after its observed_at cell."""
    cells = (p.account_id, str(p.agent_item_id), p.upn, p.user_id, p.display_name, p.availability, p.activity,
             p.status_message)
    head = ",".join(_quote(guard_cell(c)) for c in cells) + "," + _BOOL(p.out_of_office) + ","
    tail = "," + _BOOL(p.stale) + "," + _quote(guard_cell(p.sequence_number)) + EOL
    return head, tail


class PresenceCsv:
    """presence.csv, replaced atomically every cycle, formatted incrementally.

    Per account it keeps last cycle's rows and their text as ``segments``: segment ``i`` is the tail of row
    ``i-1`` plus the head of row ``i``, so the account's rows are ``stamp.join(segments)`` when every row carries
    the cycle's read time. A tick compares its rows with last tick's by identity (the presence loop reuses unchanged
    Presence objects) and re-formats only the rows that differ; the rest is joins in C. ``observed_at`` (account id
    -> the cycle's read time) stamps rows that are not stale; stale rows keep their own (when the state began).
    """

    def __init__(self, path: str | os.PathLike[str], encoding: str = "utf-8") -> None:
        self.path = Path(path)
        self.encoding = encoding
        self._cache: dict[str, tuple[list[Presence], list[tuple[str, str]], list[str]]] = {}

    def _segments(self, account: str, rows: list[Presence]) -> tuple[list[tuple[str, str]], list[str]]:
        old = self._cache.get(account)
        if old is not None and len(old[0]) == len(rows):
            prev_rows, parts, segments = old
            changed = [i for i, same in enumerate(map(operator.is_, rows, prev_rows)) if not same]
            if len(changed) * 4 < len(rows):
                for i in changed:
                    parts[i] = _presence_parts(rows[i])
                for i in set(changed) | {i + 1 for i in changed}:
                    if i < len(rows):
                        segments[i] = (parts[i - 1][1] if i else "") + parts[i][0]
                    else:
                        segments[i] = parts[i - 1][1]
                self._cache[account] = (list(rows), parts, segments)
                return parts, segments
        parts = list(map(_presence_parts, rows))
        heads = [h for h, _ in parts]
        tails = [t for _, t in parts]
        segments = [a + b for a, b in zip(["", *tails], [*heads, ""], strict=True)]
        self._cache[account] = (list(rows), parts, segments)
        return parts, segments

    def write(self, rows: Sequence[Presence], observed_at: Mapping[str, datetime] | None = None) -> Path:
        utc = _UtcCache().__getitem__
        stamps = {acc: utc(t) for acc, t in (observed_at or {}).items()}
        by_account: dict[str, list[Presence]] = {}
        for acc, group in itertools.groupby(rows, key=attrgetter("account_id")):
            by_account.setdefault(acc, []).extend(group)
        for gone in set(self._cache) - set(by_account):
            del self._cache[gone]
        pieces: list[Iterable[str]] = [(",".join(PRESENCE_COLUMNS) + EOL,)]
        for acc, acc_rows in by_account.items():
            parts, segments = self._segments(acc, acc_rows)
            stamp = stamps.get(acc)
            if stamp is not None and not any(map(_STALE, acc_rows)):
                pieces.append(_stamped(segments, stamp))
            else:  # stale rows keep their own time: the plain way
                pieces.append(_batched(h + (utc(p.observed_at) if p.stale or stamp is None else stamp) + t
                                       for p, (h, t) in zip(acc_rows, parts, strict=True)))
        return atomic_write(self.path, lambda fh: fh.writelines(itertools.chain.from_iterable(pieces)),
                            self.encoding)


_PIECE = 1000  # rows per piece of presence.csv handed to the file: the whole text never exists at once


def _stamped(segments: list[str], stamp: str) -> Iterator[str]:
    """``stamp.join(segments)`` in pieces of ``_PIECE`` rows."""
    for i in range(0, len(segments), _PIECE):
        yield (stamp if i else "") + stamp.join(segments[i:i + _PIECE])


def _batched(rows: Iterable[str]) -> Iterator[str]:
    """The rows' text joined ``_PIECE`` rows at a time."""
    it = iter(rows)
    while piece := "".join(itertools.islice(it, _PIECE)):
        yield piece


def write_presence_csv(path: str | os.PathLike[str], rows: Sequence[Presence],
                       observed_at: Mapping[str, datetime] | None = None, encoding: str = "utf-8") -> Path:
    """Replace presence.csv with one row per agent (PRESENCE_COLUMNS); see PresenceCsv for ``observed_at``."""
    return PresenceCsv(path, encoding).write(rows, observed_at)


def write_validation_csv(path: str | os.PathLike[str], rows: Sequence[tuple[str, ValidationRow]],
                         encoding: str = "utf-8") -> Path:
    """Replace validation.csv with one row per Agent list item (VALIDATION_COLUMNS)."""
    return _write_text(path, validation_csv(rows), encoding)


def validation_csv(rows: Sequence[tuple[str, ValidationRow]]) -> str:
    """validation.csv's text: one row per (account id, verdict), VALIDATION_COLUMNS."""
    verdicts = list(map(itemgetter(1), rows))
    raw = [v or "" for v in map(attrgetter("raw_upn"), verdicts)]
    norm, status, severity, suggestion, candidates, detail = _columns(
        verdicts, ("normalized_upn", "status", "severity", "suggestion", "candidates", "detail"))
    columns = [
        _guarded(list(map(itemgetter(0), rows))), list(map(str, map(attrgetter("item_id"), verdicts))),
        _guarded(raw), _guarded(norm), _guarded(status),
        list(map(";".join, map(attrgetter("codes"), verdicts))), _guarded(severity), _guarded(suggestion),
        _guarded(candidates), _guarded(detail),
    ]
    return render(VALIDATION_COLUMNS, columns)


def _history_rows(changes: Iterable[Change]) -> Iterable[tuple[object, ...]]:
    utc = _UtcCache()
    g = guard_cell
    for c in changes:
        yield (g(c.account_id), g(c.upn), g(c.user_id), g(c.from_availability), g(c.from_activity),
               g(c.to_availability), g(c.to_activity), utc[c.changed_at])


def append_history_csv(path: str | os.PathLike[str], changes: Iterable[Change], encoding: str = "utf-8") -> int:
    """Append transitions to presence_history.csv (header, and with ``utf-8-sig`` the BOM, only when the file is
    new or empty: never a second BOM mid-file). Returns rows appended."""
    buf = io.StringIO()
    w = _writer(buf)
    count = 0
    for row in _history_rows(changes):
        w.writerow(row)
        count += 1
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size:
            size = _cut_torn_tail(fd, size, target)
        body = buf.getvalue()
        if size == 0:
            body = ",".join(HISTORY_COLUMNS) + EOL + body
        if body:
            data = (codecs.BOM_UTF8 if size == 0 and encoding == "utf-8-sig" else b"") + body.encode("utf-8")
            written = os.write(fd, data)  # one write: a reader or a crash sees whole lines or nothing new
            while written < len(data):  # only on a full disk or a signal; finish what was started
                written += os.write(fd, data[written:])
            os.fsync(fd)
    finally:
        os.close(fd)
    return count


def _cut_torn_tail(fd: int, size: int, target: Path) -> int:
    """If the last append was cut short (no final newline), drop the partial line. Returns the new size."""
    if os.pread(fd, 1, size - 1) == b"\n":
        return size
    end = size
    while end > 0:
        start = max(0, end - 65536)
        chunk = os.pread(fd, end - start, start)
        nl = chunk.rfind(b"\n")
        if nl >= 0:
            keep = start + nl + 1
            break
        end = start
    else:
        keep = 0
    log.warning("%s ended with a torn line (%d bytes) from an interrupted append; removed it",
                target, size - keep)
    os.ftruncate(fd, keep)
    return keep
