"""The expressions of the BTYD purchase models, stable for every parameter range.

BG/NBD (Fader, Hardie & Lee 2005), MBG/NBD (Batislam, Denizel & Filiztekin 2007) and Pareto/NBD
(Schmittlein, Morrison & Colombo 1987; Fader & Hardie 2005, "A note on deriving the Pareto/NBD
model and related expressions"): the log-likelihood of a customer's (x, t_x, T), P(alive), the
expected purchases in the next ``t`` (conditional on the history, and for a new customer) and the
probability of ``n`` purchases within ``t`` of a first purchase.

lifetimes takes the logarithm of Gauss hypergeometric values that are negative but valid (BG/NBD
with a + b < 1 and x = 0) and subtracts overflowing ones (Pareto/NBD with recency = T and large
s and beta), and scipy's ``hyp2f1`` itself is unreliable for negative ``c``, large ``a`` or ``z``
near 1. Here every expression is a sum of positive terms kept in log space:

- The BG/NBD and MBG/NBD expectations are the integral over the dropout probability p ~ Beta:
  E[purchases in t | alive] = E_p[(1 - (1 + p w)^-k) / p] with w = t / (alpha + T), computed by
  Gauss-Legendre quadrature in logit(p) with the closed-form tails (:func:`beta_expectation`); no
  hypergeometric function is evaluated, so a + b < 1, a = 1 and any x, t are fine.
- The Pareto/NBD terms are the integral over the dropout time,
  int_{t0}^inf (alpha + tau)^-(r+x) (beta + tau)^-(s+1) dtau, written as a 2F1(., 1; .; z) with
  positive parameters and 0 <= z < 1, where scipy is accurate (a quadrature takes over wherever
  it is not finite); P(alive) subtracts two of them in log space, so recency = T gives exactly 1.

Parameters are a mapping with ``r, alpha, a, b`` (BG/NBD, MBG/NBD) or ``r, alpha, s, beta``
(Pareto/NBD); ``x`` (repeat purchases), ``tx`` (recency), ``T`` (age) and ``t`` broadcast.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from scipy.special import betainc, gammaln, hyp2f1, log_expit, logsumexp, roots_legendre
from scipy.stats import nbinom

from ..errors import ParameterError

__all__ = [
    "MODELS",
    "beta_expectation",
    "expected_purchases",
    "expected_purchases_new",
    "log_likelihood",
    "nbd_log_likelihood",
    "p_alive",
    "purchase_pmf",
]

MODELS = ("bgnbd", "mbgnbd", "pareto_nbd")
ArrayLike = float | np.ndarray

#: Composite Gauss-Legendre rule on [0, 1]: PANELS panels of NODES nodes (128 nodes reach the
#: mpmath references of the tests to 1e-11; more change nothing).
PANELS, NODES = 8, 16
_x, _w = roots_legendre(NODES)
_RULE_NODES = ((np.arange(PANELS)[:, None] + (_x[None, :] + 1) / 2) / PANELS).ravel()
_RULE_LOG_WEIGHTS = np.log(np.tile(_w / 2 / PANELS, PANELS))
#: Coarse grid that brackets where an integrand matters, and how far below its peak it is cut.
COARSE = 25
NEGLIGIBLE = 40.0
#: Times the bracket of a peak narrower than the coarse grid is searched again inside itself.
REFINEMENTS = 4
#: The closed-form tails of :func:`beta_expectation` start where their first-order error is below this.
TAIL_ACCURACY = 1e-7
#: Above this argument log-gamma differences use Stirling's series (its omitted terms are below 1e-21).
STIRLING_FROM = 1e3
#: Rows integrated at once (bounds the memory of the (rows x nodes) arrays).
CHUNK = 2_000


def _arrays(*values: ArrayLike) -> list[np.ndarray]:
    return [np.asarray(v, dtype=float) for v in np.broadcast_arrays(*values)]


def _log_integral(
    log_f: Callable[[np.ndarray, np.ndarray | None], np.ndarray | tuple[np.ndarray, np.ndarray]],
    lo: np.ndarray,
    hi: np.ndarray,
) -> np.ndarray:
    """Log of the integral of exp(log_f) over [lo, hi], row by row, for a unimodal integrand.

    A coarse grid finds where log_f is within :data:`NEGLIGIBLE` of its peak (one grid step is
    added on each side, so a narrow peak between two grid points is kept); where that bracket
    spans only a few grid steps (a peak narrower than the grid) the search repeats inside it. A
    composite Gauss-Legendre rule of ``PANELS x NODES`` nodes covers the final bracket.

    Parameters
    ----------
    log_f : callable
        ``log_f(points, rows)`` maps an (m, n) array of points (row i in [lo_i, hi_i]) to the
        log-integrand there; ``rows`` selects the rows the points belong to (None: all). It may
        return a pair (log weight, log factor): the integrand is their sum, and the integral of
        the weight alone comes too, on the same nodes (a column each).
    lo, hi : ndarray
        (m, 1) bounds.
    """

    def total(points: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        values = log_f(points, rows)
        return values[0] + values[1] if isinstance(values, tuple) else values

    lo, hi = lo.astype(float).copy(), hi.astype(float).copy()
    narrow = np.ones(len(lo), dtype=bool)
    for _ in range(REFINEMENTS):
        rows = np.nonzero(narrow)[0]
        a, b = _bracket(total, lo[rows], hi[rows], rows)
        narrow_now = (b - a).ravel() <= 4 * (hi[rows] - lo[rows]).ravel() / (COARSE - 1)
        lo[rows], hi[rows] = a, b
        narrow[:] = False
        narrow[rows[narrow_now]] = True
        if not narrow.any():
            break
    points = lo + (hi - lo) * _RULE_NODES[None, :]
    values = log_f(points, None)
    pieces = [values[0] + values[1], values[0]] if isinstance(values, tuple) else [values]
    logs = [logsumexp(v + _RULE_LOG_WEIGHTS[None, :], axis=1) + np.log(hi - lo).ravel() for v in pieces]
    return np.column_stack(logs) if isinstance(values, tuple) else logs[0]


def _bracket(
    log_f: Callable[[np.ndarray, np.ndarray | None], np.ndarray], lo: np.ndarray, hi: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The part of [lo, hi] where log_f is within :data:`NEGLIGIBLE` of its maximum on a coarse grid,
    widened by one grid step on each side."""
    coarse = lo + (hi - lo) * np.linspace(0.0, 1.0, COARSE)[None, :]
    values = np.nan_to_num(log_f(coarse, rows), nan=-np.inf)
    keep = values >= values.max(axis=1, keepdims=True) - NEGLIGIBLE
    step = (hi - lo) / (COARSE - 1)
    first = np.argmax(keep, axis=1)[:, None]
    last = COARSE - 1 - np.argmax(keep[:, ::-1], axis=1)[:, None]
    return np.maximum(lo, lo + (first - 1) * step), np.minimum(hi, lo + (last + 1) * step)


