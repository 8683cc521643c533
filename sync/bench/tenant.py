"""The local tenant for the benchmark, in its own process: generated tenants, a latency model, control calls.

``start_tenant`` writes each generated tenant into ``tmp/fixtures/`` and starts ``python -m sync.emulator`` on
an ephemeral port in a child process (its own process group, so a Ctrl-C in the terminal reaches only us and we
stop it). The tenants are generated in a short-lived child process as well: a 100,000-user document costs a few
hundred MB while it is built, and the benchmark reports the peak RSS of *this* process.

The emulator's latency option is passed through as a string. The per-kind log-normal model
(``presence=P50:P99,other=MS``) is the default; an emulator that only knows ``fixed:``/``uniform:``/``exp:``
refuses it at start-up, and the tenant is then started again with ``latency_fallback``. Both defaults can be
changed with the environment variables ``PRESENCE_SYNC_BENCH_LATENCY`` / ``PRESENCE_SYNC_BENCH_LATENCY_FALLBACK``
(``none`` for no latency). ``TenantProcess.latency`` says which model is in force.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

__all__ = [
    "DEFAULT_LATENCY", "LEGACY_LATENCY", "MODEL_LATENCY", "SIMPLE_LATENCY", "TenantError", "TenantProcess",
    "agent_ids_from_document", "cpu_seconds", "generate_tenants", "start_tenant",
]

MODEL_LATENCY = "presence=150:400,other=80"  # per kind: log-normal p50:p99 ms for presence, 80 ms for the rest
SIMPLE_LATENCY = "uniform:100,400"  # what an emulator without per-kind latency accepts
START_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0
# The folder this process imported ``sync`` from (a checkout, or site-packages of an installed wheel): the children
# import the same code from it. They run in the benchmark's own folder, never in the checkout.
_IMPORT_ROOT = Path(__file__).resolve().parents[2]


class TenantError(RuntimeError):
    """The local tenant could not be generated, started or reached."""


def _env_latency(name: str, default: str | None) -> str | None:
    value = os.environ.get(name)
    if value is None:
        return default
    return None if value.strip().lower() in ("", "none", "off") else value.strip()


DEFAULT_LATENCY = _env_latency("PRESENCE_SYNC_BENCH_LATENCY", MODEL_LATENCY)
LEGACY_LATENCY = _env_latency("PRESENCE_SYNC_BENCH_LATENCY_FALLBACK", SIMPLE_LATENCY)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process (Linux ``/proc/<pid>/stat``); None where unavailable."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) ": state is field 3, utime 14, stime 15
    try:
        ticks = int(fields[11]) + int(fields[12])
    except (IndexError, ValueError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def agent_ids_from_document(doc: dict[str, Any]) -> list[str]:
    """Directory ids of the Agent list's UPNs that name a user as written (trimmed, any case), in list order.

    The roster defects the job repairs (prefixes, mail addresses, display names...) are left out, so this is
    about 97% of the list: close to what the job polls, and the same list for both baselines.
    """
    by_upn = {u["userPrincipalName"].casefold(): u["id"] for u in doc.get("users", [])}
    lists = doc.get("site", {}).get("lists", [])
    column = doc.get("upnColumn", "UPN")
    seen: set[str] = set()
    out: list[str] = []
    for item in (lists[0]["items"] if lists else []):
        upn = item.get("fields", {}).get(column)
        uid = by_upn.get(upn.strip().casefold()) if isinstance(upn, str) else None
        if uid and uid not in seen:
            seen.add(uid)
            out.append(uid)
    return out


def _generate(fixtures: Path, ids_dir: Path, tenants: Sequence[tuple[str, int, int]], seed: int) -> None:
    """Write ``<name>.json`` fixtures and ``<name>.ids.json`` agent ids (runs in the generator child)."""
    from sync.emulator.model.generate import generate_tenant

    for name, users, agents in tenants:
        doc = generate_tenant(users, agents, seed, name)
        (fixtures / f"{name}.json").write_text(json.dumps(doc), encoding="utf-8")
        (ids_dir / f"{name}.ids.json").write_text(json.dumps(agent_ids_from_document(doc)), encoding="utf-8")
        del doc


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_IMPORT_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def generate_tenants(tmp: Path, tenants: Sequence[tuple[str, int, int]], seed: int = 7) -> tuple[Path, Path]:
    """Generate ``tenants`` into ``tmp/fixtures`` (ids into ``tmp/ids``) in a child process; returns both dirs."""
    fixtures, ids_dir = tmp / "fixtures", tmp / "ids"
    fixtures.mkdir(parents=True, exist_ok=True)
    ids_dir.mkdir(parents=True, exist_ok=True)
    names = [t[0] for t in tenants]
    if len(set(names)) != len(names):
        raise ValueError(f"tenant names must be distinct: {names}")
    code = ("import json, sys; from pathlib import Path; from sync.bench.tenant import _generate; "
            "_generate(Path(sys.argv[1]), Path(sys.argv[2]), [tuple(t) for t in json.loads(sys.argv[3])], "
            "int(sys.argv[4]))")
    spec = json.dumps([[n, int(u), int(a)] for n, u, a in tenants])
    done = subprocess.run([sys.executable, "-c", code, str(fixtures), str(ids_dir), spec, str(seed)],
                          capture_output=True, text=True, env=_child_env(), cwd=tmp, timeout=600)
    if done.returncode != 0:
        raise TenantError(f"generating the tenants failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return fixtures, ids_dir


class _Output:
    """Drains a child's pipe in a thread (a full pipe would stall the tenant); keeps the last lines."""

    def __init__(self, stream: Any, lines: queue.Queue[str] | None = None, keep: int = 200) -> None:
        self.tail: collections.deque[str] = collections.deque(maxlen=keep)
        self._lines = lines
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream: Any) -> None:
        try:
            for line in stream:
                self.tail.append(line.rstrip("\n"))
                if self._lines is not None:
                    self._lines.put(line)
        except (OSError, ValueError):
            pass
        finally:
            if self._lines is not None:
                self._lines.put("")  # end of output

    def join(self, timeout: float = 2.0) -> None:
        self._thread.join(timeout)


