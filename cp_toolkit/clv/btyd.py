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
from scipy.special import betainc, betaln, gammaln, hyp2f1, log_expit, logsumexp, roots_legendre

__all__ = [
    "MODELS",
    "beta_expectation",
    "expected_purchases",
    "expected_purchases_new",
    "log_likelihood",
    "p_alive",
    "purchase_pmf",
]

MODELS = ("bgnbd", "mbgnbd", "pareto_nbd")
ArrayLike = float | np.ndarray

#: Composite Gauss-Legendre rule on [0, 1]: PANELS panels of NODES nodes (144 nodes reach the
#: mpmath references of the tests to 1e-11; more change nothing).
PANELS, NODES = 12, 12
_x, _w = roots_legendre(NODES)
_RULE_NODES = ((np.arange(PANELS)[:, None] + (_x[None, :] + 1) / 2) / PANELS).ravel()
_RULE_LOG_WEIGHTS = np.log(np.tile(_w / 2 / PANELS, PANELS))
#: Coarse grid that brackets where an integrand matters, and how far below its peak it is cut.
COARSE = 49
NEGLIGIBLE = 50.0
#: The closed-form tails of :func:`beta_expectation` start where their first-order error is below this.
TAIL_ACCURACY = 1e-7
#: Rows integrated at once (bounds the memory of the (rows x nodes) arrays).
CHUNK = 20_000


def _arrays(*values: ArrayLike) -> list[np.ndarray]:
    return [np.asarray(v, dtype=float) for v in np.broadcast_arrays(*values)]


