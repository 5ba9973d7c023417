"""Runnable examples: `python -m genesis.examples.<name> --help`."""