class TenantProcess:
    """A running local tenant: where it is, how to trust it, its control API and (when we started it) its process."""

    def __init__(self, base_url: str, ca_file: Path, *, proc: subprocess.Popen[str] | None = None,
                 latency: str | None = None, ids_dir: Path | None = None, fixtures_dir: Path | None = None,
                 outputs: tuple[_Output, _Output] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.ca_file = Path(ca_file)
        self.latency = latency
        self.ids_dir = ids_dir
        self.fixtures_dir = fixtures_dir
        self._proc = proc
        self._outputs = outputs
        self._ssl: ssl.SSLContext | None = None
        self._client: httpx.Client | None = None
        self.info: dict[str, Any] = {}

    @classmethod
    def attach(cls, base_url: str, ca_file: Path | str) -> TenantProcess:
        """A tenant someone else runs (e.g. the test suite's in-process emulator); ``stop()`` leaves it alone."""
        t = cls(base_url, Path(ca_file))
        t.info = t.control("GET", "/_emulator/info")
        return t

    # --- where and how ---------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def ssl_context(self) -> ssl.SSLContext:
        """An SSLContext trusting the tenant's CA (one per TenantProcess)."""
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=str(self.ca_file))
        return self._ssl

    def tenant(self, name: str) -> dict[str, Any]:
        """The ``/_emulator/info`` entry of a tenant, by name or tenant id."""
        for t in self.info.get("tenants", []):
            if name in (t.get("name"), t.get("tenant_id")):
                return dict(t)
        known = ", ".join(str(t.get("name")) for t in self.info.get("tenants", []))
        raise KeyError(f"no tenant {name!r} in the local tenant (has: {known})")

    def confidential_app(self, name: str) -> dict[str, Any]:
        """The tenant's confidential app with a client secret (what client credentials need)."""
        for app in self.tenant(name).get("apps", []):
            if app.get("kind") == "confidential" and app.get("client_secret") and not app.get("secret_expired"):
                return dict(app)
        raise KeyError(f"tenant {name!r} has no confidential app with a usable client secret")

    def agent_ids(self, name: str) -> list[str]:
        """Agent user ids of a tenant ``start_tenant`` generated (see ``agent_ids_from_document``)."""
        if self.ids_dir is None:
            raise KeyError("agent ids are known only for tenants start_tenant generated; use fetch_user_ids")
        path = self.ids_dir / f"{name}.ids.json"
        if not path.exists():
            raise KeyError(f"no generated tenant {name!r}")
        return list(json.loads(path.read_text(encoding="utf-8")))

    # --- control API -----------------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.base_url, verify=self.ssl_context(), timeout=60,
                                        trust_env=False)
        return self._client

    def control(self, method: str, path: str, json: Any = None) -> Any:
        """Call the control API (``/_emulator/<path>``; a leading ``/_emulator`` is optional); returns the JSON."""
        path = "/" + path.lstrip("/")
        if not path.startswith("/_emulator/"):
            path = "/_emulator" + path
        try:
            r = self._http().request(method.upper(), path, json=json)
        except httpx.HTTPError as exc:
            raise TenantError(f"{method.upper()} {path}: {exc}") from exc
        if r.status_code >= 400:
            raise TenantError(f"{method.upper()} {path}: HTTP {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None

    def stats(self) -> dict[str, Any]:
        """``GET /_emulator/stats``: requests by endpoint, statuses, 429s sent, presence window peak."""
        return dict(self.control("GET", "/_emulator/stats"))

    def fresh_budgets(self) -> None:
        """Counters and throttling budgets back to zero, faults (the latency model) kept: call between phases,
        or the previous phase's presence calls still count in the next one's 30 s window. The presence clock
        goes back to real time too (``/_emulator/reset``), so a ``--clock-*`` extra argument does not survive."""
        faults = self.control("GET", "/_emulator/faults")
        self.control("POST", "/_emulator/reset")
        self.control("POST", "/_emulator/faults", {**faults, "replace": True})

    def cpu_seconds(self) -> float | None:
        """CPU seconds the tenant's process has used so far (None when attached or not on Linux)."""
        return cpu_seconds(self._proc.pid) if self._proc is not None else None

    def output_tail(self) -> str:
        """The last lines the child printed (stdout, then stderr): for error messages."""
        if self._outputs is None:
            return ""
        return "\n".join([*self._outputs[0].tail, *self._outputs[1].tail])

    # --- lifetime ----------------------------------------------------------------------------------------

    def stop(self) -> int | None:
        """Stop the child (SIGTERM, then SIGKILL after 15 s); returns its exit code. Attached: only closes."""
        if self._client is not None:
            self._client.close()
            self._client = None
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)
        if self._outputs is not None:
            for out in self._outputs:
                out.join()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        return proc.returncode

    def __enter__(self) -> TenantProcess:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _launch(fixtures: Path, state_dir: Path, latency: str | None, extra_args: Sequence[str],
            timeout: float) -> tuple[TenantProcess | None, int | None, str]:
    """Start one child; (tenant, None, "") once it printed its JSON line, else (None, exit code, output)."""
    cmd = [sys.executable, "-m", "sync.emulator", "--fixtures", str(fixtures), "--port", "0",
           "--state-dir", str(state_dir), "--log-level", "warning"]
    if latency:
        cmd += ["--latency", latency]
    cmd += list(extra_args)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, encoding="utf-8", errors="replace", env=_child_env(), cwd=state_dir,
                            process_group=0)
    lines: queue.Queue[str] = queue.Queue()
    outputs = (_Output(proc.stdout, lines), _Output(proc.stderr))
    tenant = TenantProcess("https://127.0.0.1", Path("."), proc=proc, latency=latency, outputs=outputs)
    try:
        return _wait_for_start(tenant, proc, lines, outputs, timeout)
    except BaseException:  # Ctrl-C or a bad start-up line: the child has its own process group, stop it here
        tenant.stop()
        raise


