"""Validation of everything a user hands in: arrays, files and output paths.

Each problem is one :class:`ImcError` naming the field (an array element, a flag), the value
and what is allowed, raised before any long work starts.
"""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from imcgen.core.errors import ImcError

__all__ = ["check_weights", "check_inputs", "check_back_inputs", "load_array", "read_config_text",
           "check_output_file", "check_output_dir", "written_whole", "MAX_CONFIG_BYTES",
           "MAX_ARRAY_BYTES"]

MAX_CONFIG_BYTES = 1 << 20  # a configuration is a few hundred bytes; 1 MiB is surely a mistake
MAX_ARRAY_BYTES = 1 << 32   # 4 GiB: far beyond any macro's weights or a sane batch of inputs

_KINDS = {"b": "booleans", "f": "floating-point numbers", "c": "complex numbers",
          "M": "datetimes", "m": "timedeltas", "O": "Python objects", "U": "strings",
          "S": "byte strings", "V": "structured records"}


def _check(name, array, shape, lo, hi, note=""):
    try:
        array = np.asarray(array)
    except (ValueError, TypeError) as err:
        raise ImcError(name, type(array).__name__, f"must be an integer array ({err})") from None
    want = "(V, " + str(shape[1]) + ")" if shape[0] is None else str(shape)
    if array.ndim != 2 or (shape[0] is not None and array.shape[0] != shape[0]) \
            or array.shape[1] != shape[1]:
        raise ImcError(f"{name}.shape", array.shape, f"must be {want}")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise ImcError(f"{name}.dtype", str(array.dtype), "must be an integer type")
    if array.size and (array.min() < lo or array.max() > hi):  # two passes; argwhere is 5x
        bad = np.argwhere((array < lo) | (array > hi))
        r, c = (int(v) for v in bad[0])
        raise ImcError(f"{name}[{r}, {c}]", int(array[r, c]),
                       f"must be an integer in {lo}..{hi}{note} ({len(bad)} value(s) out of range)")
    return array.astype(np.int64, copy=False)


def check_weights(cfg, weights):
    """Weights as int64 ``(rows*tiles, outputs)``, or :class:`ImcError`."""
    note = ""
    if cfg.weight_mapping == "differential":
        note = (f"; the differential mapping stores |w| in {cfg.weight_bits - 1} bits, "
                f"so {-(1 << (cfg.weight_bits - 1))} is excluded")
    return _check("weights", weights, (cfg.input_rows, cfg.outputs),
                  cfg.weight_min, cfg.weight_max, note)


def check_inputs(cfg, inputs, name="inputs"):
    """Inputs as int64 ``(vectors, rows*tiles)``, or :class:`ImcError`."""
    kind = "signed" if cfg.input_signed else "unsigned"
    return _check(name, inputs, (None, cfg.input_rows), cfg.input_min, cfg.input_max,
                  f" ({cfg.input_bits}-bit {kind})")


def check_back_inputs(cfg, inputs, name="inputs"):
    """Backward vectors (``transposed``: one element per output, the inputs' format) as int64
    ``(vectors, outputs)``, or :class:`ImcError`."""
    kind = "signed" if cfg.input_signed else "unsigned"
    if not cfg.transposed:
        raise ImcError("transposed", False, "backward vectors need transposed = true "
                                            "(--set transposed=true)")
    return _check(name, inputs, (None, cfg.outputs), cfg.input_min, cfg.input_max,
                  f" ({cfg.input_bits}-bit {kind}, one per output)")


# -- input files ------------------------------------------------------------------------------

def _existing_file(flag, path, what):
    text = str(path)
    if not text.strip():
        raise ImcError(flag, text, f"must name {what}, not be empty")
    path = Path(text)
    if not path.exists():
        raise ImcError(flag, text, "file not found")
    if path.is_dir():
        raise ImcError(flag, text, f"is a directory; {what} is needed")
    if not path.is_file():
        raise ImcError(flag, text, f"is not a regular file; {what} is needed")
    return path


def check_input_file(flag, path, what):
    """``path`` names an existing regular file (``what`` it should hold, for the refusal)."""
    return _existing_file(flag, path, what)