def beta_expectation(k: ArrayLike, a: ArrayLike, beta: ArrayLike, w: ArrayLike) -> np.ndarray:
    """E[(1 - (1 + p w)^-k) / p] for p ~ Beta(a, beta): expected purchases of an active customer.

    With k = r + x and w = t / (alpha + T) it is BG/NBD's expected purchases in the next t given
    that the customer is alive (beta = b + x; MBG/NBD: b + x + 1). It equals
    ``(a+beta-1)/(a-1) * (1 - (1+w)^-k 2F1(k, beta; a+beta-1; w/(1+w)))``, the closed form, but is
    computed as an integral over s = logit(p), so it needs no hypergeometric function: the
    integrand is positive and smooth in s, and beyond s_L (p small) and s_R (p near 1) its
    first-order expansions integrate in closed form.

    Many values of w for one (k, a, beta) (customers with the same number of purchases, several
    horizons) are served by a Chebyshev interpolant of log E in log w through the exact values at
    :func:`_chebyshev_degree` nodes, analytic in a strip of half-width pi, so accurate to the
    quadrature's own precision.

    Returns
    -------
    ndarray
        The expectation, of the broadcast shape of the inputs.
    """
    k, a, beta, w = _arrays(k, a, beta, w)
    out = np.zeros(k.shape)
    some = w > 0  # nothing is bought in no time
    if some.any():
        out[some] = _beta_expectation_grouped(k[some], a[some], beta[some], np.log(w[some]))
    return out


