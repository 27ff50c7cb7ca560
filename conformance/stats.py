"""The statistical tolerance for distributions, stated once.

Counts are compared with Pearson's chi-square test at significance
`ALPHA = 0.001`: a check fails only when counts this far from what was
expected would happen by chance less than once in a thousand runs.

- Against a scenario's expected weights: goodness of fit, df = k - 1 over the
  backends with a positive weight; a backend with weight 0 must get nothing.
- Between two data planes: homogeneity of the 2 x k table of their counts,
  df = k - 1 over the categories either one saw.

The approximation needs enough requests: `goodness_of_fit` refuses expected
counts below `MIN_EXPECTED` (5), which names a scenario that sends too few.
The p-value is the chi-square survival function, computed here from the
regularized upper incomplete gamma function (series below a + 1, a continued
fraction above), so no statistics package is needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

ALPHA = 0.001
MIN_EXPECTED = 5.0
_EPS = 1e-14
_TINY = 1e-300


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    statistic: float
    df: int
    p_value: float
    detail: str

    def __str__(self) -> str:
        return self.detail


def gamma_q(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function Q(a, x)."""
    if a <= 0:
        raise ValueError(f"gamma_q needs a > 0, got {a}")
    if x <= 0:
        return 1.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        n = a
        while abs(term) > abs(total) * _EPS:
            n += 1
            term *= x / n
            total += term
        return max(0.0, 1.0 - total * math.exp(log_front))
    b = x + 1 - a
    c = 1 / _TINY
    d = 1 / b
    h = d
    i = 0
    while True:
        i += 1
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = d if abs(d) > _TINY else _TINY
        c = b + an / c
        c = c if abs(c) > _TINY else _TINY
        d = 1 / d
        step = d * c
        h *= step
        if abs(step - 1) < _EPS or i > 10_000:
            break
    return min(1.0, math.exp(log_front) * h)


def chi2_sf(statistic: float, df: int) -> float:
    """P(X >= statistic) for X chi-square with `df` degrees of freedom."""
    return gamma_q(df / 2, statistic / 2)


def goodness_of_fit(
    counts: Mapping[str, int], weights: Mapping[str, float], alpha: float = ALPHA
) -> Verdict:
    total = sum(counts.values())
    weight_sum = sum(weights.values())
    stray = sorted(k for k, n in counts.items() if n and weights.get(k, 0) <= 0)
    if stray:
        shown = ", ".join(f"{k}={counts[k]}" for k in stray)
        return Verdict(False, math.inf, 0, 0.0, f"got requests where none were expected: {shown}")
    live = {k: w / weight_sum for k, w in weights.items() if w > 0}
    expected = {k: total * p for k, p in live.items()}
    small = sorted(k for k, e in expected.items() if e < MIN_EXPECTED)
    if small:
        return Verdict(
            False,
            math.nan,
            0,
            math.nan,
            f"too few requests ({total}) for the chi-square test: expected count of "
            f"{small[0]} is {expected[small[0]]:.1f} < {MIN_EXPECTED:g}",
        )
    statistic = sum((counts.get(k, 0) - e) ** 2 / e for k, e in expected.items())
    df = len(expected) - 1
    p = chi2_sf(statistic, df) if df > 0 else 1.0
    got = ", ".join(f"{k}={counts.get(k, 0)}" for k in sorted(expected))
    want = ", ".join(f"{k}={expected[k]:.1f}" for k in sorted(expected))
    ok = p >= alpha
    verb = "fits" if ok else "does not fit"
    detail = (
        f"distribution {got} {verb} the expected {want} "
        f"(chi-square {statistic:.2f}, df {df}, p {p:.3g}, alpha {alpha:g})"
    )
    return Verdict(ok, statistic, df, p, detail)


def homogeneity(a: Mapping[str, int], b: Mapping[str, int], alpha: float = ALPHA) -> Verdict:
    """Whether two sets of counts plausibly come from the same distribution."""
    keys = sorted(k for k in set(a) | set(b) if a.get(k, 0) or b.get(k, 0))
    total_a, total_b = sum(a.get(k, 0) for k in keys), sum(b.get(k, 0) for k in keys)
    if total_a == 0 or total_b == 0:
        same = total_a == total_b
        return Verdict(same, 0.0, 0, 1.0 if same else 0.0, "one side has no counts")
    if len(keys) == 1:
        return Verdict(True, 0.0, 0, 1.0, f"both only {keys[0]}")
    grand = total_a + total_b
    statistic = 0.0
    for k in keys:
        column = a.get(k, 0) + b.get(k, 0)
        for observed, row in ((a.get(k, 0), total_a), (b.get(k, 0), total_b)):
            expected = row * column / grand
            statistic += (observed - expected) ** 2 / expected
    df = len(keys) - 1
    p = chi2_sf(statistic, df)
    ok = p >= alpha
    detail = (
        f"{dict((k, a.get(k, 0)) for k in keys)} vs {dict((k, b.get(k, 0)) for k in keys)}: "
        f"{'same' if ok else 'different'} distribution "
        f"(chi-square {statistic:.2f}, df {df}, p {p:.3g}, alpha {alpha:g})"
    )
    return Verdict(ok, statistic, df, p, detail)
