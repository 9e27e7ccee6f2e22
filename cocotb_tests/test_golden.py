"""Golden model of the macro, checked without a simulator.

Against W @ x (no read clips), against a literal scalar reference written from
docs/architecture.md (reads clip), and against hand-computed cases. Random cases are seeded; a
failure names its seed, and the test rerun with that seed alone reproduces it.
"""

import numpy as np
import pytest

from imcgen.core import timing
from imcgen.core.config import PRESETS, MacroConfig
from imcgen.golden import (
    input_driver,
    macro_top,
    output_stage,
    row_scheduler,
    sar_adc,
    weight_mapper,
)


def random_config(rng, clip):
    """A random legal configuration; ``clip`` picks ``rows_per_read`` beyond the safe count."""
    cell_bits = int(rng.integers(1, 4))
    values = dict(
        rows=int(rng.integers(1, 41)),
        tiles=int(rng.integers(1, 4)),
        outputs=int(rng.integers(1, 7)),
        input_bits=int(rng.integers(1, 9)),
        input_signed=bool(rng.integers(2)),
        weight_bits=int(rng.integers(2, 11)),
        cell_bits=cell_bits,
        weight_mapping=str(rng.choice(["differential", "offset"])),
        # adc_bits >= cell_bits: even one active row fits the ADC, so the auto count never clips.
        adc_bits=int(rng.integers(1, cell_bits + 3) if clip else rng.integers(cell_bits, 9)),
        adcs=1,
        schedule=str(rng.choice(["dense", "zero_skip"])),
        out_shift=int(rng.integers(0, 6)),
        out_relu=bool(rng.integers(2)),
        out_bits=int(rng.choice([0, int(rng.integers(2, 17))])),
    )
    if clip:  # given explicitly: automatic is refused when one row can exceed full scale
        values["rows_per_read"] = values["rows"]
    cfg = MacroConfig(**values)
    changes = {"adcs": int(rng.integers(1, cfg.physical_columns + 1))}
    if clip:
        changes["rows_per_read"] = int(rng.choice([cfg.rows, rng.integers(cfg.safe_rows_per_read,
                                                                         cfg.rows + 1)]))
    return cfg.replace(**changes)


def random_operands(rng, cfg, vectors):
    """Random W and X over the full legal ranges, with extreme, all-zero and sparse vectors."""
    W = rng.integers(cfg.weight_min, cfg.weight_max + 1, size=(cfg.input_rows, cfg.outputs))
    X = rng.integers(cfg.input_min, cfg.input_max + 1, size=(vectors, cfg.input_rows))
    X *= rng.random(X.shape) < rng.random((vectors, 1))  # per-vector density: zero_skip skips
    X[0] = -1 if cfg.input_signed else cfg.input_max  # every bit of every plane is 1
    X[1] = cfg.input_min
    X[2] = 0
    W[:, 0] = cfg.weight_max  # every bit of every slice of output 0 is 1: full-scale columns
    return W.astype(np.int64), X.astype(np.int64)


# -- against W @ x --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(150))
def test_matches_matmul_when_no_read_clips(seed):
    rng = np.random.default_rng(seed)
    cfg = random_config(rng, clip=False)
    W, X = random_operands(rng, cfg, vectors=12)
    msg = f"seed={seed} {cfg}"
    assert not cfg.reads_may_clip and macro_top.exact_reads(cfg), msg
    # Read by read (the per-conversion path) against the product; the exact fast path
    # against the per-conversion path, field by field.
    res = macro_top.run(cfg, W, X, force_reads=True)
    fast = macro_top.run(cfg, W, X)
    for name in ("y", "sums", "psums", "reads", "clipped", "cycles"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(res, name), err_msg=msg)
    exact = X @ W
    np.testing.assert_array_equal(res.sums, exact, err_msg=msg)
    np.testing.assert_array_equal(res.y, output_stage.apply(cfg, exact), err_msg=msg)
    assert not res.clipped.any(), msg
    # Each tile's partial sum is its own slice of the product.
    tile_exact = np.einsum("vtr,tro->vto", X.reshape(-1, cfg.tiles, cfg.rows),
                           W.reshape(cfg.tiles, cfg.rows, cfg.outputs))
    np.testing.assert_array_equal(res.psums, tile_exact, err_msg=msg)
    np.testing.assert_array_equal(res.reads, row_scheduler.reads_per_tile(cfg, X), err_msg=msg)


