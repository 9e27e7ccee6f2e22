"""Statistics the configuration derives (SP 800-90B health-test cutoffs)."""

import math

__all__ = ["critbinom"]


def critbinom(n, p, target):
    """Smallest k with P(Binomial(n, p) <= k) >= target (Excel's CRITBINOM), i.e. the
    smallest k whose upper tail P(X > k) is at most 1 - target; the tail is summed in log
    space from the top, small terms first (double precision resolves tails far below 2^-40)."""
    alpha = 1.0 - target
    logp, logq = math.log(p), math.log1p(-p)

    def log_pmf(k):
        return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                + k * logp + (n - k) * logq)

    tail = 0.0  # P(X > k), built from k = n - 1 downwards
    for k in range(n - 1, -1, -1):
        tail += math.exp(log_pmf(k + 1))
        if tail > alpha:
            return k + 1
    return 0