def _beta_expectation_grouped(k: np.ndarray, a: np.ndarray, beta: np.ndarray, u: np.ndarray) -> np.ndarray:
    """:func:`beta_expectation` of 1-d arrays at w = exp(u), by interpolation within each group of
    equal (k, a, beta) that has enough points to gain from it, directly elsewhere."""
    keys = pd.DataFrame({"k": k, "a": a, "beta": beta})
    inverse = keys.groupby(["k", "a", "beta"], sort=True).ngroup().to_numpy()
    groups = keys.drop_duplicates().sort_values(["k", "a", "beta"]).to_numpy()
    lo, hi = np.full(len(groups), np.inf), np.full(len(groups), -np.inf)
    np.minimum.at(lo, inverse, u)
    np.maximum.at(hi, inverse, u)
    degree = _chebyshev_degree(hi - lo)
    tabulate = (np.bincount(inverse, minlength=len(groups)) > 2 * degree) & (hi > lo)
    out = np.empty(len(u))
    direct = ~tabulate[inverse]
    out[direct] = _beta_expectation_direct(k[direct], a[direct], beta[direct], np.exp(u[direct]))
    for n in np.unique(degree[tabulate]):
        chosen = np.nonzero(tabulate & (degree == n))[0]
        rows = np.isin(inverse, chosen)
        out[rows] = _interpolated(groups[chosen], lo[chosen], hi[chosen], n, inverse[rows], u[rows], chosen)
    return out


def _chebyshev_degree(width: np.ndarray) -> np.ndarray:
    """Chebyshev points that interpolate log E to about 1e-14 over a log w range of ``width``
    (convergence at the rate of a strip of half-width pi: exp(asinh(2 pi / width)) per point)."""
    rate = np.arcsinh(2 * np.pi / np.maximum(width, 1e-9))
    return np.clip(np.ceil(34.0 / rate), 8, 128).astype(int)


def _interpolated(
    groups: np.ndarray, lo: np.ndarray, hi: np.ndarray, n: int, member: np.ndarray, u: np.ndarray, ids: np.ndarray
) -> np.ndarray:
    """log E at Chebyshev points of [lo, hi] for each group, and its interpolant at ``u``."""
    nodes = np.cos(np.pi * (np.arange(n) + 0.5) / n)  # in [-1, 1]
    points = (lo + hi)[:, None] / 2 + (hi - lo)[:, None] / 2 * nodes[None, :]
    k, a, beta = (np.repeat(groups[:, i], n) for i in range(3))
    values = np.log(_beta_expectation_direct(k, a, beta, np.exp(points.ravel()))).reshape(len(groups), n)
    coefficients = np.polynomial.chebyshev.chebfit(nodes, values.T, n - 1).T  # (groups, n)
    position = np.searchsorted(ids, member)
    x = (2 * u - (lo + hi)[position]) / (hi - lo)[position]
    return np.exp(_clenshaw(coefficients, position, x))


