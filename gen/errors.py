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
        super().__init__(f"{field} = {value!r}: {allowed}")
