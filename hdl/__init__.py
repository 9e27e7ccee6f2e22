"""Amaranth periphery of the IMC macro: one Component per block, streams between them.

Every block takes the resolved :class:`imcgen.core.config.MacroConfig` and derives its widths
from it.
"""
