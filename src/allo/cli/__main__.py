"""``python -m allo.cli``."""

from allo.cli.app import main

main()
