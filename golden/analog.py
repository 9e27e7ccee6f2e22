"""Device physics in the compute reads (docs/analog.md), one NumPy model for the golden model
(batched) and the cocotb-side crossbar (one read at a time).

Pipeline, for ``analog.device`` ideal, pcm or rram:

1. **Conductances.** A cell's level ``L`` (or write-verify state, a fractional level) maps to
   ``g = g_min + L / cell_max * (g_max - g_min)``; stuck cells sit at ``g_max`` or ``g_min``.
2. **Programming error** (devices without write-verify): ``g + sigma_prog(g) z``.
3. **Drift** ``g(t) = g0 (t / t0)^-nu`` with a per-cell exponent ``nu`` (pcm), after ``t0``.
4. The array at the read time, in integer units of ``g_max / 2^16``; each cell's read-noise
   variance; IR-drop row weights; the ADC LSB current (ideal or calibrated, optionally
   drift-compensated by a noisy reference read). Computed once for the whole array
   (:func:`prepare`), so both sides use the very same numbers.
5. **A read** sums the active rows' weighted conductances (exact integers), loses a share
   growing with the line current (IR drop), adds read noise ``sqrt(sum var) z`` drawn per
   (tile, column, read index): the held current.
6. **The comparator** answers ``2 (I + offset + noise) >= (2 dac - 1) lsb``, its noise drawn per
   (tile, column, read index, bit under test); the bit under test is the trial code's lowest
   set bit, so the cocotb side reads it off the DAC.

Every random number is a counter-based draw (:mod:`imcgen.core.draws`); the Gaussians are
Irwin-Hall sums of the draw's eight bytes. After step 4 every operation is integer or a single
correctly rounded IEEE operation per element, so the batched and the per-read evaluation agree
bit for bit.
"""

from dataclasses import dataclass, replace

import numpy as np

from imcgen.core.config import G_BITS, IR_BITS
from imcgen.core.draws import What, compare_what, line_where, read_what
from imcgen.golden import device, rng

__all__ = ["AnalogArray", "prepare", "gauss", "read_currents", "row_currents", "held",
           "compare", "bit_under_test", "microamps", "T0"]

T0 = 20.0         # s: drift reference time (aihwkit PCM, t0 = 20 s)
# Threefry rounds of the analog draws: they live in Python only (no hardware to match), and 13
# rounds are the fewest for which Random123 reports Threefry-2x32 passing BigCrush.
ROUNDS = 13
T_READ = 250e-9   # s: read duration in the PCM read-noise model
IRWIN_HALL8_SD = float(np.sqrt(8 * (256**2 - 1) / 12))
UNIT = 1 << G_BITS  # conductance units per g_max


def gauss(bits64):
    """Approximately standard normal values from 64-bit draws (Irwin-Hall sum of 8 bytes)."""
    bits = np.asarray(bits64, dtype=np.uint64)
    flat = np.ascontiguousarray(bits.reshape(-1))
    total = flat.view(np.uint8).reshape(-1, 8).sum(axis=1, dtype=np.int64)
    return (total.reshape(bits.shape) - 1020) / IRWIN_HALL8_SD


@dataclass(frozen=True)
class AnalogArray:
    """The array at the read time, ready for reads (arrays of shape (tiles, rows, columns)).

    ``weighted``: conductance units times the row's IR weight (Q0.16), integer: the current
    units. ``var``: read noise variance per cell in (conductance units)^2, integer (so sums stay
    exact in float64; :func:`held` scales the noise to current units by ``2^IR_BITS``).
    ``lsb``: current units per ADC code. ``offset``: comparator offset in current units.
    ``cmp_sigma``: comparator noise in current units. ``line_k``: IR loss per unit of line
    current squared. ``g_us``: conductances in microsiemens (reports).
    """

    weighted: np.ndarray
    var: np.ndarray
    lsb: int
    offset: int
    cmp_sigma: float
    line_k: float
    g_us: np.ndarray
    compensation: float
    # Transposed reads (``transposed``): conductance units times the column's IR weight (the
    # row line's drop grows along the columns), and the row line's IR loss factor.
    weighted_t: np.ndarray | None = None
    line_kt: float = 0.0


def microamps(cfg, current):
    """Current units (conductance units times the IR weight) -> microamperes at
    ``analog.v_read`` (conductances in uS times volts)."""
    scale = cfg.analog.g_max_us * cfg.analog.v_read / float(UNIT << IR_BITS)
    return np.asarray(current, dtype=np.float64) * scale


def _levels(cfg, states):
    """A cell's position in its range, 0 .. 1 (fractional levels for write-verify states)."""
    return np.asarray(states, dtype=np.float64) / float(cfg.cell_max << cfg.state_frac)


