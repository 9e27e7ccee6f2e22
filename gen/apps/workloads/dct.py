"""``imcgen workload dct``: image compression by a 2-D DCT as two MVMs on one array, after Li
et al., "Analogue signal and image processing with large memristor crossbars" (2018), as Bao
et al., "Toward memristive in-memory computing: principles and applications" (2022), describe
it: the frequency matrix ``Y = C X C^T`` in two steps of matrix multiplication on the same
array, the top 15 % of the spectral amplitudes kept (a compression ratio of 20:3), the image
decompressed by the inverse transform.

The macro holds ``W = C^T`` (``C`` the orthonormal DCT-II matrix of a ``--block`` of 8 or 16)
on ``block`` rows and ``block`` outputs, as G+/G- pairs: 7-bit weights (``C`` times
``63 / max|C|``, rounded half to even) on 6-bit cells, 8-bit ADCs. Both MVMs use the same
weights:

1. each column of an image block (8-bit unsigned pixels) gives a column of ``C X``;
2. each row of ``C X``, rescaled on the host to ``--mid-bits`` signed bits, gives a row of
   ``(C X) C^T`` (``input_signed = True``). The rescale is data-independent: ``z`` times
   ``M / B`` with ``M = 2^(mid_bits - 1) - 1`` and ``B`` the largest ``|z|`` any image can give
   (from ``W`` and the pixel range), rounded half up in integer arithmetic,
   ``floor((2 z M + B) / (2 B))``, then clipped to the signed range (only device noise reaches
   beyond it).

The coefficients (``Y * B / (M s^2)``) then go through the float steps: the largest
``--keep`` of them over the whole image kept, the others zeroed, the inverse DCT (SciPy). The
reference is the same compression on the float DCT (SciPy ``dctn``): PSNR and SSIM of the
macro's image against it and against the original, for the ideal macro and the noisy analog
model (``--device``). The energy per MVM comes from the cost model (``imcgen cost``) on the
exact event counts of both MVMs.
"""

import numpy as np

from imcgen.apps import workloads as common
from imcgen.apps.workloads import Report, check_rtl, images
from imcgen.core.config import MacroConfig
from imcgen.core.errors import ImcError

SUMMARY = "image compression by a 2-D DCT as two MVMs after Li et al. (2018): top 15 % of " \
          "the coefficients kept, PSNR against the float DCT compression"
CONFIG = False
RTL_DEFAULT = 8

WEIGHT_BITS = 7  # signed weights -63..63 as |w| on one 6-bit cell of a G+/G- pair
CELL_BITS = 6
PIXEL_BITS = 8


def dct_matrix(n):
    """The orthonormal DCT-II matrix ``C`` (``C @ x`` is ``scipy.fft.dct(x, norm='ortho')``)."""
    k = np.arange(n)[:, np.newaxis]
    i = np.arange(n)[np.newaxis, :]
    c = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    c[0] /= np.sqrt(2.0)
    return c


def configs(block, mid_bits):
    """The ideal macro (digital crossbar stub) for the two MVMs: 8-bit unsigned pixels, then
    ``mid_bits`` signed inputs; the same array."""
    first = MacroConfig(rows=block, tiles=1, outputs=block, input_bits=PIXEL_BITS,
                        input_signed=False, weight_bits=WEIGHT_BITS, cell_bits=CELL_BITS,
                        weight_mapping="differential", adc_bits=8, adcs=2 * block,
                        schedule="zero_skip")
    return first, first.replace(input_bits=mid_bits, input_signed=True)


def noisy(cfg, device, seed):
    """``cfg`` on the physical analog model of ``device`` (the Python crossbar); the same
    analog seed for both MVMs: one array, one programming."""
    return cfg.replace(**{"crossbar": "external", "analog.device": device,
                          "analog.seed": seed % 2**32})


