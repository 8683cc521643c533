"""presence-sync installs like any Python tool: the sdist and the wheel build, and the wheel, installed in a new
virtual environment outside the checkout, runs `--version`, the demo, the local tenant and the benchmark's tenant
from another folder, with the fixtures it carries.

The new environment gets the wheel alone (``pip install --no-deps --no-index``); its dependencies come from this
test's own environment through a ``.pth`` line naming its site-packages (a plain path: the editable install's
finder there is not loaded). ``sync`` and the fixtures must then resolve inside the new site-packages, which the
test asserts, so nothing is read from the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
FIXTURES = ["contoso.answers.json", "contoso.json", "fabrikam.answers.json", "fabrikam.json"]
_SKIP = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".state",
                               "out", "demo", "generated", "bench.json")


def _source_copy(dest: Path) -> Path:
    """The files a clone has (git's list when there is one: tracked and not ignored), copied out of the checkout."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True) if shutil.which("git") and (ROOT / ".git").exists() else None
    if listed is None or listed.returncode != 0:
        return Path(shutil.copytree(ROOT, dest, ignore=_SKIP))
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def _run(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120,
         ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@dataclass
class Installed:
    dist: Path
    wheel: Path
    sdist: Path
    tree_wheel: Path
    venv: Path
    site: Path
    env: dict[str, str]
    elsewhere: Path

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("wheel")
    src = _source_copy(tmp / "src")
    dist = tmp / "dist"
    # The sdist, then the wheel built from it (what `pip install presence-sync-X.tar.gz` does) ...
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, src, cwd=tmp, timeout=300)
    # ... and a wheel straight from the tree, which must hold the same files.
    _run(sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", tmp / "tree", src, cwd=tmp,
         timeout=300)
    (wheel,), (sdist,), (tree_wheel,) = dist.glob("*.whl"), dist.glob("*.tar.gz"), (tmp / "tree").glob("*.whl")
    venv = tmp / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp)
    new_python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", new_python, "install", "--no-deps", "--no-index", "--no-compile",
         "--disable-pip-version-check", wheel, cwd=tmp, timeout=300)
    site = Path(_run(new_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                     cwd=tmp).stdout.strip())
    ours = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}  # the dependencies, after the new site
    (site / "zz_presence_sync_test_deps.pth").write_text("".join(f"{p}\n" for p in sorted(ours)), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRESENCE_SYNC_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(HOME=str(tmp / "home"), COLUMNS="80", PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    return Installed(dist, wheel, sdist, tree_wheel, venv, site, env, elsewhere)


def test_the_wheel_and_the_sdist_carry_the_fixtures(installed: Installed) -> None:
    assert installed.wheel.name == f"presence_sync-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(installed.wheel) as whl, zipfile.ZipFile(installed.tree_wheel) as tree:
        names = set(whl.namelist())
        assert names == set(tree.namelist())  # nothing is lost on the way through the sdist
        entry_points = whl.read(f"presence_sync-{VERSION}.dist-info/entry_points.txt").decode()
    assert {f"sync/emulator/fixtures/{f}" for f in FIXTURES} <= names
    assert "presence-sync = sync.cli:main" in entry_points
    with tarfile.open(installed.sdist) as sdist:
        members = set(sdist.getnames())
    assert {f"presence_sync-{VERSION}/sync/emulator/fixtures/{f}" for f in FIXTURES} <= members


def test_the_installed_package_resolves_outside_the_checkout(installed: Installed) -> None:
    code = ("import json, sync, importlib.metadata as md; from sync.emulator.model.fixtures import "
            "default_fixtures_dir as d; print(json.dumps([sync.__file__, str(d()), md.version('presence-sync'), "
            "sorted(e.name for e in d().iterdir() if e.name.endswith('.json'))]))")
    where, fixtures, version, files = json.loads(_run(installed.bin("python"), "-c", code, cwd=installed.elsewhere,
                                                      env=installed.env).stdout)
    assert Path(where).is_relative_to(installed.site) and Path(fixtures).is_relative_to(installed.site)
    assert not Path(where).is_relative_to(ROOT)
    assert version == VERSION and files == FIXTURES


def test_version_and_demo_from_another_folder(installed: Installed) -> None:
    done = _run(installed.bin("presence-sync"), "--version", cwd=installed.elsewhere, env=installed.env)
    assert done.stdout == f"presence-sync {VERSION}\n"
    work = installed.elsewhere / "demo"
    done = _run(installed.bin("presence-sync"), "demo", "--dir", work, "--cycles", "1", "--interval", "0.5",
                cwd=installed.elsewhere, env=installed.env, timeout=90)
    assert "UPN findings by code and account" in done.stdout and "Traceback" not in done.stderr
    for name, least in (("presence.csv", 100), ("presence_history.csv", 100), ("validation.csv", 200)):
        lines = (work / "out" / name).read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith("account_id,") and len(lines) > least, name
    assert (work / "out" / "report.html").is_file()


def test_the_local_tenant_serves_the_shipped_tenants(installed: Installed) -> None:
    proc = subprocess.Popen([str(installed.bin("presence-sync")), "emulator", "--port", "0", "--state-dir",
                             str(installed.elsewhere / "emulator")], cwd=installed.elsewhere, env=installed.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        start = next((line for line in proc.stdout if line.startswith("{") and "base_url" in line), None)
        assert start is not None, proc.stderr.read() if proc.stderr else ""
        doc = json.loads(start)
        info = httpx.get(f"{doc['base_url']}/_emulator/info", timeout=10,
                         verify=ssl.create_default_context(cafile=doc["ca_file"])).json()
        assert sorted(t["name"] for t in info["tenants"]) == ["contoso", "fabrikam"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


def test_the_benchmarks_tenant_starts_from_the_wheel(installed: Installed) -> None:
    """`presence-sync bench` generates a tenant and runs the local tenant on it in child processes."""
    code = ("import sys; from pathlib import Path; from sync.bench.tenant import start_tenant\n"
            "with start_tenant(Path(sys.argv[1]), [('loadco', 300, 40)], latency=None, latency_fallback=None) as t:\n"
            "    print(len(t.agent_ids('loadco')), [x['name'] for x in t.info['tenants']])")
    done = _run(installed.bin("python"), "-c", code, installed.elsewhere / "bench", cwd=installed.elsewhere,
                env=installed.env, timeout=120)
    count, names = done.stdout.split(" ", 1)
    assert int(count) > 30 and names.strip() == "['loadco']"
