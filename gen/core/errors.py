"""The one error type users see: it names the field, the value and what is allowed."""


class ImcError(ValueError):
    """Invalid configuration, weights, inputs or files.

    The CLI prints ``str(err)`` as a single line and exits with code 2.

    Parameters
    ----------
    field : str
        The configuration key, array or file at fault (``rows_per_read``, ``weights``...).
    value : object
        The offending value, as the user gave it.
    allowed : str
        What would have been accepted.
    """

    def __init__(self, field, value, allowed):
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{_line(str(field), 80, tail=True)} = {_shown(value)}: "
                         f"{_line(allowed, 400)}")


def _line(text, limit, tail=False):
    """``text`` on one line (line breaks escaped, as a message passed through may hold them),
    at most ``limit`` characters; ``tail`` keeps the end (a field's key ends a long path)."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    if len(text) <= limit:
        return text
    return "..." + text[3 - limit:] if tail else text[:limit - 3] + "..."


def _shown(value, limit=60):
    """The offending value as the user would type it (``repr``: quotes, escapes), shortened
    when huge (an integer of a thousand digits, a long path)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit - 20]}...{text[-8:]} ({len(text)} characters)"


class SimulationError(RuntimeError):
    """A build or simulation failed (not the user's input).

    ``summary`` is one line naming what failed, the build directory and the log; ``str()``
    adds the tail of the log for test reports.
    """

    def __init__(self, summary, log=None):
        self.summary = summary
        self.log = log
        tail = ""
        if log is not None:
            try:
                from pathlib import Path

                tail = "\n" + "\n".join(Path(log).read_text(errors="replace").splitlines()[-40:])
            except OSError:
                tail = "\n(no log)"
        super().__init__(summary + tail)
