"""The control API under ``/_emulator/`` that tests, the demo and scripts use to drive the tenant."""