def read_config_text(path, flag="--config"):
    """The text of a TOML configuration file, checked to be a small readable text file."""
    path = _existing_file(flag, path, "a TOML file")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ImcError(flag, str(path), f"is {size} bytes; a configuration file is at most "
                                        f"{MAX_CONFIG_BYTES} bytes")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise ImcError(flag, str(path), f"cannot be read ({err.strerror})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ImcError(flag, str(path), f"is more than {MAX_CONFIG_BYTES} bytes")
    if b"\0" in data:
        raise ImcError(flag, str(path), "is not a text file (it holds NUL bytes); a TOML file "
                                        "is needed")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ImcError(flag, str(path), f"is not UTF-8 text (byte {err.start}); a TOML file "
                                        f"is needed") from None


def load_array(flag, path):
    """An integer array from a ``.npy`` file, its header checked before any data is read.

    Refuses files that are not ``.npy`` (an ``.npz`` archive, text...), non-integer dtypes of
    every kind, and headers promising more data than the file holds or than fits in memory.
    """
    path = _existing_file(flag, path, "a .npy file")
    text = str(path)
    try:
        with open(path, "rb") as handle:
            start = handle.read(6)
            if start.startswith(b"PK\x03\x04"):
                raise ImcError(flag, text, "is an .npz archive, not a .npy file: save one array "
                                           "with numpy.save")
            if start != b"\x93NUMPY":
                raise ImcError(flag, text, f"is not a .npy file (it starts with {start!r}, not "
                                           f"the NumPy magic b'\\x93NUMPY')")
            handle.seek(0)
            try:
                version = np.lib.format.read_magic(handle)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
            except (ValueError, OSError, EOFError, SyntaxError) as err:
                raise ImcError(flag, text, f"has a damaged .npy header ({err})") from None
            offset = handle.tell()
    except OSError as err:
        raise ImcError(flag, text, f"cannot be read ({err.strerror})") from None
    if dtype.kind not in "iu":
        kind = _KINDS.get(dtype.kind, dtype.kind)
        raise ImcError(flag, text, f"holds {kind} (dtype {dtype}); an integer array is needed "
                                   f"(numpy int8..int64 or uint8..uint64)")
    count = 1
    for n in shape:
        count *= int(n)
    promised = count * dtype.itemsize
    held = path.stat().st_size - offset
    if promised > held:
        raise ImcError(flag, text, f"header promises shape {tuple(shape)} of {dtype} "
                                   f"({promised} bytes) but the file holds {held} bytes of data")
    if promised > MAX_ARRAY_BYTES:
        raise ImcError(flag, text, f"holds {promised} bytes; at most {MAX_ARRAY_BYTES} are "
                                   f"accepted")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ImcError(flag, text, f"not a readable .npy array ({err})") from None
    return array


# -- output paths -----------------------------------------------------------------------------

def _writable_parent(flag, text, directory):
    """The nearest existing ancestor of ``directory`` must be a directory we can write in."""
    probe = Path(os.path.abspath(directory))
    while not probe.exists():
        if probe.is_symlink():
            raise ImcError(flag, text, f"cannot be created: {probe} is a broken link")
        probe = probe.parent
    if not probe.is_dir():
        raise ImcError(flag, text, f"cannot be created: {probe} is a file, not a directory")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        raise ImcError(flag, text, f"is not writable ({err.strerror} in {probe})") from None


def _plain_path(flag, text, what):
    """Refuse what cannot be meant as a path: empty, ``-`` (standard output is not written
    to), control characters (a line break pasted in), a link that leads nowhere."""
    if not text.strip():
        raise ImcError(flag, text, f"must name an output {what}, not be empty")
    if text.strip() == "-":
        raise ImcError(flag, text, f"standard output is not supported: name an output {what}")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ImcError(flag, text, "contains a control character (a line break?)")
    target = Path(text)
    if target.is_symlink() and not target.exists():
        raise ImcError(flag, text, "is a symbolic link to a path that does not exist")
    return target


def check_output_file(flag, path, suffix=None):
    """``path`` names a file that can be written (its directory may not exist yet)."""
    text = "" if path is None else str(path)
    target = _plain_path(flag, text, "file")
    if target.is_dir():
        raise ImcError(flag, text, "is a directory; an output file is needed")
    if suffix and target.suffix != suffix:
        raise ImcError(flag, text, f"must name a {suffix} file")
    if target.exists() and not target.is_file():
        raise ImcError(flag, text, "is not a regular file; an output file is needed")
    _writable_parent(flag, text, target.parent)
    if target.exists() and not os.access(target, os.W_OK):
        raise ImcError(flag, text, "exists and cannot be overwritten (permission denied)")
    return target


@contextmanager
def written_whole(path):
    """Write ``path`` under a temporary name beside it, renamed into place only when the
    writing finished: a failed or interrupted run leaves no half-written file, and no file
    at all where there was none. Yields the temporary path (it keeps ``path``'s suffix, which
    ``numpy.savez`` needs)."""
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def check_output_dir(flag, path):
    """``path`` names a directory that exists or can be created, and can be written in."""
    text = "" if path is None else str(path)
    target = _plain_path(flag, text, "directory")
    if target.exists() and not target.is_dir():
        raise ImcError(flag, text, "is a file; an output directory is needed")
    _writable_parent(flag, text, target)
    return target
