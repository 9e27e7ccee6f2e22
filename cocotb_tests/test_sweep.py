"""``imcgen sweep`` on a real Dask cluster: a CI-sized grid on a local cluster, the same against
a scheduler and two workers started as separate processes (one killed mid-sweep), an NSGA-II
search, resuming, failed points, and the spec's one-line refusals. Every point's figures must
equal the same point evaluated alone, in this process."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

from imcgen.apps import sweep  # noqa: E402
from imcgen.core.errors import ImcError  # noqa: E402

GRID = """
[sweep]
preset = "default"
vectors = {vectors}
objectives = ["rms", "energy_pj", "area_mm2"]

[sweep.set]
crossbar = "external"

[grid]
adc_bits = [3, 4, 5, 6]
cell_bits = [2, 4]
rows_per_read = [0, 8]
"analog.device" = ["none", "pcm", "rram"]
"""
#: Figures a point's row must reproduce exactly when evaluated again.
FIGURES = ("rms", "bits", "accuracy", "energy_pj", "area_mm2", "cycles", "latency_ns",
           "tops_per_w", "fpga_ecp5_luts", "error")


def _spec(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(text)
    return sweep.load_spec(path)


def _same_as_alone(spec, rows):
    for row in rows:
        changes = {k.removeprefix("set."): v for k, v in row.items() if k.startswith("set.")}
        alone = sweep.evaluate_point(spec.base, changes, spec.vectors, spec.seed, spec.fpga)
        for name in FIGURES:
            assert row.get(name) == alone.get(name), (changes, name, row.get(name),
                                                      alone.get(name))


def test_grid_on_a_local_cluster_resumes_and_records_failures(tmp_path):
    import pyarrow.parquet as pq

    spec = _spec(tmp_path, GRID.format(vectors=60))
    assert spec.size == 48
    out = tmp_path / "out"
    log = []

    class Lines:
        def write(self, text):
            log.append(text)

    rows = sweep.run_sweep(spec, out, workers=2, out=Lines())
    assert len(rows) == 48 and "dashboard http://127.0.0.1:" in "".join(log)
    failed = [r for r in rows if r["error"]]
    # rows_per_read = 0 (automatic) cannot hold 4-bit cells with a 3-bit ADC: a failed point,
    # with the configuration's own one-line refusal.
    assert len(failed) == 3 and all(r["set.adc_bits"] == 3 and r["set.cell_bits"] == 4 and
                                    r["set.rows_per_read"] == 0 for r in failed)
    assert all("rows_per_read = 0" in r["error"] for r in failed)
    workers = {r["worker"] for r in rows if r["worker"]}
    assert len(workers) == 2, workers  # both workers evaluated points
    table = pq.read_table(out / "results.parquet").to_pydict()
    assert len(table["key"]) == 48 and sum(table["pareto"]) >= 2
    assert (out / "pareto.png").stat().st_size > 10_000
    _same_as_alone(spec, rows[::5])
    # A rerun of the same spec evaluates nothing again.
    log.clear()
    again = sweep.run_sweep(spec, out, workers=1, out=Lines())
    assert "48 of 48 points done before, skipped" in "".join(log)
    assert [r["key"] for r in again] == [r["key"] for r in rows]


def _start(argv, **kw):
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, **kw)


def test_a_scheduler_and_two_worker_processes_lose_no_point_when_one_dies(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1; a worker is killed
    (SIGKILL) once a few points are in: Dask runs its tasks on the other, every point comes
    back, each equal to the point evaluated alone."""
    from distributed import Client

    dask = str(Path(sys.executable).parent / "dask")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    file = tmp_path / "scheduler.json"
    procs = [_start([dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard", "--scheduler-file", str(file)], env=env)]
    try:
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for n in range(2):
            procs.append(_start([dask, "worker", address, "--host", "127.0.0.1",
                                 "--nthreads", "1", "--no-nanny", "--name", f"w{n}",
                                 "--no-dashboard"], env=env))
        client = Client(address, timeout="30s")
        client.wait_for_workers(2, timeout=60)
        spec = _spec(tmp_path, GRID.format(vectors=400))
        out = tmp_path / "out"
        result = {}

        def work():
            result["rows"] = sweep.run_sweep(spec, out, client=client, out=open(os.devnull, "w"))

        thread = threading.Thread(target=work)
        thread.start()
        journal = out / "points.jsonl"
        while thread.is_alive() and (not journal.exists() or
                                     len(journal.read_text().splitlines()) < 6):
            time.sleep(0.05)
        done_before_kill = len(journal.read_text().splitlines())
        os.kill(procs[1].pid, signal.SIGKILL)
        thread.join(timeout=600)
        assert not thread.is_alive()
        rows = result["rows"]
        assert done_before_kill < 48, "the sweep ended before the kill: make points slower"
        assert len(rows) == 48 and len({r["key"] for r in rows}) == 48
        assert sum(1 for r in rows if r["error"]) == 3  # the same three clashes, no others
        assert len(client.scheduler_info()["workers"]) == 1
        _same_as_alone(spec, rows[::4])
        client.close()
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_nsga2_search_tells_optuna_each_generation(tmp_path):
    spec = _spec(tmp_path, """
[sweep]
mode = "nsga2"
preset = "default"
vectors = 60
generations = 3
population = 8
objectives = ["rms", "energy_pj"]

[sweep.set]
crossbar = "external"
"analog.device" = "rram"

[space]
adc_bits = [3, 4, 5, 6, 7, 8]
rows_per_read = [1, 2, 4, 8, 16]
adcs = [1, 2, 4, 8]
""")
    rows = sweep.run_sweep(spec, tmp_path / "out", workers=2, out=open(os.devnull, "w"))
    assert 8 <= len(rows) <= 24 and all(r["error"] is None for r in rows)
    values = np.array([[r["rms"], r["energy_pj"]] for r in rows])
    mask = sweep.pareto_mask(values, ["minimize", "minimize"])
    assert mask.any()
    for i in np.flatnonzero(mask):  # nothing dominates a front point
        assert not ((values <= values[i]).all(axis=1) & (values < values[i]).any(axis=1)).any()


def test_a_point_with_yosys_resources(tmp_path):
    """``fpga = "synth"``: the point's bare macro through Yosys (the small instance that keeps
    the option from rotting); its LUTs join the objectives."""
    spec = _spec(tmp_path, '[sweep]\npreset = "small"\nvectors = 20\nfpga = "synth"\n'
                           'objectives = ["energy_pj", "yosys_luts"]\n[grid]\nadc_bits = [4]\n')
    row = sweep.evaluate_point(spec.base, {"adc_bits": 4}, spec.vectors, spec.seed, spec.fpga)
    assert row["error"] is None and row["yosys_luts"] > 1000 and row["yosys_ffs"] > 500, row
    assert "fpga_ecp5_luts" not in row  # the fitted model is the other choice


@pytest.mark.parametrize("text, message", [
    ("[grid]\nadc_bit = [3]\n", "grid.adc_bit = [3]: unknown configuration key"),
    ("[grid]\nadc_bits = [3, 99]\n", "grid.adc_bits = 99: must be an integer in"),
    ("[grid]\nadc_bits = []\n", "must be a non-empty list of values"),
    ("[grid]\nadc_bits = [4, 4]\n", "lists a value twice"),
    ("[sweep]\nmode = 'random'\n[grid]\nadc_bits = [4]\n", "must be one of 'grid', 'nsga2'"),
    ("[sweep]\nobjectives = ['speed']\n[grid]\nadc_bits = [4]\n", "must be among accuracy"),
    ("[sweep]\nvectors = 0\n[grid]\nadc_bits = [4]\n", "sweep.vectors = 0: must be an integer"),
    ("[sweep]\npreset = 'huge'\n[grid]\nadc_bits = [4]\n", "huge"),
    ("[sweep]\ncolour = 1\n[grid]\nadc_bits = [4]\n", "sweep.colour = 1: unknown key"),
    ("[grid]\nrows = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nadc_bits = [3, 4, 5, 6, 7, 8, 9, 10]\n"
     "tiles = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\noutputs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
     "cell_bits = [1, 2, 3, 4]\nadcs = [1, 2, 4, 8]\n", "at most 100000 points"),
    ("[grid\n", "is not valid TOML"),
    ("", "grid = {}: must be a table of key = [values]"),
])
def test_bad_specs_are_refused_in_one_line(tmp_path, text, message, capsys):
    from imcgen import cli

    with pytest.raises(ImcError) as err:
        _spec(tmp_path, text)
    assert message in str(err.value) and "\n" not in str(err.value)
    path = tmp_path / "spec.toml"
    assert cli.main(["sweep", str(path), "-o", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_scheduler_address_is_checked_before_work(tmp_path, capsys):
    from imcgen import cli

    path = tmp_path / "spec.toml"
    path.write_text("[grid]\nadc_bits = [4]\n")
    for address, message in (("localhost:8786", "must be a Dask scheduler address"),
                             ("tcp://127.0.0.1:9", "cannot be reached")):
        assert cli.main(["sweep", str(path), "--scheduler", address, "-o",
                         str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1, err
