"""What the image workloads (``edges``, ``dct``) share: the photograph, patches as the macro's
input vectors, the figures of merit (PSNR, SSIM) and the plot of images side by side.

The photograph is scikit-image's ``camera`` (512x512, 8-bit grey), a file inside the
scikit-image wheel: nothing is downloaded at run time. scikit-image and SciPy come with the
``workloads`` extra (``pip install 'imcgen[workloads]'``); :func:`require` refuses a run
without them in one line.
"""

import importlib

import numpy as np

from imcgen.core.errors import ImcError

__all__ = ["EXTRA", "require", "camera", "im2col", "psnr", "ssim", "image_row", "add_device"]

#: The extra that brings the image workloads' dependencies.
EXTRA = "pip install 'imcgen[workloads]'"
#: Side of the bundled photograph.
CAMERA_SIDE = 512


def require(workload):
    """Refuse ``workload`` in one line (:class:`ImcError`) when scikit-image or SciPy is
    missing: called by the workloads' ``check``, before any work."""
    for module in ("skimage", "scipy"):
        try:
            importlib.import_module(module)
        except ImportError:
            raise ImcError("workload", workload, f"needs {module} (the image workloads' "
                                                 f"optional dependencies): {EXTRA}") from None


def camera(size=CAMERA_SIDE):
    """scikit-image's bundled ``camera`` photograph, ``size`` x ``size`` 8-bit grey (uint8):
    the original at 512, else downscaled with anti-aliasing (``skimage.transform.resize``) and
    rounded to the nearest grey level."""
    from skimage import data, transform

    image = data.camera()
    if size == image.shape[0] == image.shape[1]:
        return image
    small = transform.resize(image.astype(np.float64), (size, size), anti_aliasing=True,
                             preserve_range=True)
    return np.clip(np.rint(small), 0, 255).astype(np.uint8)


def im2col(image, k):
    """Every ``k`` x ``k`` patch of ``image`` (no padding: the 'valid' positions) as a row of
    ``k * k`` pixels in row-major order, rows in raster order of the patches' top-left corner:
    shape ``((H - k + 1) * (W - k + 1), k * k)``, int64."""
    from imcgen.apps.mapping import im2col as patches

    image = np.asarray(image)
    cols, _ = patches(image.reshape(1, -1), (1, *image.shape), (k, k))  # one channel
    return cols.astype(np.int64)


def psnr(reference, test, peak):
    """Peak signal-to-noise ratio in dB of ``test`` against ``reference``:
    ``10 log10(peak^2 / MSE)``; infinite when they are equal."""
    err = np.asarray(test, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    mse = float(np.mean(err * err))
    return float("inf") if mse == 0 else float(10 * np.log10(peak * peak / mse))


def ssim(reference, test, data_range):
    """Structural similarity (Wang et al., "Image quality assessment: from error visibility to
    structural similarity", 2004) of ``test`` against ``reference``, scikit-image's default
    7x7 uniform window."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(np.asarray(reference, dtype=np.float64),
                                       np.asarray(test, dtype=np.float64),
                                       data_range=data_range))


def image_row(path, panels, title, extra=None):
    """A PNG of grey images side by side: ``panels`` is ``[(image, caption, (vmin, vmax))]``;
    ``extra``, optional, a second row ``[(image, caption)]`` of smaller images (each scaled to
    its own range). Returns ``path``."""
    from imcgen.apps.plots import pyplot

    plt = pyplot()
    cols = max(len(panels), len(extra or ()))
    if extra:
        fig = plt.figure(figsize=(3.2 * len(panels), 3.6 + 3.2 * len(panels) / len(extra)))
        grid = fig.add_gridspec(2, 1, height_ratios=[len(extra), len(panels)])
        top = grid[0].subgridspec(1, len(panels))
        bottom = grid[1].subgridspec(1, len(extra))
        axes = [fig.add_subplot(top[i]) for i in range(len(panels))]
        small = [fig.add_subplot(bottom[i]) for i in range(len(extra))]
    else:
        fig, axes = plt.subplots(1, cols, figsize=(3.2 * cols, 3.8))
        axes, small = list(np.atleast_1d(axes)), []
    for ax, (image, caption, (lo, hi)) in zip(axes, panels, strict=True):
        ax.imshow(image, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(caption, fontsize=8)
        ax.axis("off")
    for ax, (image, caption) in zip(small, extra or (), strict=True):
        ax.imshow(image, cmap="gray", interpolation="nearest")
        ax.set_title(caption, fontsize=6)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def add_device(parser):
    """``--device``: the noisy analog model's device (both image workloads)."""
    parser.add_argument("--device", choices=("rram", "pcm"), default="rram",
                        help="device of the noisy analog model (default rram: Li et al.'s "
                             "1T1R cells)")