# -- against a literal scalar reference -----------------------------------------------------


def scalar_reference(cfg, W, X):
    """Sections 1-6 of docs/architecture.md in plain Python ints and loops.

    Shares nothing with the vectorised model: slicing, scheduling and the offset correction are
    rewritten here from the text. Returns (y, sums, reads, clipped) as nested lists.
    """
    R, T, O = cfg.rows, cfg.tiles, cfg.outputs
    Bx, Bw, s, N = cfg.input_bits, cfg.weight_bits, cfg.cell_bits, cfg.rows_per_read
    full_scale = 2 ** cfg.adc_bits - 1
    differential = cfg.weight_mapping == "differential"
    magnitude_bits = Bw - 1 if differential else Bw
    n_slices = -(-magnitude_bits // s)
    polarities = [0, 1] if differential else [0]

    def level(i, j, k, p):
        w = int(W[i][j])
        if differential:
            m = max(w, 0) if p == 0 else max(-w, 0)
        else:
            m = w + 2 ** (Bw - 1)
        s_k = min(s, magnitude_bits - k * s)
        return (m >> (k * s)) % 2 ** s_k

    ys, sums, reads, clipped = [], [], [], []
    for x in X:
        x = [int(e) for e in x]
        psum = [[0] * O for _ in range(T)]
        tile_reads = [0] * T
        clip = False
        for t in range(T):
            for b in range(Bx):
                plane_weight = -(2 ** b) if cfg.input_signed and b == Bx - 1 else 2 ** b
                bits = [(x[t * R + r] >> b) & 1 for r in range(R)]
                if cfg.schedule == "dense":
                    read_rows = [[r for r in range(g * N, min((g + 1) * N, R)) if bits[r]]
                                 for g in range(-(-R // N))]
                else:
                    on = [r for r in range(R) if bits[r]]
                    read_rows = [on[q:q + N] for q in range(0, len(on), N)]
                for rows_on in read_rows:
                    tile_reads[t] += 1
                    for j in range(O):
                        value = 0
                        for k in range(n_slices):
                            codes = []
                            for p in polarities:
                                v = sum(level(t * R + r, j, k, p) for r in rows_on)
                                clip = clip or v > full_scale
                                codes.append(min(v, full_scale))
                            q = codes[0] - codes[1] if differential else codes[0]
                            value += 2 ** (k * s) * q
                        if not differential:
                            value -= 2 ** (Bw - 1) * len(rows_on)
                        psum[t][j] += plane_weight * value
        total = [sum(psum[t][j] for t in range(T)) for j in range(O)]
        y = []
        for S in total:
            out = S >> cfg.out_shift  # Python >> floors, as the contract's arithmetic shift
            if cfg.out_relu:
                out = max(out, 0)
            if cfg.out_bits:
                out = min(max(out, -(2 ** (cfg.out_bits - 1))), 2 ** (cfg.out_bits - 1) - 1)
            y.append(out)
        ys.append(y)
        sums.append(total)
        reads.append(tile_reads)
        clipped.append(clip)
    return ys, sums, reads, clipped


@pytest.mark.parametrize("seed", range(60))
def test_matches_scalar_reference_when_reads_clip(seed):
    rng = np.random.default_rng(1000 + seed)
    cfg = random_config(rng, clip=True)
    W, X = random_operands(rng, cfg, vectors=5)
    msg = f"seed={seed} {cfg}"
    res = macro_top.run(cfg, W, X)
    y, sums, reads, clipped = scalar_reference(cfg, W, X)
    np.testing.assert_array_equal(res.y, y, err_msg=msg)
    np.testing.assert_array_equal(res.sums, sums, err_msg=msg)
    np.testing.assert_array_equal(res.reads, reads, err_msg=msg)
    np.testing.assert_array_equal(res.clipped, clipped, err_msg=msg)
    # Vector 0 drives full-scale columns into every first read: it clips exactly when N can.
    assert res.clipped[0] == cfg.reads_may_clip, msg


# -- hand cases -----------------------------------------------------------------------------


def fig11_config(schedule):
    # 8 rows, 1-bit cells, 2-bit ADC, 4 rows per read (set explicitly: 4 * 1 > 3 may clip).
    return MacroConfig(rows=8, tiles=1, outputs=2, input_bits=1, weight_bits=2, cell_bits=1,
                       weight_mapping="differential", adc_bits=2, adcs=1, rows_per_read=4,
                       schedule=schedule)


@pytest.mark.parametrize("schedule, reads, sums, clipped", [
    # dense: groups rows 0-3 -> {0, 2, 3}, rows 4-7 -> {6}. Output 1: 3 + 1 = 4 (exact).
    ("dense", 2, [0, 4], False),
    # zero_skip: one read of {0, 2, 3, 6}. Output 1: 4 ones on G+ clip to 3.
    ("zero_skip", 1, [0, 3], True),
])
def test_fig11_zero_skip_halves_reads(schedule, reads, sums, clipped):
    cfg = fig11_config(schedule)
    X = np.array([[1, 0, 1, 1, 0, 0, 1, 0]])  # 4 ones, two in each dense group
    W = np.array([[1, -1, 1, -1, 1, 1, -1, 0],  # output 0: G+ {0, 2} = 2, G- {3, 6} = 2
                  [1, 1, 1, 1, 1, 1, 1, 1]]).T  # output 1: G+ = 4 active rows
    res = macro_top.run(cfg, W, X)
    assert res.reads.tolist() == [[reads]]
    assert res.sums.tolist() == [sums]
    assert res.clipped.tolist() == [clipped]
    assert (X @ W).tolist() == [[0, 4]]


@pytest.mark.parametrize("mapping, weights, sums, clipped", [
    # differential, Bw = 3, s = 2: one slice, |w| in 2 bits; G+ = [3, 3, 1, 0], G- = [0, 0, 0, 2]
    #   x = 1111: G+ = 3+3+1 = 7 -> 3, G- = 2      -> 3 - 2 = 1   (exact 3+3+1-2 = 5)
    #   x = 1101: G+ = 3+3   = 6 -> 3, G- = 2      -> 3 - 2 = 1   (exact 3+3-2   = 4)
    #   x = 0011: G+ = 1         -> 1, G- = 2      -> 1 - 2 = -1  (exact, no clip)
    ("differential", [3, 3, 1, -2], [1, 1, -1], [True, True, False]),
    # offset, Bw = 2, s = 2: u = w + 2 = [3, 3, 2, 0] in one slice; correction 2 per active row
    #   x = 1111: 3+3+2+0 = 8 -> 3, 3 - 2*4 = -5   (exact 1+1+0-2 = 0)
    #   x = 1101: 3+3+0   = 6 -> 3, 3 - 2*3 = -3   (exact 1+1-2   = 0)
    #   x = 0011: 2+0     = 2 -> 2, 2 - 2*2 = -2   (exact, no clip)
    ("offset", [1, 1, 0, -2], [-5, -3, -2], [True, True, False]),
])
def test_clipping_read_hand_example(mapping, weights, sums, clipped):
    cfg = MacroConfig(rows=4, tiles=1, outputs=1, input_bits=1, weight_bits=3 if mapping ==
                      "differential" else 2, cell_bits=2, weight_mapping=mapping, adc_bits=2,
                      adcs=1, rows_per_read=4, schedule="dense")
    X = np.array([[1, 1, 1, 1], [1, 1, 0, 1], [0, 0, 1, 1]])
    res = macro_top.run(cfg, np.array([weights]).T, X)
    assert res.sums[:, 0].tolist() == sums
    assert res.clipped.tolist() == clipped
    assert res.reads.tolist() == [[1], [1], [1]]


@pytest.mark.parametrize("mapping, weights, levels", [
    # Bw = 5, s = 2, |w| in 4 bits, 2 slices. w = 6 = 0b0110 on G+: slices (2, 1);
    # w = -9: 9 = 0b1001 on G-: slices (1, 2). Columns (j, k, p) output-major.
    ("differential", [6, -9], [2, 0, 1, 0, 0, 1, 0, 2]),
    # Bw = 3, s = 2, offset 4, slices of 2 and 1 bits. u = -3 + 4 = 1: (1, 0);
    # u = 2 + 4 = 6 = 0b110: (2, 1).
    ("offset", [-3, 2], [1, 0, 2, 1]),
])
def test_cell_levels_hand_example(mapping, weights, levels):
    cfg = MacroConfig(rows=1, tiles=1, outputs=2, weight_bits=5 if mapping == "differential"
                      else 3, cell_bits=2, weight_mapping=mapping, adcs=1)
    assert weight_mapper.cell_levels(cfg, np.array([weights])).tolist() == [[levels]]


def test_signed_bit_planes_and_weights():
    cfg = MacroConfig(rows=3, tiles=1, input_bits=3, input_signed=True)
    # -3 = 0b101, 3 = 0b011, -4 = 0b100 (3-bit two's complement), LSB plane first.
    planes = input_driver.bit_planes(cfg, np.array([[-3, 3, -4]]))
    assert planes[0, :, 0, :].tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    weights = input_driver.plane_weights(cfg)
    assert weights.tolist() == [1, 2, -4]
    assert (weights[:, None] * planes[0, :, 0, :]).sum(axis=0).tolist() == [-3, 3, -4]


@pytest.mark.parametrize("schedule, groups", [
    ("dense", [0, -1, 1, -1, 2, 2]),  # r // 2
    ("zero_skip", [0, -1, 0, -1, 1, 1]),  # rank // 2 among rows 0, 2, 4, 5
])
def test_read_groups_hand_example(schedule, groups):
    cfg = MacroConfig(rows=6, tiles=1, input_bits=1, rows_per_read=2, schedule=schedule)
    planes = np.array([1, 0, 1, 0, 1, 1]).reshape(1, 1, 1, 6)
    assert row_scheduler.read_groups(cfg, planes).ravel().tolist() == groups


@pytest.mark.parametrize("schedule, reads", [
    # dense: input_bits * ceil(6 / 2) = 2 * 3 = 6 reads per tile, whatever the inputs.
    ("dense", [[6, 6], [6, 6]]),
    # zero_skip, vector 0 tile 0: plane 0 = 111000 -> ceil(3/2) = 2, plane 1 = 100001 -> 1;
    # tile 1 all zero -> 0. Vector 1: tile 0 all zero -> 0; tile 1 plane 1 has one 1 -> 1.
    ("zero_skip", [[3, 0], [0, 1]]),
])
def test_reads_per_tile_hand_example(schedule, reads):
    cfg = MacroConfig(rows=6, tiles=2, input_bits=2, rows_per_read=2, schedule=schedule)
    X = np.array([[3, 1, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0],
                  [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]])
    assert row_scheduler.reads_per_tile(cfg, X).tolist() == reads


@pytest.mark.parametrize("changes, y", [
    ({"out_shift": 1}, [-50, -5, -3, -1, 0, 0, 2, 3, 50]),  # floor: -5 >> 1 = -3, -1 >> 1 = -1
    ({"out_shift": 1, "out_relu": True}, [0, 0, 0, 0, 0, 0, 2, 3, 50]),
    ({"out_shift": 1, "out_bits": 3}, [-4, -4, -3, -1, 0, 0, 2, 3, 3]),  # clamp to -4..3
    ({"out_shift": 1, "out_relu": True, "out_bits": 3}, [0, 0, 0, 0, 0, 0, 2, 3, 3]),
    ({"out_bits": 3}, [-4, -4, -4, -1, 0, 1, 3, 3, 3]),  # no shift: the sums clamped
])
def test_output_stage_hand_cases(changes, y):
    sums = np.array([-100, -9, -5, -1, 0, 1, 4, 7, 100])
    cfg = MacroConfig().replace(**changes)
    assert output_stage.apply(cfg, sums).tolist() == y


@pytest.mark.parametrize("value, trials", [
    (5, [4, 6, 5]),  # 5 >= 4 keep, 5 < 6 drop, 5 >= 5 keep -> code 5
    (9, [4, 6, 7]),  # above full scale: every bit kept -> code 7
    (0, [4, 2, 1]),
])
def test_sar_trials_hand_example(value, trials):
    assert sar_adc.sar_trials(MacroConfig(adc_bits=3), value) == trials


@pytest.mark.parametrize("seed", range(4))
def test_sar_convert_is_min_with_full_scale(seed):
    rng = np.random.default_rng(seed)
    for adc_bits in range(1, 17):
        cfg = MacroConfig(adc_bits=adc_bits, rows_per_read=1)
        values = rng.integers(0, 3 * 2 ** adc_bits, size=(7, 11))
        np.testing.assert_array_equal(sar_adc.convert(cfg, values),
                                      np.minimum(values, 2 ** adc_bits - 1),
                                      err_msg=f"seed={seed} adc_bits={adc_bits}")


def test_cycle_model_hand_cases():
    # default preset: 40 physical columns over 8 ADCs -> 5 groups of 5-bit conversions:
    # K = 5 * 5 = 25 cycles per read with ADC overlap (a vector's first sample is one fixed
    # cycle more), K = 1 + 25 = 26 without (with two-stage column sums: a vector's first read
    # has a presample cycle, one fixed cycle more); two tiles -> one adder level; 10 fixed
    # stages.
    cfg = MacroConfig(adc_overlap=True)
    assert (cfg.column_groups, cfg.adc_bits, cfg.tiles, cfg.overlap) == (5, 5, 2, True)
    reads = np.array([[10, 10], [11, 10], [0, 0], [0, 3]])
    np.testing.assert_array_equal(macro_top.cycles(cfg, reads), [11 + 1 + 250, 11 + 1 + 275,
                                                                   11 + 1 + 1, 11 + 1 + 75])
    np.testing.assert_array_equal(timing.stream_cycles(cfg, reads), [250, 275, 1, 75])
    np.testing.assert_array_equal(timing.adc_bound(cfg, reads), [250, 275, 0, 75])
    plain = cfg.replace(adc_overlap=False)
    assert (cfg.sum_stages, plain.sum_stages) == (1, 2)
    np.testing.assert_array_equal(macro_top.cycles(plain, reads), [11 + 1 + 260, 11 + 1 + 286,
                                                                     11 + 1 + 1, 11 + 1 + 78])
    np.testing.assert_array_equal(timing.stream_cycles(plain, reads),
                                  macro_top.cycles(plain, reads))
    # ISAAC: one ADC for 128 columns of 8 bits -> K = 1024; 16 planes x 2 groups = 32 reads.
    isaac = MacroConfig(**PRESETS["isaac"], adc_overlap=True)
    assert macro_top.cycles(isaac, np.array([[32]]))[0] == 11 + 1 + 32 * 1024
    # Three tiles need two adder levels.
    assert macro_top.cycles(cfg.replace(tiles=3, rows=20), np.array([[1, 2, 0]]))[0] == 11 + 2 + 50
    # One compare per read (one group, 1-bit ADC): nothing to overlap, K = 2.
    one = MacroConfig(rows=4, tiles=1, outputs=1, weight_bits=1, cell_bits=1, adc_bits=1,
                      adcs=1, weight_mapping="offset", adc_overlap=True)
    assert (one.column_groups * one.adc_bits, one.overlap) == (1, False)
    assert one.sum_stages == 1  # one compare per group: no room for a second stage
    assert macro_top.cycles(one, np.array([[3]]))[0] == 10 + 1 + 3 * 2
