"""Simple window features and panels for the tests of cp_toolkit.prediction.spend and .categories
(the stage's own window features are built elsewhere)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cp_toolkit.features import BEHAVIOUR, customer_features
from cp_toolkit.prediction.spend import window_spend


def window_features(orders: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """customer_features at ``cutoff`` plus orders and spend in its last 30 and 90 days."""
    out = customer_features(orders, cutoff)[BEHAVIOUR].copy()
    end = pd.Timestamp(cutoff).normalize() + pd.Timedelta(days=1)
    for days in (30, 90):
        recent = orders[(orders["ts"] >= end - pd.Timedelta(days=days)) & (orders["ts"] < end)]
        g = recent.groupby("customer_id", observed=True)["amount"]
        out[f"orders_last_{days}d"] = g.size().reindex(out.index, fill_value=0).astype(float)
        out[f"spend_last_{days}d"] = g.sum().reindex(out.index, fill_value=0.0)
    return out


def panel(orders: pd.DataFrame, cutoffs: list[pd.Timestamp], horizon_days: int):
    """Stacked (X, y, cutoff per row) over ``cutoffs``: features at each, spend over the next h."""
    frames, targets, stamps = [], [], []
    for cutoff in cutoffs:
        X = window_features(orders, cutoff)
        frames.append(X)
        targets.append(window_spend(orders, cutoff, horizon_days, X.index).to_numpy())
        stamps.append(np.full(len(X), pd.Timestamp(cutoff), dtype="datetime64[ns]"))
    return pd.concat(frames), np.concatenate(targets), np.concatenate(stamps)
