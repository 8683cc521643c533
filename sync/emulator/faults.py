"""(being written)"""

from __future__ import annotations

from typing import Any

from .state import EmulatorState


def wrap(app: Any, state: EmulatorState) -> Any:
    return app
