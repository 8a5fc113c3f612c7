"""High-precision (mpmath, 40 digits) references of the BTYD expressions, written from the papers'
closed forms: BG/NBD (Fader, Hardie & Lee 2005, eqs. 6, 8, 9, 10), MBG/NBD (Batislam et al. 2007)
and Pareto/NBD (Fader & Hardie 2005 note, eqs. 18, 22, 25)."""

from __future__ import annotations

import mpmath as mp

mp.mp.dps = 40


def _mpf(*values: float) -> list[mp.mpf]:
    return [mp.mpf(v) for v in values]


def bg_active(model: str, p: dict, t: float, x: float, T: float, shift_b: float = 0.0) -> mp.mpc:
    """Expected purchases in t of an active customer: (a+b'-1)/(a-1) [1 - (1+w)^-(r+x) 2F1(r+x, b'; a+b'-1; w/(1+w))],
    b' = b + x (+1 for MBG/NBD), w = t / (alpha + T)."""
    r, alpha, a, b, t, x, T = _mpf(p["r"], p["alpha"], p["a"], p["b"] + shift_b, t, x, T)
    bb = b + x + (1 if model == "mbgnbd" else 0)
    k, w = r + x, t / (alpha + T)
    c = a + bb - 1
    return c / (a - 1) * (1 - (1 + w) ** -k * mp.hyp2f1(k, bb, c, w / (1 + w)))


def bg_active_quad(model: str, p: dict, t: float, x: float, T: float) -> mp.mpf:
    """:func:`bg_active` as the integral over p ~ Beta(a, b') of (1 - (1 + p w)^-(r+x)) / p, with
    breakpoints at the Beta's mode +/- up to 12 standard deviations (for a and b' so large that
    mpmath's 2F1 takes minutes)."""
    r, alpha, a, b, t, x, T = _mpf(p["r"], p["alpha"], p["a"], p["b"], t, x, T)
    bb = b + x + (1 if model == "mbgnbd" else 0)
    k, w = r + x, t / (alpha + T)
    mean, sd = a / (a + bb), mp.sqrt(a * bb / ((a + bb) ** 2 * (a + bb + 1)))
    points = sorted({mp.mpf(0), mp.mpf(1), *(mean + j * sd for j in range(-12, 13) if 0 < mean + j * sd < 1)})
    log_norm = mp.log(mp.beta(a, bb))

    def integrand(q: mp.mpf) -> mp.mpf:
        return (1 - (1 + q * w) ** -k) / q * mp.exp((a - 1) * mp.log(q) + (bb - 1) * mp.log(1 - q) - log_norm)

    return mp.quad(integrand, points)


def bg_expected(model: str, p: dict, t: float, x: float, tx: float, T: float) -> float:
    """E[Y(t) | x, t_x, T] = P(alive) x :func:`bg_active`. Where a + b' - 1 or a - 1 is 0 the closed form
    has a removable singularity: there it is the mean of b -/+ 1e-20 (exact to 1e-40 in b); for a and b'
    both above 100 the integral (:func:`bg_active_quad`)."""
    a, bb = p["a"], p["b"] + x + (1 if model == "mbgnbd" else 0)
    if min(a, bb) > 100:
        active = bg_active_quad(model, p, t, x, T)
    elif abs(a + bb - 1) > 1e-9 and abs(a - 1) > 1e-9:
        active = bg_active(model, p, t, x, T)
    else:
        active = (bg_active(model, p, t, x, T, -1e-20) + bg_active(model, p, t, x, T, 1e-20)) / 2
    return _real(bg_p_alive(model, p, x, tx, T) * active)


def _real(value: mp.mpc | mp.mpf) -> float:
    """mpmath's 2F1 with c < 0 may carry a rounding-level imaginary part."""
    assert abs(mp.im(value)) <= mp.mpf("1e-6") * abs(value), value
    return float(mp.re(value))


def bg_p_alive(model: str, p: dict, x: float, tx: float, T: float) -> mp.mpf:
    r, alpha, a, b, x, tx, T = _mpf(p["r"], p["alpha"], p["a"], p["b"], x, tx, T)
    if model == "mbgnbd":
        return 1 / (1 + a / (b + x) * ((alpha + T) / (alpha + tx)) ** (r + x))
    return 1 if x == 0 else 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x))


