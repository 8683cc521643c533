# The README's two commands: `make demo` and `make test`. Both create .venv on first use.
PY := .venv/bin/python
.PHONY: venv demo test lint emulator bench clean

venv:
	@python3 scripts/bootstrap.py

demo: venv
	@$(PY) -m sync.cli demo

test: venv lint
	@$(PY) -m pytest -q -p no:cacheprovider tests

lint: venv
	@$(PY) -m ruff check sync tests scripts
	@$(PY) -m mypy

emulator: venv
	@$(PY) -m sync.emulator

bench: venv
	@$(PY) -m sync.cli bench

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache out demo
