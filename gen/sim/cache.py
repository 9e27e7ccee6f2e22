"""The bounded build cache: entries used least recently are pruned to a size limit.

Entries are the directories of ``<cache>/builds`` (Verilator builds, cocotb and native) and
``<cache>/elab`` (elaborated Verilog), each next to its ``<key>.lock``. An entry's last use is
the time stamp of its ``USED`` file, touched whenever it is reused or made
(:func:`touch`); after a new entry is made the cache is pruned to its limit (:func:`prune`).

Concurrency: every process takes an entry's lock while it builds or checks it; pruning takes
the lock without waiting and skips the entry when another process holds it, renames the entry
aside (atomic, so nobody finds it half deleted) and then removes it. Entries used within the
last minute are never pruned, so a build a process has just been handed stays while it runs.
The compiler cache (``<cache>/ccache``) keeps its own bound (``CCACHE_MAXSIZE``, a fifth of
the limit) and is not counted here.

The limit: ``$IMCGEN_CACHE_SIZE`` (``5G``, ``800M``...), default 5 GB;
``imcgen cache info|prune|clear`` (:mod:`imcgen.cli.cache`).
"""

import fcntl
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from imcgen.core.errors import ImcError

__all__ = ["cache_dir", "DEFAULT_LIMIT", "GRACE_SECONDS", "Entry", "parse_size", "limit",
           "locked", "touch",
           "entries", "prune", "clear", "format_size"]

DEFAULT_LIMIT = 5 * 10**9
#: Entries used more recently than this are never pruned (a run may be about to use them).
GRACE_SECONDS = 60.0
AREAS = ("builds", "elab")
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def cache_dir():
    """Where builds and the compiler cache live: ``$IMCGEN_CACHE`` or ``~/.cache/imcgen``."""
    if "IMCGEN_CACHE" in os.environ:
        return Path(os.environ["IMCGEN_CACHE"]).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "imcgen"


def parse_size(text, field="IMCGEN_CACHE_SIZE"):
    """``"5G"``, ``"800M"``, ``"123456"`` -> bytes; :class:`ImcError` naming ``field``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*", str(text), re.IGNORECASE)
    if not match:
        raise ImcError(field, text, "must be a size such as 5G, 800M or 1000000 (bytes)")
    return int(float(match[1]) * _UNITS[match[2].upper()])


def limit():
    """The configured size limit in bytes."""
    text = os.environ.get("IMCGEN_CACHE_SIZE")
    return DEFAULT_LIMIT if text is None else parse_size(text)


def format_size(size):
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


@contextmanager
def locked(path, wait=True):
    """Hold the exclusive lock file ``path``; with ``wait=False`` yield False (and hold
    nothing) when another process has it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def touch(entry_dir):
    """Record a use of the entry ``entry_dir`` (its ``USED`` time stamp)."""
    (Path(entry_dir) / "USED").touch()


@dataclass(frozen=True)
class Entry:
    path: Path
    size: int
    used: float  # seconds since the epoch

    @property
    def lock(self):
        return self.path.with_name(self.path.name + ".lock")


def _size(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def entries(root=None):
    """Every entry of the cache, least recently used first."""
    root = Path(root) if root is not None else cache_dir()
    found = []
    for area in AREAS:
        base = root / area
        if not base.is_dir():
            continue
        for path in base.iterdir():
            if not path.is_dir() or path.name.endswith((".partial", ".trash")) or \
                    ".trash-" in path.name:
                continue
            try:
                used = (path / "USED").stat().st_mtime
            except OSError:
                used = path.stat().st_mtime
            found.append(Entry(path, _size(path), used))
    return sorted(found, key=lambda e: e.used)


def _remove(entry):
    """Remove ``entry`` unless another process holds its lock; True when removed."""
    with locked(entry.lock, wait=False) as mine:
        if not mine or not entry.path.is_dir():
            return False
        trash = entry.path.with_name(f"{entry.path.name}.trash-{os.getpid()}")
        # Atomic: a concurrent look-up finds it or nothing. The lock file stays (0 bytes):
        # unlinking it would let a waiter and a newcomer lock two different files.
        entry.path.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)
    return True


def prune(max_bytes=None, root=None, grace=None):
    """Remove least recently used entries until the cache holds at most ``max_bytes`` (the
    configured :func:`limit` by default). Returns ``(removed entries, bytes left)``."""
    max_bytes = limit() if max_bytes is None else max_bytes
    grace = GRACE_SECONDS if grace is None else grace
    base = Path(root) if root is not None else cache_dir()
    # One pruner at a time, each from a fresh listing: two working from the same snapshot
    # would each remove their share and empty the cache between them.
    with locked(base / "prune.lock"):
        found = entries(base)
        total = sum(e.size for e in found)
        removed = []
        now = time.time()
        for entry in found:
            if total <= max_bytes:
                break
            if now - entry.used < grace:
                break  # sorted by use: every later entry is as recent
            if _remove(entry):
                removed.append(entry)
                total -= entry.size
    return removed, total


def clear(root=None):
    """Remove every entry no process holds; returns ``(removed, kept in use)``."""
    removed, busy = [], []
    for entry in entries(root):
        (removed if _remove(entry) else busy).append(entry)
    return removed, busy
