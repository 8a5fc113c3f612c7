"""Stage 04 on thin data: it says what it could not do and why, writes what it can, and the later
stages go on (no customer lapses, all do, too few customers, a horizon longer than the history,
one product category)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cp_toolkit.run.artifacts import RunFolder

from .test_small_data import COLUMNS, _csv, _orders, _run

LATER = ("05_clv", "06_persona")


def _notes(run: RunFolder) -> str:
    return " ".join(run.stage_summary("04_prediction").get("notes", []))


def _later_stages_ran(run: RunFolder) -> None:
    assert run.has("clv") and run.has("personas") and run.has("audience")


def _weekly(customers: int, until: str, start: str = "2019-01-01", first: int = 0) -> list[tuple]:
    """Customers ``first``.. who order every 7 days (shifted by a day each) from ``start`` to ``until``."""
    rows = []
    for i in range(first, first + customers):
        days = pd.date_range(pd.Timestamp(start) + pd.Timedelta(days=i % 7), until, freq="7D")
        rows += [(f"k{i}", f"o{i}_{j}", d.strftime("%Y-%m-%d"), 10 + i % 13 + j % 5) for j, d in enumerate(days)]
    return rows


def test_no_customer_lapses(tmp_path: Path) -> None:
    """Everyone orders every week: churn cannot be ranked, spend can; no contact list without churn."""
    run = _run(
        tmp_path, _csv(tmp_path / "t.csv", _weekly(80, "2020-12-31")), stages=("01_ingest", "04_prediction", *LATER)
    )
    notes = _notes(run)
    assert "Churn could not be predicted: in the test window after 2020-10-02 0% of the customers lapsed" in notes
    assert "Without churn probabilities there is no contact list" in notes
    pred = run.load("predictions")
    assert len(pred) == 80 and pred["churn_probability"].isna().all() and pred["expected_spend"].notna().all()
    assert not pred["contact"].any()
    m = run.load("prediction_metrics")
    assert "churn" not in m and m["spend"]["scorers"]["last_window"]["mae"] >= 0
    assert set(m["not_evaluated"]) == {"churn", "categories", "operating"}
    _later_stages_ran(run)


def test_every_customer_lapses(tmp_path: Path) -> None:
    """The 80 customers of the test window all stop before it; only newcomers order after it."""
    rows = _weekly(80, "2020-09-01") + _weekly(5, "2020-12-31", start="2020-11-01", first=100)
    run = _run(tmp_path, _csv(tmp_path / "t.csv", rows), stages=("01_ingest", "04_prediction", *LATER))
    assert "100% of the customers lapsed" in _notes(run)
    pred = run.load("predictions")
    assert len(pred) == 85 and pred["churn_probability"].isna().all()
    _later_stages_ran(run)


def test_fewer_than_50_customers(tmp_path: Path) -> None:
    run = _run(
        tmp_path, _csv(tmp_path / "t.csv", _weekly(30, "2020-12-31")), stages=("01_ingest", "04_prediction", *LATER)
    )
    notes = _notes(run)
    assert "only 30 customers had ordered by the test cutoff (2020-10-02); testing a model needs at least 50" in notes
    pred = run.load("predictions")
    assert len(pred) == 30 and pred[["churn_probability", "expected_spend"]].isna().all().all()
    assert run.load("prediction_metrics")["not_evaluated"].keys() == {"churn", "spend", "categories", "operating"}
    _later_stages_ran(run)


def test_horizon_longer_than_the_history(tmp_path: Path) -> None:
    path = _csv(tmp_path / "t.csv", _orders(60, 8, start="2020-06-01", step_days=20))
    run = _run(tmp_path, path, stages=("01_ingest", "04_prediction", *LATER), horizon_days=180)
    assert "the training cutoff is 2020-01-06, but the orders start on 2020-06-01" in _notes(run)
    assert run.load("predictions")["churn_probability"].isna().all()
    _later_stages_ran(run)


@pytest.fixture
def one_category(tmp_path: Path) -> RunFolder:
    rng = np.random.default_rng(0)
    stops = pd.Timestamp("2019-06-01") + pd.to_timedelta(rng.integers(0, 550, 120), unit="D")
    keep = [r for i in range(120) for r in _weekly(1, "2020-12-31" if i % 3 else str(stops[i].date()), first=i)]
    tx = pd.DataFrame(keep, columns=["c", "o", "t", "a"]).assign(p=lambda d: "p" + (d.index % 3).astype(str))
    tx.to_csv(tmp_path / "t.csv", index=False)
    pd.DataFrame({"product_id": ["p0", "p1", "p2"], "category": "MILK"}).to_csv(tmp_path / "p.csv", index=False)
    sources = {
        "transactions": {"path": str(tmp_path / "t.csv"), "columns": {**COLUMNS, "product_id": "p"}},
        "products": {"path": str(tmp_path / "p.csv"), "columns": {"product_id": "product_id", "category": "category"}},
    }
    return _run(tmp_path, tmp_path / "t.csv", stages=("01_ingest", "03_segmentation", "04_prediction", *LATER),
                sources=sources)  # fmt: skip


def test_one_product_category(one_category: RunFolder) -> None:
    run = one_category
    assert "Next categories could not be predicted: the products fall into 1 known categor(ies)" in _notes(run)
    pred = run.load("predictions")
    assert pred["churn_probability"].notna().all() and pred["next_category_1"].isna().all()
    assert not run.has("category_recommendations")
    m = run.load("prediction_metrics")
    assert {"churn", "spend", "operating"} <= m.keys() and "categories" not in m
    _later_stages_ran(run)


@pytest.mark.parametrize("horizon_days", [30, 90, 180, 365])
def test_long_horizons_still_give_time_ordered_folds(horizon_days: int) -> None:
    """History windows are spread so that the latest ones give every validation fold a window a
    horizon earlier to fit on (with 30 days between windows a 180-day horizon had none)."""
    from cp_toolkit.predict.stage import FOLDS, MAX_WINDOWS, history_step
    from cp_toolkit.predict.windows import TimeSplit, history_cutoffs, time_folds

    h = pd.Timedelta(days=horizon_days)
    as_of = pd.Timestamp("2024-12-31")
    split = TimeSplit(as_of - 2 * h, as_of - h, as_of, horizon_days)
    step = history_step(horizon_days)
    cutoffs = history_cutoffs(split, step, pd.Timestamp("2015-01-01"), step)[-MAX_WINDOWS:]
    assert len(time_folds(pd.DatetimeIndex(cutoffs), horizon_days, FOLDS)) == FOLDS
    assert step == (30 if horizon_days <= 90 else -(-horizon_days // (MAX_WINDOWS - FOLDS)))


def test_a_baseline_that_cannot_be_fitted_is_left_out_with_a_note() -> None:
    from lifetimes.utils import ConvergenceError

    from cp_toolkit.predict.stage import _baseline

    notes: list[str] = []

    def fails() -> pd.Series:
        raise ConvergenceError("the likelihood did not converge")

    assert _baseline(fails, notes) is None and "the likelihood did not converge" in notes[0]
    assert _baseline(lambda: pd.Series([0.1, np.nan]), notes) is None and "not all finite" in notes[1]
    np.testing.assert_array_equal(_baseline(lambda: pd.Series([0.1, 0.2]), notes), [0.1, 0.2])
