"""Exact integer matrix products through float64 BLAS, on one BLAS thread.

NumPy's int64 matmul has no BLAS. float64 BLAS is exact for integers while every partial sum
stays below 2^53, which the callers' ranges guarantee (checked here; beyond it the exact int64
product is used). One thread: the golden model's products are small or many, and threaded
OpenBLAS on a busy 2-core machine measured 47x slower on a 1000x64 @ 64x16 product (8 ms
against 0.17 ms) and slower even on 8000x256 @ 256x2048 (351 ms against 242 ms).
"""

import numpy as np

__all__ = ["matmul_exact", "product", "tile_products"]

_EXACT = 1 << 53
_EXACT32 = 1 << 24  # float32: integers exact below 2^24
_blas = None  # threadpoolctl's controllers of the BLAS libraries NumPy loaded


class _OneThread:
    """One BLAS thread inside, the previous count restored after: threadpoolctl's library
    controllers called directly (its ``limit()`` context re-reads every library's state on
    each entry, 0.15 ms, as long as a small product itself)."""

    def __enter__(self):
        global _blas
        if _blas is None:
            from threadpoolctl import ThreadpoolController

            _blas = [c for c in ThreadpoolController().lib_controllers
                     if c.user_api == "blas"]
        self._saved = [c.get_num_threads() for c in _blas]
        for c, n in zip(_blas, self._saved, strict=True):
            if n != 1:
                c.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        for c, n in zip(_blas, self._saved, strict=True):
            if n != 1:
                c.set_num_threads(n)


def _one_thread():
    return _OneThread()


def matmul_exact(a, b, bound):
    """``a @ b`` as int64 for integer arrays whose every partial sum is at most ``bound`` in
    magnitude (the caller's range argument)."""
    if bound >= _EXACT:
        return np.asarray(a, dtype=np.int64) @ np.asarray(b, dtype=np.int64)
    with _one_thread():
        product = np.asarray(a, dtype=np.float64) @ np.asarray(b, dtype=np.float64)
    return product.astype(np.int64)


def _real(bound):
    """The float type whose products and sums are exact up to ``bound``, or None (int64)."""
    if bound < _EXACT32:
        return np.float32  # half the memory traffic of float64
    return np.float64 if bound < _EXACT else None


def product(X, W, bound):
    """``X @ W`` as int64, exact for integer arrays whose every partial sum is at most
    ``bound`` in magnitude: float32 BLAS below 2^24, float64 below 2^53, int64 beyond."""
    real = _real(bound)
    if real is None:
        return np.asarray(X, dtype=np.int64) @ np.asarray(W, dtype=np.int64)
    xf = np.asarray(X, dtype=real)
    with _one_thread():
        return (xf @ np.asarray(W, dtype=real)).astype(np.int64)


def tile_products(X, W, tiles, bound):
    """Each row tile's product ``X[:, tile] @ W[tile]``: ``(V, tiles, outputs)`` int64, exact
    for partial sums up to ``bound`` (as :func:`product`)."""
    V, K = X.shape
    rows = K // tiles
    W = np.asarray(W)
    out = np.empty((V, tiles, W.shape[1]), dtype=np.int64)
    for t in range(tiles):
        out[:, t] = product(X[:, t * rows:(t + 1) * rows], W[t * rows:(t + 1) * rows], bound)
    return out