def _wait_for_start(tenant: TenantProcess, proc: subprocess.Popen[str], lines: queue.Queue[str],
                    outputs: tuple[_Output, _Output], timeout: float) -> tuple[TenantProcess | None, int | None, str]:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            tenant.stop()
            return None, None, f"no start-up line within {timeout:.0f} s\n{tenant.output_tail()}"
        try:
            line = lines.get(timeout=min(left, 0.5))
        except queue.Empty:
            continue
        if line == "":  # stdout closed: the child is gone
            rc = proc.wait(timeout=STOP_TIMEOUT)
            outputs[1].join()
            tail = tenant.output_tail()
            tenant.stop()
            return None, rc, tail
        line = line.strip()
        if line.startswith("{") and "base_url" in line:
            doc = json.loads(line)
            tenant.base_url, tenant.ca_file = str(doc["base_url"]).rstrip("/"), Path(doc["ca_file"])
            return tenant, None, ""


def start_tenant(tmp: Path, tenants: Sequence[tuple[str, int, int]], *, seed: int = 7,
                 latency: str | None = DEFAULT_LATENCY, latency_fallback: str | None = LEGACY_LATENCY,
                 extra_args: Sequence[str] = (), timeout: float = START_TIMEOUT) -> TenantProcess:
    """Generate ``(name, users, agents)`` tenants into ``tmp/fixtures`` and run the local tenant on them.

    ``latency`` goes to ``--latency`` verbatim (None: no latency). If the emulator refuses it at start-up and
    there is a different ``latency_fallback``, the tenant is started once more with the fallback (None: no
    second try). Raises ``TenantError``
    when it does not come up within ``timeout`` seconds (the child is stopped first).
    """
    tmp = Path(tmp)
    fixtures, ids_dir = generate_tenants(tmp, tenants, seed)
    state_dir = tmp / "emulator"
    state_dir.mkdir(parents=True, exist_ok=True)
    tenant, rc, output = _launch(fixtures, state_dir, latency, extra_args, timeout)
    refused = tenant is None and rc == 2 and "latency" in output.lower()
    if refused and latency and latency_fallback and latency_fallback != latency:
        tenant, rc, output = _launch(fixtures, state_dir, latency_fallback, extra_args, timeout)
    if tenant is None:
        code = f" (exit {rc})" if rc is not None else ""
        raise TenantError(f"the local tenant did not start{code}:\n{output.strip()[-3000:]}")
    tenant.ids_dir, tenant.fixtures_dir = ids_dir, fixtures
    try:
        tenant.info = tenant.control("GET", "/_emulator/info")
    except TenantError:
        tenant.stop()
        raise
    return tenant
