"""report.html end to end: the job runs a few cycles against the local tenant with `--report`, then
`presence-sync report` writes the page and a real headless Chromium (Debian's chromium) renders it: no console
error, nothing fetched, user input shown as text, and the counts in the rendered DOM equal validation.csv's."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import e2e_support as sup
import pytest

from sync.emulator.server import EmulatorServer

# A roster with the usual mistakes and cells that would be markup or formulas if they were not escaped.
ROSTER = [
    "alex.wilber@contoso.com", " lee.gu@contoso.com", "sip:isaiah.langer@contoso.com", "Adele Vance",
    "<script>alert('x')</script>@contoso.com", '<img src="https://example.com/x.png">', "=HYPERLINK(\"http://x\")",
    "megan.bowen@contoso.net", "", "lee.gu@contoso.com", "nobody.at.all@contoso.com", "diego.siciliani@contoso.com",
]


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed: `apt-get install -y chromium` (.ci/run installs it before the tests)")
    return exe


@dataclass
class Rendered:
    dom: str
    console: list[str]


def render(page: Path, profile: Path) -> Rendered:
    """The DOM after Chromium loaded ``page`` (file:// URL), and every console message it logged."""
    args = [chromium(), "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()]
    if os.geteuid() == 0:
        args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return Rendered(proc.stdout, [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln])


@dataclass
class Dom(HTMLParser):
    """What the tests read from the rendered page."""

    codes: Counter[tuple[str, str]] = field(default_factory=Counter)
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)
    bad_rows: Counter[str] = field(default_factory=Counter)
    tags: Counter[str] = field(default_factory=Counter)
    texts: list[str] = field(default_factory=list)
    _cell: tuple[str, str, str] | None = None

    def __post_init__(self) -> None:
        super().__init__()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags[tag] += 1
        if tag == "tr" and a.get("class") == "bad-row":
            self.bad_rows[a.get("data-account") or ""] += 1
        if tag == "td" and "data-account" in a:
            kind = "code" if "data-code" in a else "status" if "data-status" in a else ""
            self._cell = (kind, a["data-account"] or "", a.get("data-code") or a.get("data-status") or "")

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if self._cell is not None and data.strip():
            kind, account, name = self._cell
            (self.codes if kind == "code" else self.statuses)[(account, name)] += int(data.replace(",", ""))
            self._cell = None


def parse(dom: str) -> Dom:
    d = Dom()
    d.feed(dom)
    return d


@dataclass
class Job:
    root: Path
    state: Path
    out: Path


@pytest.fixture(scope="module")
def job(emulator: EmulatorServer, tenant_info: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Job]:
    """contoso with the roster above, a few cycles at --interval 1 with --report (rebuilt at most every 1 s)."""
    root = tmp_path_factory.mktemp("report")
    roster = root / "roster.csv"
    roster.write_text("Id,UPN\n" + "".join(f'{i},"{u.replace(chr(34), chr(34) * 2)}"\n'
                                          for i, u in enumerate(ROSTER, 1)), encoding="utf-8")
    args, state, out = sup.contoso_app_run(root, tenant_info, emulator.tls.ca_cert)
    args = [a for a in args if a != "--once"]
    with sup.control(emulator.base_url, emulator.tls.ca_cert) as ctl:
        ctl.post("/_emulator/reset")
        ctl.post("/_emulator/clock", json={"speed": 600})
        try:
            run = sup.Running([*args, "--interval", "1", "--roster", str(roster), "--report", "--report-every", "1",
                               "--report-dir", str(root / "live")], cwd=root)
            ok = run.wait_for(lambda _: len(run.cycle_lines("contoso")) >= 4, 120)
            code = run.terminate()
            assert ok and code == 0, run.text[-3000:]
            assert "report refreshed" in run.text
        finally:
            ctl.post("/_emulator/reset")
    yield Job(root, state, out)


def expected(out: Path) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]], Counter[str]]:
    """(account, code), (account, status) and not-ok rows per account, counted from validation.csv."""
    codes: Counter[tuple[str, str]] = Counter()
    statuses: Counter[tuple[str, str]] = Counter()
    bad: Counter[str] = Counter()
    for r in sup.read_csv(out / "validation.csv")[1]:
        statuses[(r["account_id"], r["status"])] += 1
        bad[r["account_id"]] += r["status"] != "ok"
        for c in filter(None, r["codes"].split(";")):
            codes[(r["account_id"], c)] += 1
    return codes, statuses, bad


def test_chromium_reports_console_errors_and_blocked_loads(tmp_path: Path) -> None:
    """The check below is not blind: a page with a script error and an external stylesheet is caught."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
                    "'none'; script-src 'unsafe-inline'\"><link rel=\"stylesheet\" href=\"https://example.com/a.css\">"
                    "</head><body><p>x</p><script>undefinedFunction()</script></body></html>", encoding="utf-8")
    seen = render(page, tmp_path / "profile")
    assert any("undefinedFunction" in ln for ln in seen.console), seen.console
    assert any("example.com/a.css" in ln for ln in seen.console), seen.console


def test_report_renders_in_chromium_with_the_counts_of_validation_csv(job: Job, tmp_path: Path) -> None:
    proc = sup.run_cli(["report", "--state-dir", str(job.state), "--out", str(tmp_path / "r")], cwd=job.root)
    assert proc.returncode == 0, proc.stderr
    page = tmp_path / "r" / "report.html"
    assert proc.stdout.strip() == str(page)
    assert "report: step 1/6" in proc.stderr
    seen = render(page, tmp_path / "profile")
    assert seen.console == []
    dom = parse(seen.dom)
    codes, statuses, bad = expected(job.out)
    assert sum(statuses.values()) == len(ROSTER)
    assert dom.codes == codes
    assert dom.statuses == statuses
    assert dom.bad_rows == bad and sum(bad.values()) > 0
    # User input is text: no script or image element came from it, the cells read as typed.
    assert dom.tags["script"] == 0 and dom.tags["img"] == 0
    text = "".join(dom.texts)
    for cell in ("<script>alert('x')</script>@contoso.com", '<img src="https://example.com/x.png">',
                 '=HYPERLINK("http://x")'):
        assert cell in text
    for heading in ("UPN findings by code and account", "Findings over time", "Availability by hour of day (UTC)",
                    "Freshness and cycle health", "Agents whose presence changes most"):
        assert heading in text
    assert dom.tags["svg"] >= 2  # the charts are inline


def test_run_report_keeps_report_html_current(job: Job, tmp_path: Path) -> None:
    page = job.root / "live" / "report.html"
    seen = render(page, tmp_path / "profile")
    assert seen.console == []
    dom = parse(seen.dom)
    codes, statuses, _ = expected(job.out)
    assert dom.codes == codes and dom.statuses == statuses


def test_report_usage_errors(job: Job, tmp_path: Path) -> None:
    proc = sup.run_cli(["report", "--state-dir", str(tmp_path / "none"), "--out", str(tmp_path)], cwd=tmp_path)
    assert proc.returncode == 2 and "no store at" in proc.stderr
    proc = sup.run_cli(["report", "--state-dir", str(job.state), "--out", str(tmp_path), "--account", "nope"],
                       cwd=tmp_path)
    assert proc.returncode == 2 and "--account nope: the store has nothing for it" in proc.stderr
    proc = sup.run_cli(["report", "--state-dir", str(job.state), "--out", str(tmp_path), "--since", "yesterday"],
                       cwd=tmp_path)
    assert proc.returncode == 2 and "not an ISO 8601 time" in proc.stderr
    assert "Traceback" not in proc.stderr
