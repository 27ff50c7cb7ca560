"""The chi-square tolerance: p-values, goodness of fit, homogeneity."""

from __future__ import annotations

import math

import pytest

from conformance.stats import ALPHA, chi2_sf, gamma_q, goodness_of_fit, homogeneity


@pytest.mark.parametrize(
    ("x", "df", "p"),
    [(3.841459, 1, 0.05), (5.991465, 2, 0.05), (10.827566, 1, 0.001), (16.266236, 3, 0.001)],
)
def test_chi2_survival_matches_tables(x: float, df: int, p: float) -> None:
    assert math.isclose(chi2_sf(x, df), p, rel_tol=1e-4)


def test_gamma_q_edges() -> None:
    assert gamma_q(2.0, 0.0) == 1.0
    assert math.isclose(gamma_q(1.0, 2.0), math.exp(-2.0), rel_tol=1e-9)
    with pytest.raises(ValueError, match="a > 0"):
        gamma_q(0.0, 1.0)


def test_an_even_split_fits() -> None:
    verdict = goodness_of_fit({"a": 98, "b": 102, "c": 100}, {"a": 1, "b": 1, "c": 1})
    assert verdict.ok
    assert verdict.df == 2
    assert "fits" in verdict.detail


def test_a_skewed_split_does_not_fit() -> None:
    verdict = goodness_of_fit({"a": 150, "b": 50}, {"a": 1, "b": 1})
    assert not verdict.ok
    assert verdict.p_value < ALPHA
    assert "does not fit" in verdict.detail


def test_weights_are_proportions() -> None:
    assert goodness_of_fit({"a": 80, "b": 20}, {"a": 80, "b": 20}).ok
    assert not goodness_of_fit({"a": 50, "b": 50}, {"a": 80, "b": 20}).ok


def test_a_backend_with_weight_zero_must_get_nothing() -> None:
    verdict = goodness_of_fit({"a": 99, "b": 1}, {"a": 1, "b": 0})
    assert not verdict.ok
    assert "b=1" in verdict.detail


def test_too_few_requests_are_refused() -> None:
    verdict = goodness_of_fit({"a": 3, "b": 3}, {"a": 1, "b": 1})
    assert not verdict.ok
    assert "too few requests" in verdict.detail


def test_homogeneity() -> None:
    assert homogeneity({"a": 100, "b": 100}, {"a": 100, "b": 100}).ok
    assert homogeneity({"a": 95, "b": 105}, {"a": 105, "b": 95}).ok
    assert not homogeneity({"a": 190, "b": 10}, {"a": 100, "b": 100}).ok
    assert homogeneity({"x": 5}, {"x": 9}).ok
    assert not homogeneity({"x": 5}, {}).ok