def _pcm_prog_sigma(cfg, g_us):
    x = g_us / cfg.analog.g_max_us
    return cfg.analog.g_max_us / 25.0 * (0.26348 + 1.9650 * x - 1.1731 * x * x)


def _pcm_nu(cfg, g_us, z):
    x = np.maximum(g_us / cfg.analog.g_max_us, 1e-12)
    mu = np.clip(-0.0155 * np.log(x) + 0.0244, 0.049, 0.1)
    sd = np.clip(-0.0125 * np.log(x) - 0.0059, 0.008, 0.045)
    return np.abs(mu + sd * z)


def _pcm_read_sigma(cfg, g_prog, g_now, t):
    """aihwkit: the noise factor from the programmed conductance, times the present one."""
    x = np.maximum(g_prog / cfg.analog.g_max_us, 0.0)
    q = np.minimum(0.0088 / np.maximum(x**0.65, 1e-3), 0.2)
    return g_now * q * np.sqrt(np.log((t + T_READ) / (2 * T_READ)))


def prepare(cfg, states):
    """The analog array for cell ``states`` (tiles, rows, physical_columns), read at
    ``analog.time``: see the module's steps 1-4."""
    a = cfg.analog
    states = np.asarray(states, dtype=np.int64)
    shape = states.shape
    kind = a.device
    g_min = 0.0 if kind == "ideal" else a.g_min_us
    stuck, on = device.stuck_map(cfg)
    target = np.where(stuck, np.where(on, a.g_max_us, g_min),
                      g_min + _levels(cfg, states) * (a.g_max_us - g_min))
    g = target
    where = device.cell_addresses(cfg)
    if kind in ("pcm", "rram") and not cfg.programmable and a.prog_noise:
        z = gauss(rng.draw(a.seed, int(What.PROGRAM), where, 0, ROUNDS))
        if kind == "pcm":
            sigma = _pcm_prog_sigma(cfg, target)
        elif cfg.cell_bits == 1:  # Yan et al. 2019: binary LRS 0.04, HRS 0.4 (relative)
            sigma = np.where(states > 0, 0.04 * target, 0.4 * target)
        else:
            sigma = 0.03 * target  # Yan et al. 2019: analog variability sigma/mu 0.03
        g = np.where(stuck, target, np.maximum(target + a.prog_noise * sigma * z, 0.0))
    g0 = g
    t = max(a.time, 0.0)
    if kind == "pcm" and a.drift and t > T0:
        # aihwkit draws the exponent from the target conductance; its t_inference is t - t0.
        z = gauss(rng.draw(a.seed, int(What.DRIFT), where, 0, ROUNDS))
        nu = a.drift * _pcm_nu(cfg, target, z)
        g = g0 * (t / T0) ** (-nu)
    units = np.rint(g / a.g_max_us * UNIT).astype(np.int64)
    if kind == "pcm":
        sigma_read = a.read_noise * _pcm_read_sigma(cfg, g0, g, max(t, T_READ * 2))
    elif kind == "rram":
        sigma_read = a.read_noise * 0.03 * g  # Yan et al. 2019: thermal fluctuation ~ 0.03
    else:
        sigma_read = np.zeros(shape)
    var = np.rint((sigma_read / a.g_max_us * UNIT) ** 2).astype(np.int64)
    rows = shape[1]
    weights = np.rint((1 << IR_BITS) * (1 - a.ir_drop * (np.arange(rows) + 1) / rows))
    weighted = units * weights.astype(np.int64)[np.newaxis, :, np.newaxis]
    full = float(cfg.rows_per_read * UNIT << IR_BITS)
    line_k = a.ir_drop / full if a.ir_drop else 0.0
    step = (1 - g_min / a.g_max_us) * UNIT / cfg.cell_max  # one level, in units
    lsb = step * (1 << IR_BITS)
    if a.adc_range == "calibrated":  # the largest read of the programmed array fills the ADC
        top = (-np.sort(-weighted, axis=1))[:, :cfg.rows_per_read].sum(axis=1).max()
        lsb = max(top / (cfg.adc_max + 0.5), 1.0)
    compensation = 1.0
    if a.drift_compensation:
        reference = units.sum()
        ref_noise = np.sqrt(var.sum()) * gauss(rng.draw(a.seed, int(What.REFERENCE), 0, 0, ROUNDS))
        expected = np.rint(g0 / a.g_max_us * UNIT).sum()
        if expected > 0:  # an array with no conductance has nothing to compensate
            compensation = float(expected / max(reference + ref_noise, 1.0))
            lsb = lsb / compensation
    lsb = max(int(round(lsb)), 1)
    offset = int(round(a.comparator_offset * lsb))
    weighted_t, line_kt = None, 0.0
    if cfg.transposed:  # the row side's ADCs share the column side's reference (choice)
        columns = shape[2]
        col_weights = np.rint((1 << IR_BITS) * (1 - a.ir_drop * (np.arange(columns) + 1) /
                                                columns))
        weighted_t = units * col_weights.astype(np.int64)[np.newaxis, np.newaxis, :]
        line_kt = a.ir_drop / float(cfg.back_per_read * UNIT << IR_BITS) if a.ir_drop else 0.0
    return AnalogArray(weighted=weighted, var=var, lsb=lsb, offset=offset,
                       cmp_sigma=a.comparator_noise * lsb, line_k=line_k, g_us=g,
                       compensation=compensation, weighted_t=weighted_t, line_kt=line_kt)


