"""The BTYD expressions (cp_toolkit.clv.btyd): equal to lifetimes wherever lifetimes is finite and
right, equal to 40-digit mpmath references everywhere, including where lifetimes gives NaN."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from lifetimes.datasets import load_cdnow_summary

from cp_toolkit.clv import btyd

from . import mp_btyd as mp_ref

FITTERS = {"bgnbd": BetaGeoFitter, "mbgnbd": ModifiedBetaGeoFitter, "pareto_nbd": ParetoNBDFitter}

#: BG/NBD and MBG/NBD parameters: CDNOW (FHL 2005); a + b < 1 (a retailer's fit, and lifetimes issue 302);
#: a = 1 + 1e-7; a + b = 1 exactly; a at 0 with b in the thousands (no dropout, UCI Online Retail);
#: a and b both large (a narrow dropout distribution), up to BG/NBD's fit to customers who never drop out.
BG_GRID = [
    {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259},
    {"r": 0.7, "alpha": 66.0, "a": 0.0047, "b": 0.5},
    {"r": 0.11, "alpha": 2.24, "a": 0.31, "b": 0.5},
    {"r": 1.3, "alpha": 7.0, "a": 1.0000001, "b": 3.0},
    {"r": 0.5, "alpha": 20.0, "a": 0.0047, "b": 0.9953},
    {"r": 0.72, "alpha": 66.0, "a": 1e-4, "b": 2887.0},
    {"r": 2.0, "alpha": 10.0, "a": 12.0, "b": 2500.0},
    {"r": 0.79, "alpha": 6.7, "a": 1426.0, "b": 2.25e6},
]
#: Pareto/NBD: CDNOW (Fader & Hardie 2005); large s and beta (where lifetimes' P(alive) is NaN at
#: recency = T); Complete Journey's calibration fit (113 NaN forecasts in lifetimes); s = 1 exactly;
#: s and beta huge; s tiny.
PARETO_GRID = [
    {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669},
    {"r": 0.7, "alpha": 66.0, "s": 112.0, "beta": 13589.0},
    {"r": 1.4172, "alpha": 9.6596, "s": 0.1252, "beta": 923.78},
    {"r": 0.9, "alpha": 5.0, "s": 1.0, "beta": 40.0},
    {"r": 3.0, "alpha": 2.0, "s": 800.0, "beta": 1e6},
    {"r": 0.3, "alpha": 8.0, "s": 0.01, "beta": 0.5},
]
#: Histories (x, t_x, T): new customers, one-time buyers of several ages, recency = T, CDNOW's
#: customer 1, frequent buyers (x = 300), an old customer silent for years.
HISTORIES = [(0, 0, 0), (0, 0, 30), (0, 0, 78), (1, 5, 5), (2, 30.43, 38.86), (12, 200, 365), (300, 360, 365),
             (40, 700, 700), (3, 2, 900)]  # fmt: skip
HORIZONS = [1.0, 39.0, 365.0, 3650.0]
MODEL_GRIDS = [("bgnbd", BG_GRID), ("mbgnbd", BG_GRID), ("pareto_nbd", PARETO_GRID)]


def lifetimes_fitter(model: str, params: dict) -> object:
    fitter = FITTERS[model]()
    fitter.params_ = pd.Series(params)
    return fitter


def lifetimes_value(method: str, model: str, params: dict, *args: float) -> float:
    """One value of a lifetimes method (NaN where it fails), warnings silenced."""
    arrays = [np.array([float(v)]) for v in args]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return float(np.asarray(getattr(lifetimes_fitter(model, params), method)(*arrays), dtype=float).ravel()[0])


def reference_expected(model: str, params: dict, t: float, x: float, tx: float, T: float) -> float:
    if model == "pareto_nbd":
        return mp_ref.pareto_expected(params, t, x, tx, T)
    return mp_ref.bg_expected(model, params, t, x, tx, T)


def reference_p_alive(model: str, params: dict, x: float, tx: float, T: float) -> float:
    if model == "pareto_nbd":
        return mp_ref.pareto_p_alive(params, x, tx, T)
    return float(mp_ref.bg_p_alive(model, params, x, tx, T))


CASES = [(model, p, h, t) for model, grid in MODEL_GRIDS for p, h, t in itertools.product(grid, HISTORIES, HORIZONS)]


@pytest.fixture(scope="module")
def expected_table() -> pd.DataFrame:
    """Ours, mpmath's and lifetimes' conditional expected purchases on the grid (684 cases)."""
    rows = []
    for model, p, (x, tx, T), t in CASES:
        rows.append(
            {
                "model": model,
                "params": p,
                "a_near_1": abs(p.get("a", 0) - 1) < 1e-3,
                "ours": float(btyd.expected_purchases(model, p, t, x, tx, T)),
                "mpmath": reference_expected(model, p, t, x, tx, T),
                "lifetimes": lifetimes_value(
                    "conditional_expected_number_of_purchases_up_to_time", model, p, t, x, tx, T
                ),
            }
        )
    return pd.DataFrame(rows)


def test_expected_purchases_equal_mpmath_everywhere(expected_table: pd.DataFrame) -> None:
    error = (expected_table["ours"] - expected_table["mpmath"]).abs() / expected_table["mpmath"].abs()
    assert error.max() < 1e-10, expected_table.loc[error.idxmax()].to_dict()


def test_expected_purchases_equal_lifetimes_where_it_is_finite(expected_table: pd.DataFrame) -> None:
    finite = expected_table[np.isfinite(expected_table["lifetimes"])]
    # lifetimes is NaN on part of the grid: a + b < 1 with x = 0, Pareto/NBD with large s and beta
    nan_share = 1 - len(finite) / len(expected_table)
    assert 0.1 < nan_share < 0.5
    ours_vs_lifetimes = (finite["ours"] - finite["lifetimes"]).abs() / finite["lifetimes"].abs()
    usual = ~finite["a_near_1"]
    assert ours_vs_lifetimes[usual].max() < 1e-8
    # at a = 1 + 1e-7 lifetimes' closed form divides by a - 1: its own error, not ours, reaches 1e-6
    lifetimes_error = (finite["lifetimes"] - finite["mpmath"]).abs() / finite["mpmath"].abs()
    assert lifetimes_error[~usual].max() > 1e-7
    assert (ours_vs_lifetimes[~usual] - lifetimes_error[~usual]).abs().max() < 1e-10


def test_the_reported_lifetimes_failures_are_finite_and_right() -> None:
    """BG/NBD with a + b < 1 and x = 0 (NaN in lifetimes); Pareto/NBD P(alive) at recency = T with
    s = 112 and beta = 13,589 (NaN in lifetimes; the true value is 1)."""
    bg = {"r": 0.7, "alpha": 66.0, "a": 0.0047, "b": 0.5}
    for T in (0.0, 30.0):
        method = "conditional_expected_number_of_purchases_up_to_time"
        assert np.isnan(lifetimes_value(method, "bgnbd", bg, 90, 0, 0, T))
        ours = float(btyd.expected_purchases("bgnbd", bg, 90.0, 0, 0, T))
        assert ours == pytest.approx(mp_ref.bg_expected("bgnbd", bg, 90.0, 0, 0, T), rel=1e-10)
    pareto = {"r": 0.7, "alpha": 66.0, "s": 112.0, "beta": 13589.0}
    assert np.isnan(lifetimes_value("conditional_probability_alive", "pareto_nbd", pareto, 10, 300, 300))
    assert btyd.p_alive("pareto_nbd", pareto, 10, 300, 300) == 1.0


@pytest.mark.parametrize("model,grid", MODEL_GRIDS)
def test_p_alive_equals_mpmath(model: str, grid: list[dict]) -> None:
    for p, (x, tx, T) in itertools.product(grid, HISTORIES):
        assert float(btyd.p_alive(model, p, x, tx, T)) == pytest.approx(
            reference_p_alive(model, p, x, tx, T), rel=1e-10, abs=1e-300
        ), (p, x, tx, T)


def test_pareto_log_likelihood_equals_mpmath() -> None:
    for p, (x, tx, T) in itertools.product(PARETO_GRID, HISTORIES):
        assert float(btyd.log_likelihood("pareto_nbd", p, x, tx, T)) == pytest.approx(
            mp_ref.pareto_log_likelihood(p, x, tx, T), rel=1e-11
        ), (p, x, tx, T)


@pytest.mark.parametrize("model,grid", MODEL_GRIDS)
def test_purchase_pmf_equals_mpmath_and_sums_to_one(model: str, grid: list[dict]) -> None:
    for p, t in itertools.product(grid[:3] + grid[-2:], (0.0, 1.0, 39.0, 365.0)):
        for n in (0, 1, 2, 7, 40):
            reference = mp_ref.pareto_pmf(p, t, n) if model == "pareto_nbd" else mp_ref.bg_pmf(model, p, t, n)
            assert float(btyd.purchase_pmf(model, p, t, n)) == pytest.approx(reference, rel=1e-9, abs=1e-200)
    p = grid[0]
    counts = np.arange(3_000)
    pmf = btyd.purchase_pmf(model, p, 39.0, counts)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-10)
    # the mean of the distribution is the expected number of purchases of a new customer
    assert (counts * pmf).sum() == pytest.approx(float(btyd.expected_purchases_new(model, p, 39.0)), rel=1e-9)


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow_summary()


@pytest.mark.parametrize("model", list(FITTERS))
def test_equal_lifetimes_on_cdnow(cdnow: pd.DataFrame, model: str) -> None:
    """On the 2,357 CDNOW customers, with lifetimes' own fit: every expression to 1e-10."""
    x, tx, T = (cdnow[c].to_numpy() for c in ("frequency", "recency", "T"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = FITTERS[model]().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"], initial_params=np.ones(4))
    p = dict(fitted.params_)
    for t in (1.0, 39.0, 200.0):
        reference = np.asarray(fitted.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T), float)
        np.testing.assert_allclose(btyd.expected_purchases(model, p, t, x, tx, T), reference, rtol=1e-10)
        reference = float(np.asarray(fitted.expected_number_of_purchases_up_to_time(t)))
        assert float(btyd.expected_purchases_new(model, p, t)) == pytest.approx(reference, rel=1e-10)
    reference = np.asarray(fitted.conditional_probability_alive(x, tx, T), float).ravel()
    np.testing.assert_allclose(btyd.p_alive(model, p, x, tx, T), reference, rtol=1e-10)
    if model == "pareto_nbd":
        theta = tuple(p[k] for k in ("r", "alpha", "s", "beta"))
        reference = ParetoNBDFitter._conditional_log_likelihood(theta, x, tx, T)
        np.testing.assert_allclose(btyd.log_likelihood(model, p, x, tx, T), reference, rtol=1e-10)
    else:
        for t, n in itertools.product((5.0, 39.0, 78.0), (0, 1, 5, 20)):
            reference = float(fitted.probability_of_n_purchases_up_to_time(t, n))
            assert float(btyd.purchase_pmf(model, p, t, n)) == pytest.approx(reference, rel=1e-8)


def test_hand_computed_values() -> None:
    """x = 0 under BG/NBD: P(alive) = 1. MBG/NBD, x = 0: 1 / (1 + a/b ((alpha+T)/alpha)^r).
    Pareto/NBD with s = 1: E[X(t)] = r beta / alpha log(1 + t / beta)."""
    bg = {"r": 0.5, "alpha": 2.0, "a": 1.0, "b": 3.0}
    assert btyd.p_alive("bgnbd", bg, 0, 0, 10) == 1.0
    assert btyd.p_alive("mbgnbd", bg, 0, 0, 10) == pytest.approx(1 / (1 + 1 / 3 * 6.0**0.5))
    pareto = {"r": 2.0, "alpha": 4.0, "s": 1.0, "beta": 10.0}
    assert btyd.expected_purchases_new("pareto_nbd", pareto, 5.0) == pytest.approx(2 * 10 / 4 * np.log(1.5))
    # a = 1, b = 1: p ~ Uniform; E[(1 - (1+p w)^-1)/p] = E[w / (1 + p w)] = log(1 + w)
    assert btyd.beta_expectation(1.0, 1.0, 1.0, 3.0) == pytest.approx(np.log(4.0), rel=1e-12)