def mapped_weights(cfg):
    """``(W, s)``: ``W = rint(C^T s)`` (half to even) with ``C`` of side ``cfg.rows`` and
    ``s = weight_max / max|C|``."""
    c = dct_matrix(cfg.rows)
    s = cfg.weight_max / np.abs(c).max()
    return np.rint(c.T * s).astype(np.int64), float(s)


def first_bound(W):
    """``B``: the largest ``|z|`` of the first MVM over every 8-bit unsigned input."""
    top = (1 << PIXEL_BITS) - 1
    return int(max(top * np.maximum(W, 0).sum(axis=0).max(),
                   -top * np.minimum(W, 0).sum(axis=0).min()))


def rescale(z, bound, mid_bits):
    """The first MVM's outputs as the second's signed inputs: ``z M / B`` rounded half up
    (``floor((2 z M + B) / (2 B))``, exact integers), clipped to ``mid_bits`` signed bits."""
    m = (1 << (mid_bits - 1)) - 1
    return np.clip((2 * np.asarray(z, dtype=np.int64) * m + bound) // (2 * bound), -m - 1, m)


def blocks(image, block):
    """``image`` as ``(blocks, block, block)`` in raster order of the blocks."""
    h, w = image.shape
    return image.reshape(h // block, block, w // block, block).swapaxes(1, 2) \
        .reshape(-1, block, block)


def unblock(tiles, shape):
    block = tiles.shape[-1]
    h, w = shape
    return tiles.reshape(h // block, w // block, block, block).swapaxes(1, 2).reshape(h, w)


def macro_dct(cfgs, W, s, B, mid_bits, states_cfgs=None):
    """The 2-D DCT of every block ``B`` (blocks, n, n) on the macro; returns
    ``(coefficients as floats, X1, X2)`` with the two MVMs' integer input vectors."""
    from imcgen import golden

    cfg1, cfg2 = cfgs
    n = B.shape[-1]
    X1 = B.swapaxes(1, 2).reshape(-1, n).astype(np.int64)  # the block's columns
    Z = golden.run(cfg1, W, X1).y.reshape(-1, n, n)  # Z[b, j, k] = (C X)[k, j]
    bound = first_bound(W)
    X2 = rescale(Z, bound, mid_bits).swapaxes(1, 2).reshape(-1, n)  # rows of C X
    Y = golden.run(cfg2, W, X2).y.reshape(-1, n, n)  # Y[b, k, l] = (C X C^T)[k, l]
    m = (1 << (mid_bits - 1)) - 1
    return Y * (bound / m) / (s * s), X1, X2


def compress(coefficients, keep):
    """The inverse DCT (SciPy) of ``coefficients`` (blocks, n, n) with all but the largest
    ``round(keep * size)`` magnitudes over the whole image zeroed."""
    from scipy.fft import idctn

    flat = np.abs(coefficients).ravel()
    kept = max(1, int(round(keep * flat.size)))
    mask = np.zeros(flat.size, dtype=bool)
    mask[np.argpartition(flat, flat.size - kept)[flat.size - kept:]] = True
    kept_coefficients = np.where(mask.reshape(coefficients.shape), coefficients, 0.0)
    return idctn(kept_coefficients, axes=(1, 2), norm="ortho")


def add_arguments(parser):
    parser.add_argument("--size", type=common.int_in(16, images.CAMERA_SIDE),
                        default=images.CAMERA_SIDE, metavar="N",
                        help="side of the photograph in pixels, a multiple of --block (the "
                             "512x512 original, downscaled below 512; default 512)")
    parser.add_argument("--block", type=common.int_in(8, 16, "8 or 16"), choices=(8, 16),
                        default=8, help="DCT block side: 8 (default) or 16")
    parser.add_argument("--keep", type=common.number_in(0.0, 1.0), default=0.15,
                        metavar="FRACTION",
                        help="share of the coefficients kept, the largest (default 0.15: "
                             "the paper's top 15 %%, 20:3)")
    parser.add_argument("--mid-bits", type=common.int_in(2, 16), default=PIXEL_BITS,
                        metavar="BITS",
                        help="signed input bits of the second MVM (default 8, the pixels' "
                             "width)")
    images.add_device(parser)


def check(args):
    images.require("dct")
    if args.size % args.block:
        raise ImcError("--size", args.size, f"must be a multiple of --block {args.block}")
    if args.rtl:
        for cfg in configs(args.block, args.mid_bits):
            common.check_engine(cfg, args.engine)


def evaluate(image, block=8, keep=0.15, mid_bits=PIXEL_BITS, device="rram", seed=0,
             progress=None):
    """Everything but the RTL: float, ideal-macro and noisy-macro compressions and their
    figures. Returns a dict (images under ``"images"``, the vectors under ``"X1"``, ``"X2"``)."""
    from scipy.fft import dctn

    cfgs = configs(block, mid_bits)
    W, s = mapped_weights(cfgs[0])
    B = blocks(image, block)
    ref = dctn(B.astype(np.float64), axes=(1, 2), norm="ortho")
    if progress:
        progress(1, 3)
    ideal, X1, X2 = macro_dct(cfgs, W, s, B, mid_bits)
    if progress:
        progress(2, 3)
    noisy_cfgs = tuple(noisy(c, device, seed) for c in cfgs)
    noise, _, _ = macro_dct(noisy_cfgs, W, s, B, mid_bits)
    if progress:
        progress(3, 3)
    pics = {"original": image.astype(np.float64), "float": unblock(compress(ref, keep),
                                                                   image.shape)}
    coefficient_rms = {}
    for label, coefficients in (("ideal", ideal), (device, noise)):
        pics[label] = unblock(compress(coefficients, keep), image.shape)
        coefficient_rms[label] = float(np.sqrt(np.mean((coefficients - ref) ** 2)))
    figures = {
        "image": list(image.shape),
        "blocks": len(B),
        "vectors_per_mvm": len(X1),
        "kept": max(1, int(round(keep * ref.size))),
        "coefficients": int(ref.size),
        "first_bound": first_bound(W),
        "weight_scale": s,
        "coefficient_rms_error": coefficient_rms,
        "coefficient_rms": float(np.sqrt(np.mean(ref ** 2))),
        "psnr_vs_float_db": {k: images.psnr(pics["float"], pics[k], 255.0)
                             for k in ("ideal", device)},
        "ssim_vs_float": {k: images.ssim(pics["float"], pics[k], 255.0)
                          for k in ("ideal", device)},
        "psnr_vs_original_db": {k: images.psnr(pics["original"], pics[k], 255.0)
                                for k in ("float", "ideal", device)},
    }
    return {"configs": cfgs, "W": W, "X1": X1, "X2": X2, "images": pics, "figures": figures}


def tops_per_w(cfgs, X1, X2):
    """Operations per energy of both MVMs together on the cost model (``imcgen cost``):
    ``(TOPS/W, pJ per 2-D block transform)``."""
    from imcgen.apps.cost import cost, macro_ops

    total_ops = total_pj = 0.0
    for cfg, X in zip(cfgs, (X1, X2), strict=True):
        report = cost(cfg, X, fpga=False)
        total_ops += macro_ops(cfg) * len(X)
        total_pj += report.energy_pj * len(X)
    n = cfgs[0].rows
    return total_ops / total_pj, total_pj / (len(X1) / n)


def run(args, out_dir, progress):
    image = images.camera(args.size)
    dev = args.device
    result = evaluate(image, args.block, args.keep, args.mid_bits, dev, args.seed, progress)
    fig, pics, cfgs = result["figures"], result["images"], result["configs"]
    tops, block_pj = tops_per_w(cfgs, result["X1"], result["X2"])
    fig["tops_per_w"] = tops
    fig["pj_per_block"] = block_pj
    rtl = None
    if args.rtl:
        rtl = check_rtl([(cfgs[0], result["W"], result["X1"][:args.rtl]),
                         (cfgs[1], result["W"], result["X2"][:args.rtl])],
                        args.seed, args.engine)
    out_dir.mkdir(parents=True, exist_ok=True)
    pv, sv, po = fig["psnr_vs_float_db"], fig["ssim_vs_float"], fig["psnr_vs_original_db"]
    panels = [(pics["original"], f"camera, {image.shape[0]}x{image.shape[1]}", (0, 255)),
              (pics["float"], f"float DCT, top {100 * args.keep:g} %: {po['float']:.1f} dB",
               (0, 255)),
              (pics["ideal"], f"macro, ideal: {pv['ideal']:.1f} dB vs float, "
                              f"SSIM {sv['ideal']:.3f}", (0, 255)),
              (pics[dev], f"macro, {dev}: {pv[dev]:.1f} dB vs float, SSIM {sv[dev]:.3f}",
               (0, 255))]
    plot = images.image_row(out_dir / "dct.png", panels,
                            f"2-D DCT ({args.block}x{args.block} blocks) as two MVMs on one "
                            f"array, top {100 * args.keep:g} % kept (after Li et al. 2018)")
    c1, c2 = cfgs
    m = (1 << (args.mid_bits - 1)) - 1
    ratio = fig["coefficients"] / fig["kept"]
    lines = [f"macro: {c1.rows} rows x {c1.physical_columns} physical columns (C^T as G+/G- "
             f"pairs, scaled by {fig['weight_scale']:.2f}), {c1.weight_bits}-bit weights on "
             f"{c1.cell_bits}-bit cells, {c1.adc_bits}-bit ADCs",
             f"MVM 1: {c1.input_bits}-bit unsigned pixels, {fig['vectors_per_mvm']} block "
             f"columns; MVM 2: {c2.input_bits}-bit signed inputs (z * {m} / {fig['first_bound']}"
             f", rounded half up), {fig['vectors_per_mvm']} rows",
             f"image: camera (scikit-image) {image.shape[0]}x{image.shape[1]}, "
             f"{fig['blocks']} blocks; kept {fig['kept']} of {fig['coefficients']} "
             f"coefficients (the largest over the image)",
             "coefficient RMS error vs float DCT: " + ", ".join(
                 f"{k} {v:.2f}" for k, v in fig["coefficient_rms_error"].items())
             + f" (coefficient RMS {fig['coefficient_rms']:.1f})"]
    figures = [
        ("kept coefficients", f"{100 * fig['kept'] / fig['coefficients']:.1f} % "
                              f"({ratio:.3g}:1)", "top 15 % (20:3)"),
        ("PSNR vs float compression, ideal macro", f"{pv['ideal']:.1f} dB",
         "decompressed image shown (Fig. 6c), no PSNR"),
        ("SSIM vs float compression, ideal macro", f"{sv['ideal']:.4f}", "-"),
        (f"PSNR vs float compression, {dev} macro", f"{pv[dev]:.1f} dB",
         "experimental image"),
        (f"SSIM vs float compression, {dev} macro", f"{sv[dev]:.4f}", "-"),
        ("PSNR vs original: float / ideal / " + dev,
         f"{po['float']:.1f} / {po['ideal']:.1f} / {po[dev]:.1f} dB", "-"),
        ("energy efficiency (cost model, both MVMs)", f"{tops:.3g} TOPS/W",
         "119.7 TOPS/W (128x64, 10 ns readout)"),
        ("array", f"{c1.rows}x{c1.physical_columns}, both MVMs", "128x64, both MVMs"),
    ]
    data = {"configs": [c.to_dict() for c in cfgs], "device": dev, "size": args.size,
            "block": args.block, "keep": args.keep, "mid_bits": args.mid_bits,
            "weights": result["W"].tolist(), **fig}
    return Report("dct", "dct: image compression by a 2-D DCT after Li et al. (2018), in Bao "
                         "et al. (2022)", figures=figures, lines=lines, plot=plot, rtl=rtl,
                  data=data)
