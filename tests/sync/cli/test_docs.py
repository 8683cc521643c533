"""Every command and every option of ``presence-sync`` is documented in README.md (names read from the CLI itself)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from sync.cli import app
from sync.emulator.cli import build_parser

README = Path(__file__).resolve().parents[3] / "README.md"
GROUP = typer.main.get_command(app)
COMMANDS = sorted(GROUP.commands)  # type: ignore[attr-defined]


def readme() -> str:
    return README.read_text(encoding="utf-8")


def command_options(name: str) -> list[str]:
    """The long option names a user can type after ``presence-sync NAME`` (``--help`` aside)."""
    if name == "emulator":  # its arguments are passed through to the local tenant's own parser
        opts = [o for action in build_parser()._actions for o in action.option_strings]
    else:
        command = GROUP.commands[name]  # type: ignore[attr-defined]
        opts = [o for p in command.params if p.param_type_name == "option" for o in (*p.opts, *p.secondary_opts)]
    return sorted({o for o in opts if o.startswith("--") and o != "--help"})


def documented(option: str, text: str) -> bool:
    """``--out`` counts when it appears as its own word (not only as part of ``--output``)."""
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def test_the_cli_has_the_commands_of_the_issue() -> None:
    assert set(COMMANDS) == {"run", "validate", "export", "report", "login", "encrypt-secret", "emulator", "demo",
                             "bench", "doctor", "status"}


def test_readme_names_every_command() -> None:
    text = readme()
    missing = [c for c in COMMANDS if f"presence-sync {c}" not in text and f"`{c}`" not in text]
    assert not missing, f"README.md does not document these commands: {missing}"


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_names_every_option(command: str) -> None:
    options = command_options(command)
    assert options, command
    text = readme()
    missing = [o for o in options if not documented(o, text)]
    assert not missing, f"README.md does not mention these options of `presence-sync {command}`: {missing}"


def test_documented_check_is_exact() -> None:
    assert documented("--out", "use `--out DIR`")
    assert not documented("--out", "use --output DIR")
    assert not documented("--once", "--once-more")
