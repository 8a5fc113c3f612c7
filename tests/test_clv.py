"""CLV: our summary against lifetimes, the published CDNOW numbers, and CLV against lifetimes."""

from __future__ import annotations

import os
import warnings

import lifetimes
import numpy as np
import pandas as pd
import pytest
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value
from lifetimes.utils import summary_data_from_transaction_data

from cp_toolkit.clv import CLVModel, bgnbd_log_likelihood, calibration_holdout, rfm_summary

DATASETS = os.path.join(os.path.dirname(lifetimes.__file__), "datasets")


@pytest.fixture(scope="module")
def cdnow_sample() -> pd.DataFrame:
    """The 2,357-customer CDNOW sample as transactions."""
    df = pd.read_csv(
        os.path.join(DATASETS, "CDNOW_sample.txt"),
        sep=r"\s+",
        header=None,
        names=["customer_id", "id", "date", "quantity", "amount"],
        dtype={"customer_id": str},
    )
    return df.assign(ts=pd.to_datetime(df["date"].astype(str), format="%Y%m%d"))


@pytest.fixture(scope="module")
def paper_summary() -> pd.DataFrame:
    return load_cdnow_summary_data_with_monetary_value().rename(columns={"monetary_value": "monetary"})


def test_summary_equals_lifetimes(cdnow_sample) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = summary_data_from_transaction_data(
            cdnow_sample,
            "customer_id",
            "ts",
            monetary_value_col="amount",
            observation_period_end="1997-09-30",
            freq="D",
            freq_multiplier=7,
        )
    ours = rfm_summary(cdnow_sample, "1997-09-30", "weeks")
    pd.testing.assert_frame_equal(
        ours.loc[ref.index], ref.rename(columns={"monetary_value": "monetary"}), check_names=False
    )


def test_holdout_repeat_transactions(cdnow_sample) -> None:
    cal = calibration_holdout(cdnow_sample, "1997-09-30", "1998-06-30", "weeks")
    assert len(cal) == 2_357 and cal["frequency_holdout"].sum() == 1_882
    assert cal["duration_holdout"].iloc[0] == 39.0


def test_bgnbd_published_parameters(paper_summary) -> None:
    model = CLVModel("weeks").fit(paper_summary)
    published = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
    for name, value in published.items():
        assert model.params_[name] == pytest.approx(value, rel=1e-3), name
    assert model.log_likelihood_ == pytest.approx(-9582.43, abs=0.1)
    for name, value in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert model.spend_params_[name] == pytest.approx(value, rel=5e-3), name
    customer1 = paper_summary.loc[[1]]
    assert model.expected_purchases(39, customer1)[0] == pytest.approx(1.226, abs=5e-4)


def test_log_likelihood_hand_computed() -> None:
    """x=0: L = (alpha/(alpha+T))^r.  x=1: L = r alpha^r [b/(a+b) (alpha+T)^-(r+1) + a/(a+b) (alpha+t_x)^-(r+1)]."""
    p = {"r": 0.5, "alpha": 2.0, "a": 1.0, "b": 3.0}
    assert bgnbd_log_likelihood(p, [0], [0], [10]) == pytest.approx(0.5 * np.log(2.0 / 12.0))
    one = 0.5 * 2.0**0.5 * (0.75 * 12.0**-1.5 + 0.25 * 6.0**-1.5)
    assert bgnbd_log_likelihood(p, [1], [4], [10]) == pytest.approx(np.log(one))
    assert bgnbd_log_likelihood(p, [0, 1], [0, 4], [10, 10]) == pytest.approx(0.5 * np.log(2.0 / 12.0) + np.log(one))


def test_clv_equals_lifetimes_loop(paper_summary) -> None:
    model = CLVModel("days").fit(paper_summary)
    monthly = 0.01
    ours = model.clv(paper_summary, 12, (1 + monthly) ** 12 - 1, 1.0, days_per_month=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = model.ggf_.customer_lifetime_value(
            model.bgf_,
            paper_summary["frequency"],
            paper_summary["recency"],
            paper_summary["T"],
            paper_summary["monetary"],
            time=12,
            discount_rate=monthly,
            freq="D",
        )
    np.testing.assert_allclose(ours["clv"].to_numpy(), ref.to_numpy(), rtol=1e-10)


def test_no_repeat_buyers_is_a_clear_error() -> None:
    one_timers = pd.DataFrame({"frequency": [0.0, 0.0], "recency": [0.0, 0.0], "T": [5.0, 3.0], "monetary": [0.0, 0.0]})
    with pytest.raises(ValueError, match="fewer than two repeat buyers"):
        CLVModel().fit(one_timers)


def test_default_run_clv(cj_run) -> None:
    table, card = cj_run.load("clv"), cj_run.load("clv_model")
    assert len(table) == 2_469 and table["clv"].notna().all() and (table["clv"] >= 0).all()
    assert table["p_alive"].between(0, 1).all()
    h = card["holdout"]
    assert h["calibration_end"] == "2017-10-01" and abs(h["aggregate_error_pct"]) < 5
    assert h["correlation"] > 0.7
