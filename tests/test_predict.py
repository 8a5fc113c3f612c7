"""Churn labels, the time split and the out-of-time metrics."""

from __future__ import annotations

import pandas as pd

from cp_toolkit.predict import churn_frame

from .conftest import orders_frame


def test_churn_label_and_window() -> None:
    orders = orders_frame(
        [
            ("a", "2020-01-01", 1.0),
            ("a", "2020-01-15", 1.0),  # buys in the window
            ("b", "2020-01-02", 1.0),
            ("b", "2020-03-01", 1.0),  # buys after the window
            ("c", "2020-01-03", 1.0),  # never again
            ("d", "2020-01-20", 1.0),
        ]
    )  # first order after cutoff
    frame = churn_frame(orders, pd.Timestamp("2020-01-10"), horizon_days=30)
    assert frame["churn"].to_dict() == {"a": 0, "b": 1, "c": 1}
    assert frame.loc["a", "frequency"] == 1  # the window's order is not a feature


def test_default_run_metrics(cj_run) -> None:
    m = cj_run.load("prediction_metrics")
    assert m["split"] == {**m["split"], "train_cutoff": "2017-07-04", "test_cutoff": "2017-10-02", "horizon_days": 90}
    assert 0.85 <= m["model"]["roc_auc"] <= 0.95 and 0.85 <= m["recency_baseline"]["roc_auc"] <= 0.95
    pred = cj_run.load("predictions")
    assert len(pred) == 2_469 and pred["churn_probability"].between(0, 1).all()


def test_prediction_is_deterministic(cj_run) -> None:
    from cp_toolkit.features import orders_from_lines
    from cp_toolkit.predict import evaluate

    orders = orders_from_lines(cj_run.load("transactions"))
    again = evaluate(orders, "2017-12-31", 90, 42)
    pd.testing.assert_frame_equal(
        again.predictions.reset_index(drop=True), cj_run.load("predictions"), check_dtype=False
    )


def test_short_history_is_a_clear_error() -> None:
    import pytest

    from cp_toolkit.predict import evaluate

    orders = orders_frame([("a", "2020-01-01", 1.0), ("a", "2020-03-01", 1.0), ("b", "2020-02-01", 1.0)])
    with pytest.raises(ValueError, match=r"needs orders from before 2019-12-02 .* data start on 2020-01-01"):
        evaluate(orders, "2020-03-31", horizon_days=60, seed=0)
    # no order in the test window: the as_of past the data is named (was: "the test window has only churn = 1")
    with pytest.raises(ValueError, match=r"nor the test window .* lies 91 days \(0.2 years\) after"):
        evaluate(orders, "2020-05-31", horizon_days=30, seed=0)
