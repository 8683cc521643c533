"""``python -m sync.emulator`` as a real subprocess: banner, serving, signals and exit code 2."""

from __future__ import annotations

import json
import queue
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sync.emulator.cli import main

ROOT = Path(__file__).resolve().parents[2]


def start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-u", "-m", "sync.emulator", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read_until_json(proc: subprocess.Popen[str], timeout: float = 15.0) -> tuple[list[str], dict[str, str]]:
    """Banner lines up to the final JSON line with base_url and ca_file."""
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    out = proc.stdout

    def pump() -> None:
        for x in iter(out.readline, ""):
            lines.put(x)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            continue
        seen.append(line.rstrip("\n"))
        if line.startswith("{"):
            return seen, json.loads(line)
    raise AssertionError(f"no base URL printed within {timeout} s: {seen}")


@pytest.fixture()
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[str], dict[str, str]]]:
    proc = start(["--port", "0", "--state-dir", str(tmp_path / "state"), "--tenants", "fabrikam",
                  "--error-rate", "0", "--latency", "fixed:1", "--freeze-clock", "--clock-start",
                  "2026-03-02T09:00:00Z"])
    try:
        lines, where = read_until_json(proc)
        yield proc, lines, where
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_serves_and_prints_what_clients_need(running: tuple[subprocess.Popen[str], list[str], dict[str, str]],
                                             tmp_path: Path) -> None:
    proc, lines, where = running
    text = "\n".join(lines)
    base, ca = where["base_url"], where["ca_file"]
    assert base.startswith("https://127.0.0.1:") and not base.endswith(":0")
    assert ca == str(tmp_path / "state" / "ca.pem") and Path(ca).exists()
    assert f"export SSL_CERT_FILE={ca} REQUESTS_CA_BUNDLE={ca}" in text
    assert "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d" in text and "fabrikam.com" in text
    assert "33333333-4444-4555-8666-777777777777" in text and f"{base}/sites/fabrikam-agents" in text
    assert "fabrikam-app-secret-value" not in text and "Fabrikam-Svc!2026" not in text  # no --show-secrets
    assert "/_emulator/info" in text and "contoso" not in text
    ctx = ssl.create_default_context(cafile=ca)
    with httpx.Client(base_url=base, verify=ctx) as c:
        info = c.get("/_emulator/info").json()
        assert [t["name"] for t in info["tenants"]] == ["fabrikam"] and info["ca_file"] == ca
        assert c.get("/_emulator/clock").json()["now"].startswith("2026-03-02T09:00:00")
        assert c.get("/_emulator/faults").json()["latency"] == "fixed:1"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_sigint_exits_0(running: tuple[subprocess.Popen[str], list[str], dict[str, str]]) -> None:
    proc, _, _ = running
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0


@pytest.mark.parametrize("args", [["--bogus"], ["--error-rate", "2"], ["--latency", "soon"],
                                  ["--fixtures", "/nonexistent/fixtures"], ["--tenants", "nowhere"],
                                  ["--burst-429", "x"]])
def test_bad_arguments_exit_2_with_one_line(args: list[str], tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "sync.emulator", "--state-dir", str(tmp_path), *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "error:" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_port_in_use_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["--port", str(port), "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and len(err.strip().splitlines()) == 1
