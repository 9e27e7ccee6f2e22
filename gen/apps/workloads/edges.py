"""``imcgen workload edges``: edge detection after Li et al., "Analogue signal and image
processing with large memristor crossbars" (2018), as Bao et al., "Toward memristive
in-memory computing: principles and applications" (2022), describe it: ten 5x5 kernels mapped
as differential pairs on a 25x20 sub-array, every image patch one input vector.

The macro: 25 rows (one 5x5 patch) in one tile, 10 outputs (one per kernel), differential
mapping with 7-bit weights on 6-bit cells (Li et al.'s devices hold 64 levels), so each kernel
is one G+/G- column pair: 20 physical columns. Inputs are the 8-bit unsigned pixels; 8-bit SAR
ADCs read 4 rows at a time (255 // 63), never clipping.

The photograph is scikit-image's ``camera``, downscaled to ``--size`` (default 256: 63 504
patches). Each kernel is scaled and rounded to the weights (-63..63): an integer one (Sobel,
Prewitt, Laplacian) by the largest integer factor, exactly; a float one (the diagonals, the
LoG) so that its largest coefficient is 63. The macro's outputs are divided by that scale.

Compared with the float correlation (SciPy) of the float kernels: per kernel a PSNR (peak: the
float response's range), and the Sobel gradient magnitude (the edge map) by PSNR and SSIM, for
the ideal macro (digital crossbar: exact, so only the rounded float kernels differ) and for the
noisy analog model (``--device``: programming error, drift, read and comparator noise).
"""

import math

import numpy as np

from imcgen.apps import workloads as common
from imcgen.apps.workloads import Report, check_rtl, images
from imcgen.core.config import MacroConfig

SUMMARY = "edge detection after Li et al. (2018): ten 5x5 kernels on a 25x20 sub-array, " \
          "a photograph's patches through the macro, PSNR/SSIM against SciPy"
CONFIG = False
RTL_DEFAULT = 8

K = 5  # kernel side: a patch is one 25-element input vector
WEIGHT_BITS = 7  # signed weights -63..63 as |w| on one 6-bit cell of a G+/G- pair
CELL_BITS = 6


def _kernels():
    """The ten float kernels ``[(name, 5x5 array)]``, applied by correlation (as im2col does).

    Sobel and Prewitt 5x5 derivatives (smoothing [1 4 6 4 1] or [1 1 1 1 1] across, [-1 -2 0 2
    1] or [-2 -1 0 1 2] along) at 0, 45, 90 and 135 degrees, the diagonals steered from the
    two axes ((Gx + Gy) / sqrt 2, (Gx - Gy) / sqrt 2); a Laplacian of Gaussian (sigma 1, sign
    so the centre is positive, made zero-sum); the 8-neighbour Laplacian (3x3, zero-padded).
    """
    out = []
    for name, smooth, derivative in (("Sobel", [1, 4, 6, 4, 1], [-1, -2, 0, 2, 1]),
                                     ("Prewitt", [1, 1, 1, 1, 1], [-2, -1, 0, 1, 2])):
        gx = np.outer(smooth, derivative).astype(np.float64)  # d/dx: vertical edges
        gy = gx.T
        out += [(f"{name} 0", gx), (f"{name} 45", (gx + gy) / math.sqrt(2)),
                (f"{name} 90", gy), (f"{name} 135", (gx - gy) / math.sqrt(2))]
    d = np.arange(K) - K // 2
    r2 = np.add.outer(d * d, d * d)  # squared distance from the centre
    log = (1 - r2 / 2) * np.exp(-r2 / 2)  # -LoG (sigma 1) up to a positive factor
    out.append(("LoG s=1", log - log.mean()))
    lap = np.zeros((K, K))
    lap[1:4, 1:4] = -1
    lap[2, 2] = 8
    out.append(("Laplacian 8", lap))
    return out


KERNELS = _kernels()


def config():
    """The ideal macro (digital crossbar stub): one tile of 25 rows, 10 outputs, 20 physical
    columns."""
    return MacroConfig(rows=K * K, tiles=1, outputs=len(KERNELS), input_bits=8,
                       input_signed=False, weight_bits=WEIGHT_BITS, cell_bits=CELL_BITS,
                       weight_mapping="differential", adc_bits=8, adcs=2 * len(KERNELS),
                       schedule="zero_skip")