def _clenshaw(coefficients: np.ndarray, position: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The Chebyshev series of row ``position`` of ``coefficients`` at each x."""
    b1, b2 = np.zeros_like(x), np.zeros_like(x)
    for j in range(coefficients.shape[1] - 1, 0, -1):
        b1, b2 = 2 * x * b1 - b2 + coefficients[position, j], b1
    return x * b1 - b2 + coefficients[position, 0]


def _beta_expectation_direct(k: np.ndarray, a: np.ndarray, beta: np.ndarray, w: np.ndarray) -> np.ndarray:
    """:func:`beta_expectation` of 1-d arrays with w > 0, by quadrature, in chunks of rows."""
    flat = (k, a, beta, w)
    parts = [_beta_expectation(*(v[i : i + CHUNK, None] for v in flat)) for i in range(0, len(k), CHUNK)]
    return np.concatenate(parts) if parts else np.zeros(0)


def _beta_expectation(k: np.ndarray, a: np.ndarray, beta: np.ndarray, w: np.ndarray) -> np.ndarray:
    """:func:`beta_expectation` of (m, 1) columns: the integral of p^a (1-p)^beta f(p) over
    s = logit(p), divided by that of p^a (1-p)^beta on the same nodes (rather than by B(a, beta),
    whose logarithm loses digits when beta is in the millions)."""
    kw = k * w
    f1 = -np.expm1(-k * np.log1p(w))  # p * f(p) at p = 1
    df1 = kw * np.exp(-(k + 1) * np.log1p(w)) - f1  # f'(1)
    s_lo = np.log(TAIL_ACCURACY / (a + beta + (k + 1) * w + 1))
    s_hi = -np.log(TAIL_ACCURACY / (a + beta + np.abs(df1) / f1 + 1))

    def log_integrand(s: np.ndarray, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        kr, ar, br, wr = (v if rows is None else v[rows] for v in (k, a, beta, w))
        log_p = log_expit(s)  # and log(1 - p) = log p - s
        log_f = np.log(-np.expm1(-kr * np.log1p(np.exp(log_p) * wr))) - log_p
        return ar * log_p + br * (log_p - s), log_f

    middle = _log_integral(log_integrand, s_lo, s_hi)
    # s < s_lo: e^{as} (1 - (a + beta) e^s), times f ~ kw (1 - (k+1) w e^s / 2)
    left_1 = a * s_lo + np.log(1 / a - (a + beta) * np.exp(s_lo) / (a + 1))
    left_f = np.log(kw) + a * s_lo + np.log(1 / a - (a + beta + (k + 1) * w / 2) * np.exp(s_lo) / (a + 1))
    # s > s_hi: e^{-beta s} (1 - (a + beta) e^{-s}), times f ~ f(1) - f'(1) e^{-s}
    right_1 = -beta * s_hi + np.log(1 / beta - (a + beta) * np.exp(-s_hi) / (beta + 1))
    right_f = -beta * s_hi + np.log(f1 / beta - (f1 * (a + beta) + df1) * np.exp(-s_hi) / (beta + 1))
    numerator = logsumexp(np.column_stack([middle[:, 0], left_f.ravel(), right_f.ravel()]), axis=1)
    denominator = logsumexp(np.column_stack([middle[:, 1], left_1.ravel(), right_1.ravel()]), axis=1)
    return np.exp(numerator - denominator)


def _log_gamma_ratio(z: np.ndarray, d: np.ndarray) -> np.ndarray:
    """log Gamma(z + d) - log Gamma(z) for z > 0, d >= 0, to full precision also when z is in the
    millions (where the difference of two ``gammaln`` values loses nine digits): Stirling's
    series, differenced term by term, for z >= :data:`STIRLING_FROM`."""
    z, d = np.broadcast_arrays(np.asarray(z, float), np.asarray(d, float))
    with np.errstate(divide="ignore", invalid="ignore"):
        small = gammaln(z + d) - gammaln(z)
        u, v = 1 / z, 1 / (z + d)
        series = (v - u) / 12 - (v**3 - u**3) / 360 + (v**5 - u**5) / 1260 - (v**7 - u**7) / 1680
        large = (z - 0.5) * np.log1p(d / z) + d * np.log(z + d) - d + series
    return np.where(z >= STIRLING_FROM, large, small)


def _log_beta_ratio(a: np.ndarray, b: np.ndarray, da: np.ndarray, db: np.ndarray) -> np.ndarray:
    """log B(a + da, b + db) - log B(a, b), accurate when b is in the millions (da, db >= 0)."""
    return _log_gamma_ratio(a, da) + _log_gamma_ratio(b, db) - _log_gamma_ratio(a + b, da + db)


def _log_nbd_pmf(n: np.ndarray, r: float, alpha: float, t: np.ndarray) -> np.ndarray:
    """log P(N(t) = n) of the NBD: Poisson counts at a Gamma(r, alpha) rate (t = 0: only n = 0)."""
    return nbinom.logpmf(n, r, alpha / (alpha + t))


# --- BG/NBD and MBG/NBD ---------------------------------------------------------------------------------


def _bg_terms(model: str, params: Mapping[str, float], x: np.ndarray, tx: np.ndarray, T: np.ndarray):
    """The two log terms of the BG/NBD (MBG/NBD) likelihood: alive at T, and dropped out at t_x."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    shift = 1.0 if model == "mbgnbd" else 0.0  # MBG/NBD: a dropout chance also at the first purchase
    alive = _log_beta_ratio(a, b, 0.0, x + shift) - (r + x) * np.log(alpha + T)
    # B(a + 1, b + x + shift - 1) = B(a, b + x + shift) a / (b + x + shift - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        gone = (
            _log_beta_ratio(a, b, 0.0, x + shift) + np.log(a) - np.log(b + x + shift - 1) - (r + x) * np.log(alpha + tx)
        )
    if model == "bgnbd":
        gone = np.where(x > 0, gone, -np.inf)  # BG/NBD cannot drop out before a repeat purchase
    return alive, gone