def pareto_tail(p: mp.mpf, q: mp.mpf, A: mp.mpf, B: mp.mpf) -> mp.mpf:
    """int_0^inf (A+u)^-p (B+u)^-q du by the 2F1 form (mpmath evaluates it for every z in [0, 1))."""
    if A >= B:
        return A**-p * B ** (1 - q) / (p + q - 1) * mp.hyp2f1(p, 1, p + q, 1 - B / A)
    return B**-q * A ** (1 - p) / (p + q - 1) * mp.hyp2f1(q, 1, p + q, 1 - A / B)


def pareto_p_alive(p: dict, x: float, tx: float, T: float) -> float:
    r, alpha, s, beta, x, tx, T = _mpf(p["r"], p["alpha"], p["s"], p["beta"], x, tx, T)
    alive = (alpha + T) ** -(r + x) * (beta + T) ** -s
    gone = s * (pareto_tail(r + x, s + 1, alpha + tx, beta + tx) - pareto_tail(r + x, s + 1, alpha + T, beta + T))
    return float(alive / (alive + gone))


def pareto_log_likelihood(p: dict, x: float, tx: float, T: float) -> float:
    r, alpha, s, beta, x, tx, T = _mpf(p["r"], p["alpha"], p["s"], p["beta"], x, tx, T)
    alive = (alpha + T) ** -(r + x) * (beta + T) ** -s
    gone = s * (pareto_tail(r + x, s + 1, alpha + tx, beta + tx) - pareto_tail(r + x, s + 1, alpha + T, beta + T))
    return float(mp.loggamma(r + x) - mp.loggamma(r) + r * mp.log(alpha) + s * mp.log(beta) + mp.log(alive + gone))


def pareto_expected(p: dict, t: float, x: float, tx: float, T: float) -> float:
    r, alpha, s, beta, t, x, T = _mpf(p["r"], p["alpha"], p["s"], p["beta"], t, x, T)
    if s == 1:  # the limit: (beta + T) log(1 + t / (beta + T))
        lomax = (beta + T) * mp.log(1 + t / (beta + T))
    else:
        lomax = (beta + T) / (s - 1) * (1 - ((beta + T) / (beta + T + t)) ** (s - 1))
    active = (r + x) / (alpha + T) * lomax
    return float(pareto_p_alive(p, x, tx, T) * active)


def nbd_pmf(n: int, r: mp.mpf, alpha: mp.mpf, t: mp.mpf) -> mp.mpf:
    return mp.gamma(r + n) / (mp.gamma(r) * mp.factorial(n)) * (alpha / (alpha + t)) ** r * (t / (alpha + t)) ** n


def bg_pmf(model: str, p: dict, t: float, n: int) -> float:
    """P(X(t) = n) (FHL 2005 eq. 8; MBG/NBD: a dropout chance at 0 too), with the NBD tail P(N >= n)
    as a regularized incomplete beta."""
    r, alpha, a, b, t = _mpf(p["r"], p["alpha"], p["a"], p["b"], t)
    shift = 1 if model == "mbgnbd" else 0
    value = mp.beta(a, b + n + shift) / mp.beta(a, b) * nbd_pmf(n, r, alpha, t)
    if n > 0 or shift:
        tail = mp.betainc(n, r, 0, t / (alpha + t), regularized=True) if n > 0 else 1  # P(N(t) >= n)
        value += mp.beta(a + 1, b + n + shift - 1) / mp.beta(a, b) * tail
    return float(value)


def pareto_pmf(p: dict, t: float, n: int) -> float:
    """P(X(t) = n): alive at t with n purchases, or dead at tau < t after n (the tau-integral)."""
    r, alpha, s, beta, t = _mpf(p["r"], p["alpha"], p["s"], p["beta"], t)
    alive = nbd_pmf(n, r, alpha, t) * (beta / (beta + t)) ** s
    if t == 0:  # nobody has died yet
        return float(alive)
    points = [0, t / 1000, t / 100, *mp.linspace(t / 10, t, 16)]
    dead = mp.quad(lambda u: s * beta**s * (beta + u) ** -(s + 1) * nbd_pmf(n, r, alpha, u), points)
    return float(alive + dead)
