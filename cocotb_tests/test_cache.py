"""The bounded build cache (gen/sim/cache.py): least recently used entries pruned to the limit,
entries in use by another process kept, and `imcgen cache info|prune|clear`."""

import fcntl
import multiprocessing
import os
import time

import pytest

from imcgen import cli
from imcgen.sim import cache, runner


def make_entry(root, area, name, size, used):
    path = root / area / name
    path.mkdir(parents=True)
    (path / "blob").write_bytes(b"\0" * size)
    (path / "USED").touch()
    os.utime(path / "USED", (used, used))
    return path


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("IMCGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("IMCGEN_CACHE_SIZE", raising=False)
    return tmp_path / "cache"


def test_prune_removes_least_recently_used_until_under_the_bound(root):
    now = time.time()
    # Ten 1000-byte entries used an hour apart, the newest a minute ago: 10 kB in a 4.5 kB cache.
    for n in range(10):
        make_entry(root, "builds" if n % 2 else "elab", f"e{n}", 1000, now - 3600 * (10 - n))
    removed, left = cache.prune(4500, grace=0)
    assert [e.path.name for e in removed] == [f"e{n}" for n in range(6)]
    assert left == 4000 and sorted(e.path.name for e in cache.entries()) == \
        ["e6", "e7", "e8", "e9"]
    assert not list(root.glob("*/*.trash-*"))


def test_prune_keeps_entries_in_use_and_recent_ones(root):
    now = time.time()
    busy = make_entry(root, "builds", "busy", 1000, now - 7200)
    make_entry(root, "builds", "old", 1000, now - 3600)
    make_entry(root, "builds", "fresh", 1000, now)  # within the grace period
    with open(busy.with_name("busy.lock"), "a") as held:  # another open file: another owner
        fcntl.flock(held, fcntl.LOCK_EX)
        removed, left = cache.prune(0)
    assert [e.path.name for e in removed] == ["old"]
    assert sorted(e.path.name for e in cache.entries()) == ["busy", "fresh"] and left == 2000


def test_a_new_build_prunes_the_cache_to_its_limit(root, monkeypatch):
    monkeypatch.setenv("IMCGEN_CACHE_SIZE", "3k")
    monkeypatch.setattr(cache, "GRACE_SECONDS", 0.0)

    def produce(build_dir, log):
        (build_dir / "top").write_bytes(b"\0" * 1000)
        log.write_text("built\n")

    made = []
    for n in range(6):
        made.append(runner.cached_build(f"key{n}", {"t": 1}, "top", produce, what="a test"))
        os.utime(made[-1] / "USED", (time.time() - 100 + n, time.time() - 100 + n))
    # Reuse marks an entry used: key0 survives the next prune, key1 and key2 do not.
    assert runner.cached_build("key0", {"t": 1}, "top", produce, what="a test") == made[0]
    runner.cached_build("key6", {"t": 1}, "top", produce, what="a test")
    names = sorted(e.path.name for e in cache.entries())
    assert sum(e.size for e in cache.entries()) <= 3000
    assert "key0" in names and "key6" in names and "key1" not in names


def _prune_many(root, rounds):
    os.environ["IMCGEN_CACHE"] = str(root)
    for _ in range(rounds):
        cache.prune(2000, grace=0)


def test_two_processes_pruning_at_once_lose_nothing_they_keep(root):
    now = time.time()
    for n in range(40):
        make_entry(root, "builds", f"e{n:02}", 500, now - 1000 + n)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_prune_many, args=(root, 5)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    left = cache.entries()
    assert [e.path.name for e in left] == [f"e{n:02}" for n in range(36, 40)]
    assert all((e.path / "blob").stat().st_size == 500 for e in left)
    assert not list(root.glob("builds/*.trash-*"))


def test_cli_cache_info_prune_clear(root, capsys):
    now = time.time()
    for n in range(3):
        make_entry(root, "builds", f"e{n}", 2000, now - 3600 + n)
    assert cli.main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert f"cache: {root}" in out and "3 builds, 6.0 kB of 5.0 GB" in out
    assert cli.main(["cache", "prune", "--max-size", "4k"]) == 0
    assert "removed 1 builds (2.0 kB); 4.0 kB left of 4.0 kB" in capsys.readouterr().out
    assert cli.main(["cache", "clear"]) == 0
    assert "removed 2 builds" in capsys.readouterr().out and cache.entries() == []


@pytest.mark.parametrize("argv, field", [
    (["cache", "prune", "--max-size", "lots"], "--max-size"),
    (["cache", "info"], "IMCGEN_CACHE_SIZE"),
])
def test_cli_cache_refuses_a_bad_size_in_one_line(root, capsys, monkeypatch, argv, field):
    monkeypatch.setenv("IMCGEN_CACHE_SIZE", "5 gigs")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"imcgen: error: {field} = ")

