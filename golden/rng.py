"""Counter-based random numbers: Threefry-2x32 (Random123), vectorised in NumPy.

Every stochastic draw of the project (device programming noise, stuck-cell map, TRNG switching
delay, read noise) is a pure function of ``(seed, what, where, when)``, computed identically by
the hardware and by this model, with no generator state to carry or to keep in step::

    key     = (seed mod 2**32, what)
    counter = (where, when)
    bits64  = x0 | x1 << 32,   where (x0, x1) = threefry2x32(key, counter)

Threefry-2x32-R is the generator of Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as
easy as 1, 2, 3" (SC'11), as the Random123 library implements it (``threefry2x32_R`` in
``include/Random123/threefry.h``): the key schedule is ``ks = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA)``;
the counter gets ``ks[0], ks[1]`` before round 0; round ``r`` is ``x0 += x1; x1 = rotl(x1,
R[r % 8]) ^ x0`` with ``R = (13, 15, 26, 6, 17, 29, 16, 24)``; after every fourth round, key
injection ``s`` adds ``ks[s % 3]`` to ``x0`` and ``ks[(s + 1) % 3] + s`` to ``x1``. All
arithmetic is modulo 2**32. Random123's default is 20 rounds; 13 is its smallest
Crush-resistant count.

This module is plain NumPy and knows nothing of the RTL (``imcgen.hdl.rng``).
"""

import numpy as np

__all__ = ["threefry2x32", "draw", "uniform_bits"]

_ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)  # Random123 R_32x2_0_0 .. R_32x2_7_0
_PARITY = np.uint32(0x1BD11BDA)  # SKEIN_KS_PARITY32
_MAX_ROUNDS = 32  # Random123 asserts Nrounds <= 32
_WORD_MAX = (1 << 32) - 1


def _words(name, value):
    """``value`` as a uint32 array, after checking that every element is an integer in range."""
    array = np.asarray(value)
    if array.dtype == np.uint32:
        return array
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers in 0..{_WORD_MAX}, not {array.dtype} values")
    if array.size and (array.min() < 0 or array.max() > _WORD_MAX):
        bad = array[(array < 0) | (array > _WORD_MAX)].flat[0]
        raise ValueError(f"{name} must be integers in 0..{_WORD_MAX} (32-bit unsigned), "
                         f"not {int(bad)}")
    return array.astype(np.uint32)


def _check_rounds(rounds):
    if (not isinstance(rounds, (int, np.integer)) or isinstance(rounds, bool)
            or not 0 <= rounds <= _MAX_ROUNDS):
        raise ValueError(f"rounds must be an integer in 0..{_MAX_ROUNDS}, not {rounds!r}")
    return int(rounds)


def threefry2x32(key0, key1, ctr0, ctr1, rounds=20):
    """Threefry-2x32 with ``rounds`` rounds, element-wise over broadcast arrays.

    Parameters
    ----------
    key0, key1, ctr0, ctr1 : array_like of int
        Key and counter words, each in ``0..2**32 - 1``; the four broadcast together.
    rounds : int
        Number of rounds, ``0..32`` (Random123 allows the same); 20 is Random123's default.

    Returns
    -------
    x0, x1 : ndarray of uint32
        The two output words, of the broadcast shape (0-d for scalar inputs).

    Raises
    ------
    TypeError
        If an input is not of an integer dtype.
    ValueError
        If a word is out of range or ``rounds`` is not an integer in ``0..32``.

    Notes
    -----
    Every operation stays in uint32 (NumPy wraps modulo 2**32 on arrays): nothing is promoted
    to int64. The loop runs over rounds, never over elements.
    """
    rounds = _check_rounds(rounds)
    k0, k1, c0, c1 = (_words(name, value) for name, value in (
        ("key0", key0), ("key1", key1), ("ctr0", ctr0), ("ctr1", ctr1)))
    shape = np.broadcast_shapes(k0.shape, k1.shape, c0.shape, c1.shape)
    # Keys stay as small as given (usually scalars); the state is two full-size words updated
    # in place. At least 1-d: arithmetic on NumPy scalars warns on wraparound, on arrays not.
    full = shape or (1,)
    schedule = (k0, k1, k0 ^ k1 ^ _PARITY)
    x0 = np.empty(full, dtype=np.uint32)
    x1 = np.empty(full, dtype=np.uint32)
    x0[...] = c0
    x1[...] = c1
    x0 += schedule[0]  # key injection 0, before the first round
    x1 += schedule[1]
    spare = np.empty(full, dtype=np.uint32)
    for group in range(0, rounds, 4):  # four rounds, then a key injection
        for r in range(group, min(group + 4, rounds)):
            rot = _ROTATIONS[r % 8]
            x0 += x1
            np.right_shift(x1, np.uint32(32 - rot), out=spare)
            np.left_shift(x1, np.uint32(rot), out=x1)
            x1 |= spare
            x1 ^= x0
        if group + 4 <= rounds:  # only after a complete group, as in Random123
            s = group // 4 + 1
            x0 += schedule[s % 3]
            x1 += schedule[(s + 1) % 3]
            x1 += np.uint32(s)
    return x0.reshape(shape), x1.reshape(shape)


