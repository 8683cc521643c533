"""One ``run`` per state directory: a second one exits 2 at once and says who holds it; the lock goes with the
process that held it, so the next start is never blocked."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import e2e_support as sup

from sync.emulator.server import EmulatorServer


def test_a_second_run_on_one_state_directory_exits_2_and_the_lock_dies_with_its_holder(
        tmp_path: Path, emulator: EmulatorServer, tenant_info: dict[str, Any]) -> None:
    args, state, out = sup.contoso_app_run(tmp_path, tenant_info, emulator.tls.ca_cert)
    looping = [a for a in args if a != "--once"] + ["--interval", "1"]
    first = sup.Running(looping, cwd=tmp_path)
    try:
        assert first.wait_for(lambda _: len(first.cycle_lines("contoso")) >= 1, 60), first.text
        second = sup.run_cli(args, cwd=tmp_path)
        assert second.returncode == 2, second.stderr
        assert f"another presence-sync (pid {first.proc.pid}, since " in second.stderr
        assert str(state) in " ".join(second.stderr.split()) and "Traceback" not in second.stderr
    finally:
        assert first.terminate(signal.SIGTERM) == 0, first.text
    again = sup.run_cli(args, cwd=tmp_path)  # the holder is gone: the lock went with it
    assert again.returncode == 0, again.stderr


def test_a_killed_run_never_blocks_the_next_start(tmp_path: Path, emulator: EmulatorServer,
                                                  tenant_info: dict[str, Any]) -> None:
    args, state, out = sup.contoso_app_run(tmp_path, tenant_info, emulator.tls.ca_cert)
    first = sup.Running([a for a in args if a != "--once"] + ["--interval", "1"], cwd=tmp_path)
    assert first.wait_for(lambda _: len(first.cycle_lines("contoso")) >= 1, 60), first.text
    first.proc.kill()  # SIGKILL: no clean-up runs
    first.finish()
    assert (state / "presence-sync.lock").exists()  # the file stays; the lock on it does not
    again = sup.run_cli(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