def _bg_log_likelihood(model: str, params: Mapping[str, float], x, tx, T) -> np.ndarray:
    r, alpha = params["r"], params["alpha"]
    alive, gone = _bg_terms(model, params, x, tx, T)
    return gammaln(r + x) - gammaln(r) + r * np.log(alpha) + np.logaddexp(alive, gone)


def _bg_p_alive(model: str, params: Mapping[str, float], x, tx, T) -> np.ndarray:
    alive, gone = _bg_terms(model, params, x, tx, T)
    return np.exp(alive - np.logaddexp(alive, gone))


def _bg_expected(model: str, params: Mapping[str, float], t, x, tx, T) -> np.ndarray:
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    shift = 1.0 if model == "mbgnbd" else 0.0
    return _bg_p_alive(model, params, x, tx, T) * beta_expectation(r + x, a, b + x + shift, t / (alpha + T))


def _bg_expected_new(model: str, params: Mapping[str, float], t) -> np.ndarray:
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    if model == "mbgnbd":  # alive after the first purchase with probability b / (a + b)
        return b / (a + b) * beta_expectation(r, a, b + 1, t / alpha)
    return beta_expectation(r, a, b, t / alpha)


def _bg_pmf(model: str, params: Mapping[str, float], t, n) -> np.ndarray:
    """P(X(t) = n): n purchases while alive throughout, or a dropout right after the n-th."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    shift = 1.0 if model == "mbgnbd" else 0.0
    log_survive = _log_beta_ratio(a, b, 0.0, n + shift)  # E[(1 - p)^(n + shift)]
    survived = np.exp(log_survive + _log_nbd_pmf(n, r, alpha, t))
    at_least_n = np.where(n > 0, betainc(np.maximum(n, 1), r, t / (alpha + t)), 1.0)  # P(N(t) >= n)
    with np.errstate(divide="ignore", invalid="ignore"):  # E[p (1 - p)^(n + shift - 1)]
        dropped = np.exp(log_survive + np.log(a) - np.log(b + n + shift - 1)) * at_least_n
    if model == "bgnbd":
        dropped = np.where(n > 0, dropped, 0.0)
    return survived + dropped


# --- Pareto/NBD -------------------------------------------------------------------------------------------


def _log_tail_integral(p: np.ndarray, q: np.ndarray, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """log of int_0^inf (A + u)^-p (B + u)^-q du for p, q, A, B > 0 and p + q > 1.

    With A >= B it is A^-p B^(1-q) / (p+q-1) * 2F1(p, 1; p+q; 1 - B/A) (else the same with the
    roles swapped): a hypergeometric function with positive parameters and 0 <= z < 1, which
    scipy evaluates to about 1e-9; where it is not finite, a quadrature in log u takes over.
    """
    swap = A < B
    big, small = np.where(swap, B, A), np.where(swap, A, B)
    e_big, e_small = np.where(swap, q, p), np.where(swap, p, q)
    with np.errstate(all="ignore"):
        value = (
            -e_big * np.log(big)
            + (1 - e_small) * np.log(small)
            - np.log(p + q - 1)
            + np.log(hyp2f1(e_big, 1.0, p + q, 1 - small / big))
        )
    bad = ~np.isfinite(value)
    if bad.any():
        value[bad] = _log_tail_quadrature(p[bad], q[bad], A[bad], B[bad])
    return value


def _log_tail_quadrature(p: np.ndarray, q: np.ndarray, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """:func:`_log_tail_integral` by quadrature in v = log u, with closed-form ends."""
    p, q, A, B = (v.reshape(-1, 1) for v in (p, q, A, B))
    lo = np.log(np.minimum(A, B) * TAIL_ACCURACY / (p + q + 1))
    hi = np.log(np.maximum(A, B) * (p + q + 1) / TAIL_ACCURACY)

    def log_integrand(v: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        pr, qr, Ar, Br = (x if rows is None else x[rows] for x in (p, q, A, B))
        u = np.exp(v)
        return v - pr * np.log(Ar + u) - qr * np.log(Br + u)

    # u < e^lo: A^-p B^-q (u - (p/A + q/B) u^2 / 2); u > e^hi: u^(1-p-q)/(p+q-1) - (pA + qB) u^-(p+q)/(p+q)
    head = lo + np.log1p(-(p / A + q / B) * np.exp(lo) / 2) - p * np.log(A) - q * np.log(B)
    tail = (1 - p - q) * hi - np.log(p + q - 1) + np.log1p(-(p * A + q * B) * (p + q - 1) / (p + q) * np.exp(-hi))
    middle = _log_integral(log_integrand, lo, hi)
    return logsumexp(np.column_stack([head.ravel(), middle, tail.ravel()]), axis=1)


def _pareto_terms(params: Mapping[str, float], x, tx, T):
    """log of the two likelihood terms without the constant: alive at T, and dropped out in (t_x, T]."""
    r, alpha, s, beta = (params[k] for k in ("r", "alpha", "s", "beta"))
    x, tx, T = _arrays(x, tx, T)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    p, q = r + x, np.full_like(x, s + 1)
    from_tx = _log_tail_integral(p.ravel(), q.ravel(), (alpha + tx).ravel(), (beta + tx).ravel()).reshape(x.shape)
    from_T = _log_tail_integral(p.ravel(), q.ravel(), (alpha + T).ravel(), (beta + T).ravel()).reshape(x.shape)
    with np.errstate(divide="ignore"):
        gone = np.log(s) + from_tx + np.log(-np.expm1(np.minimum(from_T - from_tx, 0.0)))
    return alive, gone


def _pareto_log_likelihood(params: Mapping[str, float], x, tx, T) -> np.ndarray:
    r, alpha, s, beta = (params[k] for k in ("r", "alpha", "s", "beta"))
    alive, gone = _pareto_terms(params, x, tx, T)
    return gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + np.logaddexp(alive, gone)


def _pareto_p_alive(params: Mapping[str, float], x, tx, T) -> np.ndarray:
    alive, gone = _pareto_terms(params, x, tx, T)
    return np.exp(alive - np.logaddexp(alive, gone))


def _lomax_integral(s: float, beta: np.ndarray, t: np.ndarray) -> np.ndarray:
    """int_0^t (beta / (beta + u))^s du = beta (1 - (beta/(beta+t))^(s-1)) / (s - 1), also at s = 1."""
    log_ratio = np.log1p(t / beta)
    c = s - 1
    if abs(c) < 1e-12:
        return beta * log_ratio
    return beta * -np.expm1(-c * log_ratio) / c


def _pareto_expected(params: Mapping[str, float], t, x, tx, T) -> np.ndarray:
    r, alpha, s, beta = (params[k] for k in ("r", "alpha", "s", "beta"))
    x, T = _arrays(x, T)
    rate = (r + x) / (alpha + T)  # posterior mean purchase rate of an active customer
    return _pareto_p_alive(params, x, tx, T) * rate * _lomax_integral(s, beta + T, np.asarray(t, float))


def _pareto_expected_new(params: Mapping[str, float], t) -> np.ndarray:
    r, alpha, s, beta = (params[k] for k in ("r", "alpha", "s", "beta"))
    return r / alpha * _lomax_integral(s, np.asarray(beta, float), np.asarray(t, float))


def _pareto_pmf(params: Mapping[str, float], t, n) -> np.ndarray:
    """P(X(t) = n): alive at t with n purchases, or dead at tau < t after n purchases,
    int_0^t s beta^s (beta + tau)^-(s+1) NBD(n; tau) dtau, by quadrature in log tau."""
    r, alpha, s, beta = (params[k] for k in ("r", "alpha", "s", "beta"))
    t, n = _arrays(t, n)
    shape = t.shape
    t, n = t.reshape(-1, 1), n.reshape(-1, 1)
    alive = np.exp(_log_nbd_pmf(n, r, alpha, t) + s * (np.log(beta) - np.log(beta + t)))

    def log_integrand(v: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        tau, counts = np.exp(v), n if rows is None else n[rows]
        return v + np.log(s) + s * np.log(beta) - (s + 1) * np.log(beta + tau) + _log_nbd_pmf(counts, r, alpha, tau)

    dead = np.zeros_like(t)  # nobody has died by t = 0
    some = (t > 0).ravel()
    if some.any():
        hi = np.log(t[some])
        n = n[some]
        dead[some] = np.exp(_log_integral(log_integrand, hi - 2 * NEGLIGIBLE, hi)).reshape(-1, 1)
    return (alive + dead).reshape(shape)


# --- the public dispatch ----------------------------------------------------------------------------------


def _check(model: str) -> None:
    if model not in MODELS:
        raise ParameterError(f"unknown purchase model {model!r}; one of {MODELS}")


def log_likelihood(model: str, params: Mapping[str, float], x: ArrayLike, tx: ArrayLike, T: ArrayLike) -> np.ndarray:
    """Log-likelihood of each customer's (x, t_x, T), in the time unit of the data."""
    _check(model)
    x, tx, T = _arrays(x, tx, T)
    if model == "pareto_nbd":
        return _pareto_log_likelihood(params, x, tx, T)
    return _bg_log_likelihood(model, params, x, tx, T)


