"""Transactions drawn from the BTYD stories, for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["simulate_bgnbd"]


def simulate_bgnbd(
    customers: int,
    params: Mapping[str, float],
    start: str = "2020-01-01",
    acquisition_days: int = 180,
    horizon_days: int = 540,
    max_repeats: int = 40,
    seed: int = 0,
) -> pd.DataFrame:
    """Transactions drawn from the BG/NBD story (for tests and benchmarks): each customer makes a
    first purchase on a day drawn uniformly from the first ``acquisition_days``, then buys as a
    Poisson process of rate lambda ~ Gamma(r, 1/alpha) per day and, after each purchase, drops out
    with probability p ~ Beta(a, b); spend per purchase is log-normal. Purchases after
    ``horizon_days`` or beyond ``max_repeats`` repeats are cut.

    Returns
    -------
    DataFrame
        ``customer_id`` (text), ``ts`` (timestamps at midnight) and ``amount``, in customer order.
    """
    rng = np.random.default_rng(seed)
    first = rng.integers(0, acquisition_days, customers)
    rate = rng.gamma(params["r"], 1 / params["alpha"], customers)
    p = rng.beta(params["a"], params["b"], customers)
    gaps = rng.exponential(1.0, (customers, max_repeats)) / rate[:, None]
    times = first[:, None] + np.cumsum(gaps, axis=1)
    alive = np.arange(1, max_repeats + 1)[None, :] <= rng.geometric(p)[:, None] - 1
    keep = alive & (times < horizon_days)
    who = np.concatenate([np.arange(customers), np.nonzero(keep)[0]])
    day = np.concatenate([first, np.floor(times[keep]).astype(int)])
    order = np.argsort(who, kind="stable")
    return pd.DataFrame(
        {
            "customer_id": pd.Series(who[order]).astype(str).astype("string"),
            "ts": pd.Timestamp(start) + pd.to_timedelta(day[order], unit="D"),
            "amount": np.round(rng.lognormal(3.0, 0.6, len(who)), 2),
        }
    )
