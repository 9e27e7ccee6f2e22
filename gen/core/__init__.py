"""The core every other layer stands on: the configuration schema and its tables, the timing
model, shared codes, counter-based draws, errors and the checks of user input.

It imports nothing else of imcgen; ``hdl`` and ``golden`` import only this and ``link``.
"""