def nbd_log_likelihood(params: Mapping[str, float], x: ArrayLike, T: ArrayLike) -> np.ndarray:
    """Log-likelihood of each customer's (x, T) when nobody ever drops out (the NBD: Poisson
    purchases at a Gamma(r, alpha) rate), the limit of every model here without dropout."""
    r, alpha = params["r"], params["alpha"]
    x, T = _arrays(x, T)
    return gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * np.log(alpha + T)


def p_alive(model: str, params: Mapping[str, float], x: ArrayLike, tx: ArrayLike, T: ArrayLike) -> np.ndarray:
    """Probability that each customer is still active at T."""
    _check(model)
    x, tx, T = _arrays(x, tx, T)
    if model == "pareto_nbd":
        return _pareto_p_alive(params, x, tx, T)
    return _bg_p_alive(model, params, x, tx, T)


def expected_purchases(
    model: str, params: Mapping[str, float], t: ArrayLike, x: ArrayLike, tx: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """Expected purchases in (T, T + t] given the history (x, t_x, T)."""
    _check(model)
    t, x, tx, T = _arrays(t, x, tx, T)
    if model == "pareto_nbd":
        return _pareto_expected(params, t, x, tx, T)
    return _bg_expected(model, params, t, x, tx, T)


def expected_purchases_new(model: str, params: Mapping[str, float], t: ArrayLike) -> np.ndarray:
    """Expected repeat purchases within t of a new customer's first purchase."""
    _check(model)
    t = np.asarray(t, dtype=float)
    if model == "pareto_nbd":
        return _pareto_expected_new(params, t)
    return _bg_expected_new(model, params, t)


def purchase_pmf(model: str, params: Mapping[str, float], t: ArrayLike, n: ArrayLike) -> np.ndarray:
    """P(X(t) = n): probability of n repeat purchases within t of a first purchase."""
    _check(model)
    t, n = _arrays(t, n)
    if model == "pareto_nbd":
        return _pareto_pmf(params, t, n)
    return _bg_pmf(model, params, t, n)
