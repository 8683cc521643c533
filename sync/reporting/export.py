"""The audit export: history, snapshot, cycles and (optionally) a daily summary, as CSV, xlsx or Parquet.

Read from the store with pandas (reporting.data), filtered by account, agent and a half-open time range, and
written atomically: every file goes to a temporary name in the target folder and is renamed when complete.

Cells: CSV keeps the project's conventions (outputs.csv: UTF-8, with a byte-order mark for ``--csv-encoding
utf-8-sig``; ISO 8601 UTC with milliseconds, true/false, CRLF, a leading apostrophe on a text cell starting with
= + - @ tab or CR). xlsx cells are typed: times as UTC date-times
(Excel has no time zones; the column names say _utc), text always as text (never a formula) and a dangerous text
cell carries Excel's quote prefix. Parquet (needs pyarrow: ``pip install presence-sync[parquet]``) keeps
time-zone-aware UTC timestamps.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import UsageError
from ..outputs.csv import CYCLE_COLUMNS, EOL, HISTORY_COLUMNS, SNAPSHOT_COLUMNS
from .data import Reader, Scope, connect, read_baseline, read_cycles, read_transitions, state_spans
from .progress import NO_PROGRESS, Steps
from .timeline import daily_summary

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["FORMATS", "export_frames", "export_history", "run_export", "write_frames"]

FORMATS = ("csv", "xlsx", "parquet")
_DANGER = re.compile(r"^[=+\-@\t\r]")
_DANGER_ANYWHERE = re.compile("\x00[=+\\-@\t\r]")


def _history(conn: Reader, scope: Scope) -> pd.DataFrame:
    df = read_transitions(conn, scope)
    return df.rename(columns={"changed_at": "changed_at_utc"})[list(HISTORY_COLUMNS)]


def _snapshot(conn: Reader, scope: Scope) -> pd.DataFrame:
    """Each agent's state as of the range's end (exclusive): the transition that led into it."""
    df = read_baseline(conn, scope, scope.end)
    out = pd.DataFrame({"account_id": df["account_id"], "upn": df["upn"], "user_id": df["user_id"],
                        "availability": df["to_availability"], "activity": df["to_activity"],
                        "since_utc": df["changed_at"]})
    out["as_of_utc"] = pd.Series(pd.Timestamp(scope.end).tz_convert("UTC"), index=out.index,
                                 dtype="datetime64[ns, UTC]")
    return out[list(SNAPSHOT_COLUMNS)].reset_index(drop=True)


def _cycles(conn: Reader, scope: Scope) -> pd.DataFrame:
    df = read_cycles(conn, scope).rename(columns={"started_at": "started_at_utc"})
    df["needs_human"] = df["needs_human"].astype(bool)
    df["error"] = df["error"].fillna("")
    return df[list(CYCLE_COLUMNS)]


def export_frames(db: str | os.PathLike[str], scope: Scope, daily: bool = False,
                  progress: Steps = NO_PROGRESS) -> dict[str, pd.DataFrame]:
    """The export's tables by name: history, snapshot, cycles (and daily_summary)."""
    steps: list[tuple[str, Callable[[Reader, Scope], pd.DataFrame]]] = [
        ("history", _history), ("snapshot", _snapshot), ("cycles", _cycles)]
    if daily:
        steps.append(("daily_summary", lambda c, s: daily_summary(state_spans(c, s))))
    conn = connect(db)
    frames: dict[str, pd.DataFrame] = {}
    try:
        for name, read in steps:
            progress.step(f"reading {name}")
            frames[name] = read(conn, scope)
    finally:
        conn.close()
    return frames


# --- writing ------------------------------------------------------------------------------------------------------