def _log_integral(log_f: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Log of the integral of exp(log_f) over [lo, hi], row by row, for a unimodal integrand.

    A coarse grid finds where log_f is within :data:`NEGLIGIBLE` of its peak (one grid step is
    added on each side, so a narrow peak between two grid points is kept); a composite
    Gauss-Legendre rule of ``PANELS x NODES`` nodes covers that bracket.

    Parameters
    ----------
    log_f : callable
        Maps an (m, n) array of points (row i in [lo_i, hi_i]) to the log-integrand there.
    lo, hi : ndarray
        (m, 1) bounds.
    """
    coarse = lo + (hi - lo) * np.linspace(0.0, 1.0, COARSE)[None, :]
    values = np.nan_to_num(log_f(coarse), nan=-np.inf)
    keep = values >= values.max(axis=1, keepdims=True) - NEGLIGIBLE
    step = (hi - lo) / (COARSE - 1)
    first = np.argmax(keep, axis=1)[:, None]
    last = COARSE - 1 - np.argmax(keep[:, ::-1], axis=1)[:, None]
    a = np.maximum(lo, lo + (first - 1) * step)
    b = np.minimum(hi, lo + (last + 1) * step)
    points = a + (b - a) * _RULE_NODES[None, :]
    return logsumexp(log_f(points) + _RULE_LOG_WEIGHTS[None, :], axis=1) + np.log(b - a).ravel()


def beta_expectation(k: ArrayLike, a: ArrayLike, beta: ArrayLike, w: ArrayLike) -> np.ndarray:
    """E[(1 - (1 + p w)^-k) / p] for p ~ Beta(a, beta): expected purchases of an active customer.

    With k = r + x and w = t / (alpha + T) it is BG/NBD's expected purchases in the next t given
    that the customer is alive (beta = b + x; MBG/NBD: b + x + 1). It equals
    ``(a+beta-1)/(a-1) * (1 - (1+w)^-k 2F1(k, beta; a+beta-1; w/(1+w)))``, the closed form, but is
    computed as an integral over s = logit(p), so it needs no hypergeometric function: the
    integrand is positive and smooth in s, and beyond s_L (p small) and s_R (p near 1) its
    first-order expansions integrate in closed form.

    Returns
    -------
    ndarray
        The expectation, of the broadcast shape of the inputs.
    """
    k, a, beta, w = _arrays(k, a, beta, w)
    flat = [v.ravel() for v in (k, a, beta, w)]
    parts = [_beta_expectation(*(v[i : i + CHUNK, None] for v in flat)) for i in range(0, k.size, CHUNK)]
    return np.concatenate(parts).reshape(k.shape) if parts else np.zeros(k.shape)


def _beta_expectation(k: np.ndarray, a: np.ndarray, beta: np.ndarray, w: np.ndarray) -> np.ndarray:
    """:func:`beta_expectation` of (m, 1) columns."""
    log_norm = betaln(a, beta)
    kw = k * w
    f1 = -np.expm1(-k * np.log1p(w))  # p * f(p) at p = 1
    df1 = kw * np.exp(-(k + 1) * np.log1p(w)) - f1  # f'(1)
    s_lo = np.log(TAIL_ACCURACY / (a + beta + (k + 1) * w + 1))
    s_hi = -np.log(TAIL_ACCURACY / (a + beta + np.abs(df1) / f1 + 1))

    def log_integrand(s: np.ndarray) -> np.ndarray:
        log_p, log_q = log_expit(s), log_expit(-s)
        p = np.exp(log_p)
        log_f = np.log(-np.expm1(-k * np.log1p(p * w))) - log_p
        return a * log_p + beta * log_q + log_f

    middle = _log_integral(log_integrand, s_lo, s_hi)
    # s < s_lo: p^a (1-p)^beta f(p) ds ~ kw e^{as} (1 - (a + beta + (k+1)w/2) e^s)
    left = kw * (np.exp(a * s_lo) / a - (a + beta + (k + 1) * w / 2) * np.exp((a + 1) * s_lo) / (a + 1))
    # s > s_hi: ~ e^{-beta s} (f(1) - (f(1)(a + beta) + f'(1)) e^{-s})
    right = f1 * np.exp(-beta * s_hi) / beta - (f1 * (a + beta) + df1) * np.exp(-(beta + 1) * s_hi) / (beta + 1)
    return (np.exp(middle) + (left + right).ravel()) * np.exp(-log_norm.ravel())


def _log_nbd_pmf(n: np.ndarray, r: float, alpha: float, t: np.ndarray) -> np.ndarray:
    """log P(N(t) = n) of the NBD: Poisson counts at a Gamma(r, alpha) rate."""
    return (
        gammaln(r + n)
        - gammaln(r)
        - gammaln(n + 1)
        + r * (np.log(alpha) - np.log(alpha + t))
        + np.where(n > 0, n * (np.log(t) - np.log(alpha + t)), 0.0)
    )


# --- BG/NBD and MBG/NBD ---------------------------------------------------------------------------------


def _bg_terms(model: str, params: Mapping[str, float], x: np.ndarray, tx: np.ndarray, T: np.ndarray):
    """The two log terms of the BG/NBD (MBG/NBD) likelihood: alive at T, and dropped out at t_x."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    shift = 1.0 if model == "mbgnbd" else 0.0  # MBG/NBD: a dropout chance also at the first purchase
    alive = betaln(a, b + x + shift) - betaln(a, b) - (r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        gone = betaln(a + 1, b + x + shift - 1) - betaln(a, b) - (r + x) * np.log(alpha + tx)
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
    survived = np.exp(betaln(a, b + n + shift) - betaln(a, b) + _log_nbd_pmf(n, r, alpha, t))
    at_least_n = np.where(n > 0, betainc(np.maximum(n, 1), r, t / (alpha + t)), 1.0)  # P(N(t) >= n)
    with np.errstate(divide="ignore", invalid="ignore"):
        dropped = np.exp(betaln(a + 1, b + n + shift - 1) - betaln(a, b)) * at_least_n
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

    def log_integrand(v: np.ndarray) -> np.ndarray:
        u = np.exp(v)
        return v - p * np.log(A + u) - q * np.log(B + u)

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

    def log_integrand(v: np.ndarray) -> np.ndarray:
        tau = np.exp(v)
        return v + np.log(s) + s * np.log(beta) - (s + 1) * np.log(beta + tau) + _log_nbd_pmf(n, r, alpha, tau)

    hi = np.log(t)
    dead = np.exp(_log_integral(log_integrand, hi - 2 * NEGLIGIBLE, hi)).reshape(-1, 1)
    return (alive + dead).reshape(shape)


# --- the public dispatch ----------------------------------------------------------------------------------


def _check(model: str) -> None:
    if model not in MODELS:
        raise ValueError(f"unknown purchase model {model!r}; one of {MODELS}")


def log_likelihood(model: str, params: Mapping[str, float], x: ArrayLike, tx: ArrayLike, T: ArrayLike) -> np.ndarray:
    """Log-likelihood of each customer's (x, t_x, T), in the time unit of the data."""
    _check(model)
    x, tx, T = _arrays(x, tx, T)
    if model == "pareto_nbd":
        return _pareto_log_likelihood(params, x, tx, T)
    return _bg_log_likelihood(model, params, x, tx, T)


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
