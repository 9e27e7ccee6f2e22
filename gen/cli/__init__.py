"""The ``imcgen`` command line: argument parsing and one module per group of subcommands.

Nothing imports this package; it imports every layer below it (docs/architecture.md).
"""

from .parser import main

__all__ = ["main"]
