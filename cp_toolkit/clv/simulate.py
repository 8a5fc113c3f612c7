"""Transactions drawn from the BTYD stories, for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["simulate_bgnbd", "simulate_pareto_nbd"]


def simulate_bgnbd(
    customers: int,
    params: Mapping[str, float],
    start: str = "2020-01-01",
    acquisition_days: int = 180,
    horizon_days: int = 540,
    max_repeats: int = 40,
    seed: int = 0,
    season: np.ndarray | None = None,
) -> pd.DataFrame:
    """Transactions drawn from the BG/NBD story (for tests and benchmarks): each customer makes a
    first purchase on a day drawn uniformly from the first ``acquisition_days``, then buys as a
    Poisson process of rate lambda ~ Gamma(r, 1/alpha) per day (times ``season[month - 1]`` when a
    monthly index is given) and, after each repeat purchase, drops out with probability
    p ~ Beta(a, b) (so the number of repeat purchases made while active is geometric, at least
    1); spend per purchase is log-normal. Purchases after ``horizon_days`` or beyond
    ``max_repeats`` repeats are cut.

    Returns
    -------
    DataFrame
        ``customer_id`` (text), ``ts`` (timestamps at midnight) and ``amount``, in customer order.
    """
    rng = np.random.default_rng(seed)
    first = rng.integers(0, acquisition_days, customers)
    rate = rng.gamma(params["r"], 1 / params["alpha"], customers)
    p = rng.beta(params["a"], params["b"], customers)
    times = _purchase_times(rng, first, rate, max_repeats, start, horizon_days, season)
    alive = np.arange(1, max_repeats + 1)[None, :] <= rng.geometric(p)[:, None]
    return _transactions(rng, first, times, alive & (times < horizon_days), start)


def simulate_pareto_nbd(
    customers: int,
    params: Mapping[str, float],
    start: str = "2020-01-01",
    acquisition_days: int = 180,
    horizon_days: int = 540,
    max_repeats: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Transactions drawn from the Pareto/NBD story: as :func:`simulate_bgnbd`, but each customer
    stays active for an exponential lifetime of rate mu ~ Gamma(s, 1/beta) from the first purchase,
    whatever they buy."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, acquisition_days, customers)
    rate = rng.gamma(params["r"], 1 / params["alpha"], customers)
    with np.errstate(divide="ignore", over="ignore"):  # a rate of 0 (or below 1e-308): never leaves
        lifetime = rng.exponential(1.0, customers) / rng.gamma(params["s"], 1 / params["beta"], customers)
    times = _purchase_times(rng, first, rate, max_repeats, start, horizon_days, None)
    keep = (times < (first + lifetime)[:, None]) & (times < horizon_days)
    return _transactions(rng, first, times, keep, start)


def _purchase_times(
    rng: np.random.Generator,
    first: np.ndarray,
    rate: np.ndarray,
    n: int,
    start: str,
    horizon_days: int,
    season: np.ndarray | None,
) -> np.ndarray:
    """The first ``n`` purchase times (days from ``start``) after each first purchase; with a
    monthly ``season``, a Poisson process thinned to rate x season (Lewis & Shedler)."""
    if season is None:
        return first[:, None] + np.cumsum(rng.exponential(1.0, (len(first), n)) / rate[:, None], axis=1)
    season = np.asarray(season, float)
    top = season.max()
    candidates = n * int(np.ceil(top / season.min())) + 20
    times = first[:, None] + np.cumsum(rng.exponential(1.0, (len(first), candidates)) / (rate * top)[:, None], axis=1)
    months = pd.date_range(start, periods=horizon_days + 1, freq="D").month.to_numpy()
    day = np.minimum(np.floor(times).astype(int), horizon_days)
    accepted = rng.uniform(size=times.shape) < season[months[day] - 1] / top
    rank = np.where(accepted, np.cumsum(accepted, axis=1), 0)
    out = np.full((len(first), n), np.inf)
    rows, cols = np.nonzero((rank > 0) & (rank <= n))
    out[rows, rank[rows, cols] - 1] = times[rows, cols]
    return out


def _transactions(
    rng: np.random.Generator, first: np.ndarray, times: np.ndarray, keep: np.ndarray, start: str
) -> pd.DataFrame:
    """First purchases plus the kept repeat purchases as a transaction table."""
    who = np.concatenate([np.arange(len(first)), np.nonzero(keep)[0]])
    day = np.concatenate([first, np.floor(times[keep]).astype(int)])
    order = np.argsort(who, kind="stable")
    return pd.DataFrame(
        {
            "customer_id": pd.Series(who[order]).astype(str).astype("string"),
            "ts": pd.Timestamp(start) + pd.to_timedelta(day[order], unit="D"),
            "amount": np.round(rng.lognormal(3.0, 0.6, len(who)), 2),
        }
    )
