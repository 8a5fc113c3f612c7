"""Next-period spend (cp_toolkit.predict.spend): metrics by hand and a planted signal (Complete
Journey: tests/test_predict.py, on the stage's run)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cp_toolkit.predict import spend as S
from cp_toolkit.predict.evaluation import paired_bootstrap


def test_spend_metrics_by_hand():
    y, p = np.array([0.0, 10.0, 20.0, 30.0]), np.array([5.0, 10.0, 10.0, 40.0])
    m = S.spend_metrics(y, p)
    assert m["mae"] == pytest.approx((5 + 0 + 10 + 10) / 4)
    assert m["rmse"] == pytest.approx(np.sqrt((25 + 0 + 100 + 100) / 4))
    assert m["r2"] == pytest.approx(1 - 225 / 500)  # SS_tot around 15: 225 + 25 + 25 + 225
    assert m["spearman"] == pytest.approx(np.corrcoef([1, 2, 3, 4], [1, 2.5, 2.5, 4])[0, 1])


def test_decile_table_and_bootstrap_by_hand():
    y, p = np.array([1.0, 2.0, 3.0, 4.0]), np.array([4.0, 3.0, 2.0, 1.0])
    table = S.decile_table(y, p, bins=2)
    assert table["customers"].tolist() == [2, 2]
    assert table["predicted_mean"].tolist() == [3.5, 1.5]
    assert table["actual_mean"].tolist() == [1.5, 3.5]
    assert table["actual_share"].tolist() == [0.3, 0.7]
    same = paired_bootstrap(y, p, p, "mae", 50, seed=1)
    assert (same["difference"], same["low"], same["high"]) == (0.0, 0.0, 0.0)
    better = paired_bootstrap(y, y, p, "mae", 200, seed=1)  # model exact: MAE 0 vs 2
    assert better["difference"] == pytest.approx(-2.0) and better["high"] < 0


def _planted(seed: int, n: int = 600):
    """Spend rate exp(3 + z) with z observed; last window and next window independent Gamma draws."""
    rng = np.random.default_rng(seed)
    frames, targets, stamps = [], [], []
    for cutoff in pd.date_range("2020-01-01", periods=4, freq="90D"):
        z = rng.normal(size=n)
        rate = np.exp(3 + z)
        X = pd.DataFrame({"z": z, "noise": rng.normal(size=n), "last_spend": rng.gamma(2.0, rate / 2.0)})
        frames.append(X)
        targets.append(rng.gamma(2.0, rate / 2.0))
        stamps.append(np.full(n, cutoff))
    return pd.concat(frames, ignore_index=True), np.concatenate(targets), np.concatenate(stamps)


def test_planted_feature_beats_last_window_spend():
    X, y, cutoffs = _planted(0)
    Xt, yt, _ = _planted(1, n=1000)
    model = S.SpendSelector(horizon_days=90, seed=0, baseline_column="last_spend").fit(X, y, cutoffs)
    assert model.cv_scheme_ == "time" and model.cv_cutoffs_ == ["2020-03-31", "2020-06-29", "2020-09-27"]
    assert model.chosen_ != "last_window" and (model.fitted_, model.fitted_settings_) == (
        model.chosen_,
        model.chosen_settings_,
    )
    mae_model = S.spend_metrics(yt, model.predict(Xt))["mae"]
    mae_last = S.spend_metrics(yt, Xt["last_spend"].to_numpy())["mae"]
    gap = paired_bootstrap(yt, model.predict(Xt), Xt["last_spend"].to_numpy(), "mae", 500, seed=0)
    assert mae_model < 0.8 * mae_last and gap["high"] < 0


def test_kfold_when_only_one_cutoff():
    X, y, _ = _planted(2, n=200)
    model = S.SpendSelector(seed=0).fit(X, y)
    assert model.cv_scheme_ == "kfold" and len(model.candidates_) == 8


def test_the_fitted_candidate_is_kept_when_the_last_window_wins():
    """A last window that predicts the next exactly is chosen; the best fitted candidate is still
    there to be compared with it, and refit keeps it."""
    X, y, cutoffs = _planted(3, n=300)
    X["last_spend"] = y
    model = S.SpendSelector(horizon_days=90, seed=0, baseline_column="last_spend").fit(X, y, cutoffs)
    assert model.chosen_ == "last_window" and model.fitted_ in S.CANDIDATES
    np.testing.assert_array_equal(model.predict(X), np.clip(y, 0, None))
    assert S.spend_metrics(y, model.predict_model(X))["mae"] > 0
    before = model.fitted_settings_
    assert model.refit(X.iloc[:500], y[:500]).fitted_settings_ == before
