"""Next-period spend (cp_toolkit.prediction.spend): metrics by hand, a planted signal, Complete Journey."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cp_toolkit.features import orders_from_lines
from cp_toolkit.ingest import ingest
from cp_toolkit.prediction import spend as S

from .spendcat_data import panel, window_features


def test_window_spend_takes_whole_days_after_the_start():
    orders = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b"],
            "ts": pd.to_datetime(["2020-01-10 23:00", "2020-01-11 00:00", "2020-01-20 23:59", "2020-01-21 00:00"]),
            "amount": [1.0, 2.0, 4.0, 8.0],
        }
    )
    got = S.window_spend(orders, pd.Timestamp("2020-01-10"), 10, pd.Index(["a", "b", "c"]))
    assert got.tolist() == [6.0, 0.0, 0.0]  # (Jan 10, Jan 20]: not Jan 10 23:00, not Jan 21


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
    same = S.bootstrap_mae_difference(y, p, p, draws=50, seed=1)
    assert (same["difference"], same["low"], same["high"]) == (0.0, 0.0, 0.0)
    better = S.bootstrap_mae_difference(y, y, p, draws=200, seed=1)  # model exact: MAE 0 vs 2
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
    assert model.chosen_ != "last_window"
    mae_model = S.spend_metrics(yt, model.predict(Xt))["mae"]
    mae_last = S.spend_metrics(yt, Xt["last_spend"].to_numpy())["mae"]
    gap = S.bootstrap_mae_difference(yt, model.predict(Xt), Xt["last_spend"].to_numpy(), draws=500, seed=0)
    assert mae_model < 0.8 * mae_last and gap["high"] < 0


def test_kfold_when_only_one_cutoff():
    X, y, _ = _planted(2, n=200)
    model = S.SpendSelector(seed=0).fit(X, y)
    assert model.cv_scheme_ == "kfold" and len(model.candidates_) == 9


H = 90
TEST_CUTOFF = pd.Timestamp("2017-12-31") - pd.Timedelta(days=H)


@pytest.fixture(scope="module")
def journey_orders():
    tables = ingest("completejourney", as_of="2017-12-31", key=b"k").tables
    return orders_from_lines(tables["transactions"])


def _journey(orders: pd.DataFrame) -> dict:
    """Selection on cutoffs every 30 days whose windows end by the test cutoff; scored on the test window."""
    cutoffs = [TEST_CUTOFF - pd.Timedelta(days=H + 30 * k) for k in range(5)][::-1]
    X, y, stamps = panel(orders, cutoffs, H)
    selector = S.SpendSelector(H, seed=42, baseline_column="spend_last_90d").fit(X, y, stamps)
    Xt = window_features(orders, TEST_CUTOFF)
    yt = S.window_spend(orders, TEST_CUTOFF, H, Xt.index).to_numpy()
    predictions = {
        "model": selector.predict(Xt),
        "last_window": S.window_spend(orders, TEST_CUTOFF - pd.Timedelta(days=H), H, Xt.index).to_numpy(),
        "bgnbd_gamma_gamma": S.clv_expected_spend(orders, TEST_CUTOFF, H, Xt.index).to_numpy(),
    }
    metrics = {name: S.spend_metrics(yt, p) for name, p in predictions.items()}
    best = min(("last_window", "bgnbd_gamma_gamma"), key=lambda b: metrics[b]["mae"])
    gap = S.bootstrap_mae_difference(yt, predictions["model"], predictions[best], draws=1000, seed=42)
    return {
        "selector": selector,
        "metrics": metrics,
        "best": best,
        "gap": gap,
        "deciles": S.decile_table(yt, predictions["model"]),
    }


def _fitted_only(orders: pd.DataFrame) -> dict:
    """The selection among fitted candidates only, scored on the test window against the last window."""
    cutoffs = [TEST_CUTOFF - pd.Timedelta(days=H + 30 * k) for k in range(5)][::-1]
    X, y, stamps = panel(orders, cutoffs, H)
    selector = S.SpendSelector(H, seed=42).fit(X, y, stamps)
    Xt = window_features(orders, TEST_CUTOFF)
    yt = S.window_spend(orders, TEST_CUTOFF, H, Xt.index).to_numpy()
    prediction = selector.predict(Xt)
    gap = S.bootstrap_mae_difference(yt, prediction, Xt["spend_last_90d"].to_numpy(), draws=1000, seed=42)
    return {"chosen": selector.chosen_, "mae": S.spend_metrics(yt, prediction)["mae"], "gap": gap}


def test_complete_journey_spend_against_both_baselines(journey_orders):
    run = _journey(journey_orders)
    m, selector = run["metrics"], run["selector"]
    cv = selector.candidates_.groupby("candidate")["cv_mae"].min().round(1).to_dict()
    print("\ncv MAE by candidate:", cv, "chosen:", selector.chosen_)
    print({k: {n: round(v, 3) for n, v in x.items()} for k, x in m.items()}, run["best"], run["gap"])
    # Honest finding with these simple window features: every fitted candidate errs more than the
    # last window's spend in the time-ordered folds (ridge_log 220.1 vs 177.2), so the selector
    # serves the last window's spend; on the test window it ties that baseline and beats BG/NBD x GG.
    assert selector.chosen_ == "last_window"
    assert cv["last_window"] == pytest.approx(177.2) and cv["ridge_log"] == pytest.approx(220.1)
    assert run["best"] == "last_window"
    assert m["model"]["mae"] == pytest.approx(176.14, abs=0.01)
    assert m["bgnbd_gamma_gamma"]["mae"] == pytest.approx(183.32, abs=0.01)
    assert run["gap"]["high"] <= 0  # not worse than the better baseline beyond the bootstrap noise
    assert run["deciles"]["actual_mean"].is_monotonic_decreasing
    fitted_only = _fitted_only(journey_orders)  # what the best fitted candidate alone would have scored
    print("fitted candidates only:", fitted_only)
    assert fitted_only["chosen"] == "ridge_log"
    assert fitted_only["mae"] == pytest.approx(188.27, abs=0.01) and fitted_only["gap"]["low"] > 0  # loses beyond noise
    again = _journey(journey_orders)
    assert again["metrics"] == m and again["gap"] == run["gap"]
    pd.testing.assert_frame_equal(again["selector"].candidates_, selector.candidates_)