def _line_loss(current, line_k):
    """IR drop growing with the line current: ``I - floor(I * I * k)`` (elementwise)."""
    if not line_k:
        return current
    i = np.asarray(current, dtype=np.float64)
    return np.asarray(current, dtype=np.int64) - np.floor(i * i * line_k).astype(np.int64)


def read_currents(arr, enable, tile=None):
    """Weighted current and noise variance of reads: ``enable`` (..., tiles, reads, rows) in
    {0, 1} against the array -> two int64 arrays (..., tiles, reads, columns); with ``tile``,
    ``enable`` (rows,) against that tile alone. Exact integer sums
    (:func:`imcgen.golden.crossbar_stub.tile_products`)."""
    from imcgen.golden.crossbar_stub import tile_products

    if tile is not None:
        enable = np.asarray(enable)[np.newaxis, np.newaxis, :]
        one = replace(arr, weighted=arr.weighted[tile:tile + 1], var=arr.var[tile:tile + 1])
        current, var = read_currents(one, enable)
        return current[0, 0], var[0, 0]
    columns = arr.weighted.shape[-1]
    if not arr.var.any():
        current = tile_products(enable, arr.weighted)
        return current, np.zeros_like(current)
    both = tile_products(enable, np.concatenate([arr.weighted, arr.var], axis=-1))
    return both[..., :columns], both[..., columns:]


def row_currents(arr, enable, tile):
    """Weighted current and noise variance of transposed reads on one tile: ``enable`` (...,
    physical_columns) in {0, 1}, the driven columns -> two int64 arrays (..., rows). Exact
    integer sums (:func:`imcgen.golden.blas.matmul_exact`)."""
    from imcgen.golden.blas import matmul_exact

    enable = np.asarray(enable, dtype=np.int64)
    lead = enable.shape[:-1]
    flat = enable.reshape(-1, enable.shape[-1])
    w, v = arr.weighted_t[tile], arr.var[tile]
    current = matmul_exact(flat, w.T, int(w.sum(axis=1).max()) if w.size else 0)
    var = matmul_exact(flat, v.T, int(v.sum(axis=1).max()) if v.size else 0)
    rows = w.shape[0]
    return current.reshape(*lead, rows), var.reshape(*lead, rows)


def held(cfg, arr, current, var, tile, column, read, transposed=False):
    """Held currents: IR line loss, then read noise for (tile, column, read index); all arrays
    broadcast together. ``transposed``: a row's (``column`` is the row, ``read`` the tile's
    transposed-read index)."""
    i = _line_loss(current, arr.line_kt if transposed else arr.line_k)
    if not np.any(var):
        return np.asarray(i, dtype=np.int64)
    where = line_where(cfg, np.asarray(tile), np.asarray(column), transposed)
    z = gauss(rng.draw(cfg.analog.seed, read_what(transposed), where, read, ROUNDS))
    # var is in conductance units^2; the power-of-two scale to current units is exact
    return i + np.rint(np.sqrt(var) * z * float(1 << IR_BITS)).astype(np.int64)


def compare(cfg, arr, held_current, dac, tile, column, read, bit, transposed=False):
    """Comparator answers for held currents against DAC codes (all arrays broadcast); ``bit``
    is the SAR bit under test (an int, the same for every element). ``transposed``: a
    row-side comparator (``column`` is the row)."""
    noise = 0
    dac = np.asarray(dac, dtype=np.int64)
    if arr.cmp_sigma:
        where = line_where(cfg, np.asarray(tile), np.asarray(column), transposed)
        z = gauss(rng.draw(cfg.analog.seed, compare_what(int(bit), transposed), where, read,
                           ROUNDS))
        noise = np.rint(arr.cmp_sigma * z).astype(np.int64)
    return 2 * (np.asarray(held_current, dtype=np.int64) + arr.offset + noise) >= \
        (2 * dac - 1) * arr.lsb


def bit_under_test(dac):
    """The SAR bit a trial code tests: its lowest set bit."""
    dac = int(dac)
    return (dac & -dac).bit_length() - 1