def _atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """``write(temporary path)``, fsync, rename over ``path``: a reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _is_time(col: pd.Series) -> bool:
    return isinstance(col.dtype, pd.DatetimeTZDtype)


def _csv_text(df: pd.DataFrame) -> pd.DataFrame:
    """Every cell as the project's CSV writes it; text cells guarded against formula injection."""
    out = pd.DataFrame(index=df.index)
    for name in df.columns:
        col = df[name]
        if _is_time(col):  # numpy formats in C; strftime would cost seconds per million cells
            text = np.datetime_as_string(col.dt.tz_convert(None).to_numpy().astype("datetime64[ms]"), unit="ms")
            out[name] = np.where(col.isna().to_numpy(), "", np.char.add(text, "Z")) if len(col) else col
        elif col.dtype == bool:
            out[name] = col.map({True: "true", False: "false"})
        elif name == "duration_s":
            out[name] = col.map("{:.3f}".format)
        elif col.dtype == object:
            text = col.fillna("").astype(str)
            # one C-level scan of the joined column; per-cell work only when a dangerous cell exists
            if _DANGER_ANYWHERE.search("\x00" + "\x00".join(text.tolist())):
                text = text.where(~text.str.contains(_DANGER), "'" + text)
            out[name] = text
        else:
            out[name] = col
    return out


def _write_csv(df: pd.DataFrame, path: Path, encoding: str = "utf-8") -> None:
    _csv_text(df).to_csv(path, index=False, lineterminator=EOL, encoding=encoding)


def _write_xlsx(frames: dict[str, pd.DataFrame], path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    for name, df in frames.items():
        sheet = book.create_sheet(name)
        sheet.append(list(df.columns))
        cols = [col.dt.tz_convert("UTC").dt.tz_localize(None).astype(object).where(col.notna(), None)
                if _is_time(col) else col.astype(object) for _, col in df.items()]
        for row in zip(*cols, strict=True):
            sheet.append([_xlsx_cell(sheet, v, WriteOnlyCell) for v in row])
    book.save(path)


def _xlsx_cell(sheet: Any, value: Any, cell_type: Any) -> Any:
    if isinstance(value, str):
        cell = cell_type(sheet, value=value)
        cell.data_type = "s"  # text, never a formula, whatever it starts with
        if _DANGER.match(value):
            cell.quotePrefix = True  # and Excel keeps it text when the cell is edited
        return cell
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value.item() if hasattr(value, "item") else value


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    df.to_parquet(path, index=False)


def _need_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise UsageError("--format parquet needs pyarrow, which is not installed.",
                         hint="Install it with `pip install 'presence-sync[parquet]'` (or pip install pyarrow), "
                              "or use --format csv or xlsx.") from None


def write_frames(frames: dict[str, pd.DataFrame], out_dir: Path, fmt: str,
                 progress: Steps = NO_PROGRESS, encoding: str = "utf-8") -> list[Path]:
    """The tables as export_NAME.csv / export_NAME.parquet files, or one export.xlsx with a sheet per table."""
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}.")
    if fmt == "xlsx":
        progress.step("writing export.xlsx")
        return [_atomic(out_dir / "export.xlsx", lambda p: _write_xlsx(frames, p))]
    if fmt == "parquet":
        _need_pyarrow()
    paths = []
    for name, df in frames.items():
        target = out_dir / f"export_{name}.{fmt}"
        progress.step(f"writing {target.name}")
        write = partial(_write_csv, df, encoding=encoding) if fmt == "csv" else partial(_write_parquet, df)
        paths.append(_atomic(target, write))
    return paths


def run_export(db: str | os.PathLike[str], out_dir: Path, scope: Scope, fmt: str = "csv", daily: bool = False,
               progress: Steps = NO_PROGRESS, encoding: str = "utf-8") -> list[Path]:
    """The `export` command: read, then write every table (CSV in ``encoding``); returns the files written."""
    if fmt == "parquet":
        _need_pyarrow()  # before any work
    progress.begin("export", 3 + daily + (1 if fmt == "xlsx" else 3 + daily))
    frames = export_frames(db, scope, daily, progress)
    paths = write_frames(frames, out_dir, fmt, progress, encoding)
    progress.done(f"export: {sum(len(f) for f in frames.values()):,} rows in {len(paths)} file(s)")
    return paths


def export_history(store: Store, out_dir: str | os.PathLike[str], accounts: Sequence[str] | None = None,
                   since: datetime | None = None, until: datetime | None = None,
                   encoding: str = "utf-8") -> list[Path]:
    """export_history.csv, export_snapshot.csv and export_cycles.csv of the store for [since, until)."""
    scope = Scope(tuple(accounts) if accounts is not None else None, None, since, until or datetime.now(UTC))
    location = store.url if store.url is not None else store.path
    assert location is not None
    return write_frames(export_frames(location, scope), Path(out_dir), "csv", encoding=encoding)
