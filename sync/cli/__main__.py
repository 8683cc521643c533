"""``python -m sync.cli``."""

from . import main

main()
