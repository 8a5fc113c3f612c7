"""Churn model choice on the training window, calibration, baselines and the paired bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance
from threadpoolctl import threadpool_limits

from cp_toolkit.errors import DataError
from cp_toolkit.predict.churn import ChurnSelector
from cp_toolkit.predict.evaluation import classification_metrics, paired_bootstrap
from cp_toolkit.predict.stage import _overall, verdict
from cp_toolkit.predict.windows import time_folds


@pytest.fixture(autouse=True)
def one_thread():
    """One OpenMP thread: on a loaded machine the boosters' spinning threads slow the fits a
    hundredfold (results do not depend on the thread count)."""
    with threadpool_limits(1):
        yield


SMALL_GRID = {
    "logistic": [{"C": 1.0}],
    "random_forest": [{"min_samples_leaf": 20, "max_features": 0.5}],
    "hist_gradient_boosting": [{"learning_rate": 0.1, "max_leaf_nodes": 7}],
}


def simulated(seed: int, cutoffs: int = 4, n: int = 800) -> tuple[pd.DataFrame, np.ndarray]:
    """Windows 30 days apart where churn depends on ``planted`` only (four noise columns beside it)."""
    rng = np.random.default_rng(seed)
    frames, labels = [], []
    for k in range(cutoffs):
        x = pd.DataFrame(rng.normal(size=(n, 5)), columns=["planted", "noise_1", "noise_2", "noise_3", "noise_4"])
        x.index = pd.MultiIndex.from_product(
            [[pd.Timestamp("2020-01-01") + pd.Timedelta(days=30 * k)], [f"c{i}" for i in range(n)]],
            names=["cutoff", "customer_id"],
        )
        frames.append(x)
        labels.append((3 * x["planted"] + rng.logistic(size=n) > 1.5).astype("int64").to_numpy())
    return pd.concat(frames), np.concatenate(labels)


def test_time_folds_never_train_on_their_future() -> None:
    cutoffs = pd.DatetimeIndex(pd.to_datetime(["2020-01-01"] * 2 + ["2020-01-31"] * 2 + ["2020-03-01"] * 2))
    folds = time_folds(cutoffs, 30, 3)
    assert [(list(t), list(v)) for t, v in folds] == [([0, 1], [2, 3]), ([0, 1, 2, 3], [4, 5])]
    assert time_folds(cutoffs, 31, 3) == [] or [list(v) for _, v in time_folds(cutoffs, 31, 3)] == [[4, 5]]


def test_planted_feature_is_found_and_ranked_first() -> None:
    X, y = simulated(0)
    sel = ChurnSelector(horizon_days=30, n_folds=2, grid=SMALL_GRID, seed=1).fit(X, y)
    assert set(sel.candidates_["model"]) == set(SMALL_GRID) and sel.candidates_["rank"].tolist() == [1, 2, 3]
    Xt, yt = simulated(1, cutoffs=1)
    Xt = Xt.droplevel("cutoff")
    p = sel.predict_proba(Xt)[:, 1]
    assert classification_metrics(yt, p)["roc_auc"] >= 0.9
    imp = permutation_importance(sel.model_, Xt, yt, scoring="roc_auc", n_repeats=5, random_state=0)
    assert Xt.columns[np.argmax(imp.importances_mean)] == "planted"
    assert imp.importances_mean[0] > 10 * np.abs(imp.importances_mean[1:]).max()
    # calibrated: the mean probability is close to the churn rate
    assert abs(p.mean() - yt.mean()) < 0.03


def test_identical_on_rerun() -> None:
    X, y = simulated(2)
    a = ChurnSelector(horizon_days=30, grid=SMALL_GRID, seed=3).fit(X, y)
    b = ChurnSelector(horizon_days=30, grid=SMALL_GRID, seed=3).fit(X, y)
    pd.testing.assert_frame_equal(a.candidates_, b.candidates_)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert paired_bootstrap(y, a.predict_proba(X)[:, 1], X["planted"], "roc_auc", 50, 4) == paired_bootstrap(
        y, b.predict_proba(X)[:, 1], X["planted"], "roc_auc", 50, 4
    )


def test_one_window_cannot_choose() -> None:
    X, y = simulated(0, cutoffs=1)
    with pytest.raises(DataError, match="two training windows"):
        ChurnSelector(horizon_days=30).fit(X, y)


def test_paired_bootstrap_and_verdicts() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    good, noise = y + rng.normal(0, 0.5, 500), rng.normal(size=500)
    out = {m: paired_bootstrap(y, good, noise, m, 200, 0) for m in ("roc_auc", "average_precision")}
    assert out["roc_auc"]["low"] > 0.3 and verdict(out["roc_auc"]) == "better"
    assert _overall([verdict(v) for v in out.values()]) == "better"
    same = paired_bootstrap(y, good, good, "roc_auc", 50, 0)
    assert (same["difference"], same["low"], same["high"]) == (0.0, 0.0, 0.0) and verdict(same) == "tie"
    assert verdict({"low": -0.2, "high": -0.1}) == "worse"
    assert verdict({"low": -0.2, "high": -0.1}, higher_is_better=False) == "better"  # an MAE that falls
    assert _overall(["better", "worse"]) == "mixed" and _overall(["tie", "worse"]) == "worse"


def test_refit_keeps_the_choice_and_recalibrates() -> None:
    X, y = simulated(4)
    sel = ChurnSelector(horizon_days=30, n_folds=2, grid=SMALL_GRID, seed=1).fit(X, y)
    chosen = dict(sel.chosen_)
    Xn, yn = simulated(5, cutoffs=5)
    p = sel.refit(Xn, yn).predict_proba(Xn.xs(Xn.index.get_level_values("cutoff").max(), level="cutoff"))[:, 1]
    assert sel.chosen_ == chosen and 0 < p.min() and p.max() < 1