def draw(seed, what, where, when, rounds=20):
    """64 random bits for each ``(seed, what, where, when)``, a pure function of the four.

    Parameters
    ----------
    seed : int or array_like of int
        Run seed; only ``seed mod 2**32`` is used (key word 0).
    what : int or array_like of int
        Which quantity is drawn (key word 1), e.g. one constant per kind of noise.
    where : int or array_like of int
        Where it is drawn, e.g. a flat cell or column index (counter word 0).
    when : int or array_like of int
        When it is drawn, e.g. a read or programming-event index (counter word 1).
    rounds : int
        Threefry rounds, ``0..32``.

    Returns
    -------
    ndarray of uint64
        ``x0 | x1 << 32`` of :func:`threefry2x32` ``(seed mod 2**32, what, where, when)``, of
        the broadcast shape.
    """
    if isinstance(seed, int):
        key0 = seed % (1 << 32)
    else:
        seed = np.asarray(seed)
        if seed.dtype.kind not in "iu":
            raise TypeError(f"seed must be integers, not {seed.dtype} values")
        key0 = (seed.astype(np.uint64) & np.uint64(_WORD_MAX)).astype(np.uint32)  # two's compl.
    x0, x1 = threefry2x32(key0, what, where, when, rounds=rounds)
    return x0.astype(np.uint64) | (x1.astype(np.uint64) << np.uint64(32))


def uniform_bits(bits64, n, offset=0):
    """The ``n``-bit unsigned field at bit ``offset`` of each 64-bit draw.

    Disjoint fields of one draw are independent uniform integers in ``0..2**n - 1``, so one draw
    can serve several small decisions (e.g. a 1-bit stuck flag and a 16-bit noise code).

    Parameters
    ----------
    bits64 : array_like of uint64
        Output of :func:`draw`.
    n : int
        Field width, ``1..64``.
    offset : int
        Position of the field's least significant bit; ``offset + n <= 64``.

    Returns
    -------
    ndarray of uint64
        ``(bits64 >> offset) & (2**n - 1)``, same shape as ``bits64``.
    """
    for name, value in (("n", n), ("offset", offset)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{name} must be an integer, not {value!r}")
    if not 1 <= n <= 64:
        raise ValueError(f"n must be in 1..64, not {n}")
    if not 0 <= offset <= 64 - n:
        raise ValueError(f"offset must be in 0..{64 - n} for a field of {n} bits, not {offset}")
    bits = np.asarray(bits64)
    if bits.dtype != np.uint64:
        if bits.dtype.kind not in "iu" or (bits.size and bits.min() < 0):
            raise TypeError(f"bits64 must be unsigned 64-bit draws, not {bits.dtype} values")
        bits = bits.astype(np.uint64)
    return (bits >> np.uint64(offset)) & np.uint64((1 << n) - 1)
