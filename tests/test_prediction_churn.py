"""Churn model choice on the training window, calibration, baselines and the paired bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance
from threadpoolctl import threadpool_limits

from cp_toolkit.errors import DataError
from cp_toolkit.prediction.churn import (
    ChurnSelector,
    beats_baseline,
    bgnbd_no_purchase,
    churn_metrics,
    paired_bootstrap,
    time_folds,
    verdict,
)
from cp_toolkit.prediction.windows import history_cutoffs, labelled_windows, targets, time_split, window_features


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
    assert churn_metrics(yt, p)["roc_auc"] >= 0.9
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
    assert paired_bootstrap(y, a.predict_proba(X)[:, 1], X["planted"], 50, 4) == paired_bootstrap(
        y, b.predict_proba(X)[:, 1], X["planted"], 50, 4
    )


def test_one_window_cannot_choose() -> None:
    X, y = simulated(0, cutoffs=1)
    with pytest.raises(DataError, match="two training windows"):
        ChurnSelector(horizon_days=30).fit(X, y)


def test_paired_bootstrap_and_verdicts() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    good, noise = y + rng.normal(0, 0.5, 500), rng.normal(size=500)
    out = paired_bootstrap(y, good, noise, 200, 0)
    assert out["roc_auc"]["low"] > 0.3 and verdict(out["roc_auc"]) == "better" and beats_baseline(out)
    same = paired_bootstrap(y, good, good, 50, 0)
    assert same["roc_auc"] == {"difference": 0.0, "low": 0.0, "high": 0.0} and not beats_baseline(same)
    assert verdict({"low": -0.2, "high": -0.1}) == "worse"
    assert not beats_baseline({"roc_auc": {"low": 0.1, "high": 0.2}, "average_precision": {"low": -0.2, "high": -0.1}})


@pytest.fixture(scope="module")
def cj_orders() -> pd.DataFrame:
    from cp_toolkit.features import orders_from_lines
    from cp_toolkit.ingest import ingest

    return orders_from_lines(ingest("completejourney", as_of="2017-12-31", key=b"k").tables["transactions"])


def test_complete_journey_beats_recency_and_the_logistic_floor(cj_orders: pd.DataFrame) -> None:
    split = time_split(cj_orders, "2017-12-31", 90)
    X, Y = labelled_windows(cj_orders, history_cutoffs(split, 30, cj_orders["ts"].min(), 30), 90)
    sel = ChurnSelector(horizon_days=90, seed=42).fit(X, Y["churn"])
    Xt = window_features(cj_orders, split.test_cutoff)
    yt = targets(cj_orders, split.test_cutoff, 90, Xt.index)["churn"]
    model = churn_metrics(yt, sel.predict_proba(Xt)[:, 1])
    recency = churn_metrics(yt, Xt["recency_days"])
    bgnbd = churn_metrics(yt, bgnbd_no_purchase(cj_orders, split.test_cutoff, 90).reindex(Xt.index))
    # figures of this commit: model 0.892 / 0.382, recency 0.871 / 0.353, BG/NBD 0.888 / 0.365
    assert model["roc_auc"] >= max(recency["roc_auc"], 0.893 - 0.005)
    assert model["average_precision"] >= max(recency["average_precision"], 0.376 - 0.005)
    assert bgnbd["roc_auc"] == pytest.approx(0.888, abs=0.002) and recency["roc_auc"] == pytest.approx(0.871, abs=0.001)
    assert model["brier"] < bgnbd["brier"]
    assert sel.chosen_["model"] == "logistic"