def noisy_config(cfg, device, seed):
    """``cfg`` on the physical analog model of ``device`` (the Python crossbar)."""
    return cfg.replace(**{"crossbar": "external", "analog.device": device,
                          "analog.seed": seed % 2**32})


def mapped_weights(cfg):
    """``(W, scales)``: each kernel (a column of W, row-major) times its scale, rounded to the
    nearest integer (half to even). An integer kernel's scale is the largest integer keeping it
    in the weight range (so it is mapped exactly); a float kernel's makes its largest
    coefficient ``weight_max``."""
    scales = []
    for _, k in KERNELS:
        top = cfg.weight_max / np.abs(k).max()
        scales.append(math.floor(top) if np.array_equal(k, np.rint(k)) else top)
    scales = np.array(scales, dtype=np.float64)
    columns = [np.rint(k.ravel() * s) for (_, k), s in zip(KERNELS, scales, strict=True)]
    return np.stack(columns, axis=1).astype(np.int64), scales


def add_arguments(parser):
    parser.add_argument("--size", type=common.int_in(16, images.CAMERA_SIDE), default=256,
                        metavar="N",
                        help="side of the photograph in pixels (the 512x512 original "
                             "downscaled; default 256: 63504 patches)")
    images.add_device(parser)


def check(args):
    images.require("edges")
    if args.rtl:
        common.check_engine(config(), args.engine)


def edge_map(responses):
    """Sobel gradient magnitude ``sqrt(G0^2 + G90^2)`` from the ten responses (..., 10)."""
    names = [name for name, _ in KERNELS]
    return np.hypot(responses[..., names.index("Sobel 0")],
                    responses[..., names.index("Sobel 90")])


def correlate(image, kernels):
    """``image`` correlated with each kernel by SciPy ('valid' positions): ``(H - 4, W - 4,
    kernels)``; float for float kernels, exact integers for integer ones."""
    from scipy.signal import correlate2d

    return np.stack([correlate2d(image, k, mode="valid") for k in kernels], axis=-1)


def evaluate(image, device="rram", seed=0, progress=None):
    """Everything but the RTL: the ten responses of the float kernels (SciPy), of the ideal
    macro and of the noisy one, and their figures. Returns a dict (images under ``"maps"``,
    the macro's vectors under ``"X"``)."""
    from imcgen import golden

    cfg = config()
    W, scales = mapped_weights(cfg)
    X = images.im2col(image, K)
    side = (image.shape[0] - K + 1, image.shape[1] - K + 1)
    ref = correlate(image.astype(np.float64), [k for _, k in KERNELS])
    if progress:
        progress(1, 3)
    ideal = golden.run(cfg, W, X).y.reshape(*side, -1)
    # The digital macro is exact: the integer correlation of the mapped kernels.
    exact = correlate(image.astype(np.int64), [W[:, j].reshape(K, K) for j in range(W.shape[1])])
    if progress:
        progress(2, 3)
    noise = golden.run(noisy_config(cfg, device, seed), W, X).y.reshape(*side, -1)
    if progress:
        progress(3, 3)
    maps = {"original": image, "float": edge_map(ref)}
    peak = float(maps["float"].max()) or 1.0
    figures = {"patches": len(X), "image": list(image.shape),
               "ideal_max_error_vs_integer": int(np.abs(ideal - exact).max()),
               "kernel_psnr_db": {}, "edge_psnr_db": {}, "edge_ssim": {}}
    for label, y in (("ideal", ideal), (device, noise)):
        responses = y / scales
        maps[label] = edge_map(responses)
        maps[label + " responses"] = responses
        figures["kernel_psnr_db"][label] = [
            images.psnr(ref[..., j], responses[..., j], np.ptp(ref[..., j]))
            for j in range(len(KERNELS))]
        figures["edge_psnr_db"][label] = images.psnr(maps["float"] / peak, maps[label] / peak,
                                                     1.0)
        figures["edge_ssim"][label] = images.ssim(maps["float"] / peak, maps[label] / peak, 1.0)
    return {"config": cfg, "W": W, "X": X, "scales": scales, "maps": maps, "figures": figures}


def _db(value):
    return "inf (exact)" if value == math.inf else f"{value:.1f} dB"


