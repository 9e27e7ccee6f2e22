"""Exact integer matrix products through float64 BLAS, on one BLAS thread.

NumPy's int64 matmul has no BLAS. float64 BLAS is exact for integers while every partial sum
stays below 2^53, which the callers' ranges guarantee (checked here; beyond it the exact int64
product is used). One thread: the golden model's products are small or many, and threaded
OpenBLAS on a busy 2-core machine measured 47x slower on a 1000x64 @ 64x16 product (8 ms
against 0.17 ms) and slower even on 8000x256 @ 256x2048 (351 ms against 242 ms).
"""

import numpy as np

__all__ = ["matmul_exact"]

_EXACT = 1 << 53
_controller = None


def _one_thread():
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def matmul_exact(a, b, bound):
    """``a @ b`` as int64 for integer arrays whose every partial sum is at most ``bound`` in
    magnitude (the caller's range argument)."""
    if bound >= _EXACT:
        return np.asarray(a, dtype=np.int64) @ np.asarray(b, dtype=np.int64)
    with _one_thread():
        product = np.asarray(a, dtype=np.float64) @ np.asarray(b, dtype=np.float64)
    return product.astype(np.int64)