def _kernel_psnrs(names, values):
    """``5 of 10 exact, the others 46.1..71.5 dB`` or ``median 44.5 dB, lowest 24.0 dB
    (Laplacian 8)``."""
    finite = [v for v in values if v != math.inf]
    exact = len(values) - len(finite)
    if exact:
        return f"{exact} of {len(values)} exact, the others {min(finite):.1f}.." \
               f"{max(finite):.1f} dB" if finite else "all exact"
    j = int(np.argmin(values))
    return f"median {np.median(values):.1f} dB, lowest {values[j]:.1f} dB ({names[j]})"


def run(args, out_dir, progress):
    image = images.camera(args.size)
    result = evaluate(image, args.device, args.seed, progress)
    cfg, fig, maps, dev = result["config"], result["figures"], result["maps"], args.device
    names = [name for name, _ in KERNELS]
    rtl = None
    if args.rtl:
        rtl = check_rtl([(cfg, result["W"], result["X"][:args.rtl])], args.seed, args.engine)
    out_dir.mkdir(parents=True, exist_ok=True)
    peak = float(maps["float"].max()) or 1.0
    panels = [(maps["original"], f"camera, {image.shape[0]}x{image.shape[1]}", (0, 255)),
              (maps["float"] / peak, "Sobel edge map, float (SciPy)", (0, 1)),
              (maps["ideal"] / peak, f"macro, ideal: PSNR {_db(fig['edge_psnr_db']['ideal'])}, "
                                     f"SSIM {fig['edge_ssim']['ideal']:.3f}", (0, 1)),
              (maps[dev] / peak, f"macro, {dev}: PSNR {_db(fig['edge_psnr_db'][dev])}, "
                                 f"SSIM {fig['edge_ssim'][dev]:.3f}", (0, 1))]
    extra = [(np.abs(maps[f"{dev} responses"][..., j]), f"{name} ({dev})")
             for j, name in enumerate(names)]
    plot = images.image_row(out_dir / "edges.png", panels,
                            "ten 5x5 kernels as differential pairs on a 25x20 sub-array "
                            "(after Li et al. 2018)", extra)
    kp = fig["kernel_psnr_db"]
    lines = [f"macro: {cfg.rows} rows x {cfg.physical_columns} physical columns (10 kernels as "
             f"G+/G- pairs), {cfg.weight_bits}-bit weights on {cfg.cell_bits}-bit cells, "
             f"{cfg.input_bits}-bit unsigned pixels, {cfg.adc_bits}-bit ADCs, "
             f"{cfg.rows_per_read} rows per read",
             f"image: camera (scikit-image) {image.shape[0]}x{image.shape[1]}, "
             f"{fig['patches']} patches of 5x5 as input vectors",
             "kernels (integer ones scaled exactly, float ones to 63 and rounded): "
             + ", ".join(names),
             "ideal macro == integer correlation of the mapped kernels: "
             + ("exact" if fig["ideal_max_error_vs_integer"] == 0 else
                f"DIFFERS by up to {fig['ideal_max_error_vs_integer']}"),
             "per-kernel PSNR (dB, peak = float response range), ideal / "
             f"{dev}: " + ", ".join(f"{n} {a:.1f}/{b:.1f}" for n, a, b in
                                    zip(names, kp["ideal"], kp[dev], strict=True))]
    figures = [
        ("edge map PSNR vs float, ideal macro", _db(fig["edge_psnr_db"]["ideal"]),
         "edge map shown (Fig. 6b), no PSNR"),
        ("edge map SSIM vs float, ideal macro", f"{fig['edge_ssim']['ideal']:.4f}",
         "no SSIM reported"),
        (f"edge map PSNR vs float, {dev} macro", _db(fig["edge_psnr_db"][dev]),
         "experimental image"),
        (f"edge map SSIM vs float, {dev} macro", f"{fig['edge_ssim'][dev]:.4f}", "-"),
        ("kernel PSNR, ideal macro (weight rounding)", _kernel_psnrs(names, kp["ideal"]), "-"),
        (f"kernel PSNR, {dev} macro", _kernel_psnrs(names, kp[dev]), "-"),
        ("array", f"{cfg.rows}x{cfg.physical_columns}, 10 kernels", "25x20, 10 kernels"),
    ]
    data = {"config": cfg.to_dict(), "device": dev, "size": args.size,
            "kernels": {name: w for name, w in zip(names, result["W"].T.tolist(), strict=True)},
            "scales": result["scales"].tolist(), **fig}
    return Report("edges", "edges: edge detection after Li et al. (2018), in Bao et al. (2022)",
                  figures=figures, lines=lines, plot=plot, rtl=rtl, data=data)
