"""CLV on data where the published tables do not help: a + b < 1, recency = T with large s and beta,
no dropout at all, a requested model that fails, seasonality, and the counting choices."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter
from lifetimes.utils import summary_data_from_transaction_data

from cp_toolkit import RunFolder, ensure
from cp_toolkit.clv import (
    CLVModel,
    calibration_holdout,
    diagnostics,
    fit_and_validate,
    rfm_summary,
    simulate_bgnbd,
    simulate_pareto_nbd,
)
from cp_toolkit.clv import fitting as clv_fitting
from cp_toolkit.clv.diagnostics import _factor
from cp_toolkit.clv.seasonal import _months_that_fail, month_days
from cp_toolkit.config import load_params
from cp_toolkit.ingest import ingest
from cp_toolkit.persona import customer_profile, p_alive_note

from .conftest import ROOT, orders_frame
from .test_clv import LIFETIMES_COLUMNS, cdnow_sample  # noqa: F401 (fixture)

#: A planted monthly pattern: a pre-Christmas peak and a summer lull (mean about 1).
SEASON = np.array([0.8, 0.75, 0.9, 0.95, 1.0, 0.85, 0.7, 0.8, 1.05, 1.2, 1.5, 1.55])


def test_weekly_counting_equals_lifetimes(cdnow_sample: pd.DataFrame) -> None:  # noqa: F811
    """purchase_period: week is lifetimes' freq='W' (weeks from Monday), recency and T in weeks."""
    # lifetimes also counts the days of the last week after the end of observation: cut them first
    observed = cdnow_sample[cdnow_sample["ts"] <= "1997-09-30"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = summary_data_from_transaction_data(
            observed,
            "customer_id",
            "ts",
            monetary_value_col="amount",
            observation_period_end="1997-09-30",
            freq="W",
        )
    ours = rfm_summary(cdnow_sample, "1997-09-30", "weeks", period="week")[LIFETIMES_COLUMNS]
    pd.testing.assert_frame_equal(
        ours.loc[ref.index], ref.rename(columns={"monetary_value": "monetary"}), check_names=False
    )
    days = rfm_summary(cdnow_sample, "1997-09-30", "weeks")
    assert (ours["frequency"] <= days.loc[ours.index, "frequency"]).all() and ours["frequency"].sum() < days[
        "frequency"
    ].sum()


def test_counting_hand_cases() -> None:
    """Two orders in one week are one weekly purchase; a zero-value day is a purchase but not spend;
    a week across the calibration end counts once."""
    orders = orders_frame(
        [
            ("a", "2020-01-06", 10.0),  # Monday
            ("a", "2020-01-08", 5.0),  # same week
            ("a", "2020-01-20", 0.0),  # a free sample: purchase without revenue
            ("a", "2020-01-21", 4.0),
            ("a", "2020-01-23", 6.0),  # holdout day, calibration week
            ("a", "2020-01-27", 7.0),
        ]
    )
    day = rfm_summary(orders, "2020-02-02", "days", "day").loc["a"]
    assert (day["frequency"], day["spend_frequency"], day["recency"], day["T"]) == (5, 4, 21, 27)
    assert day["monetary"] == pytest.approx((5 + 4 + 6 + 7) / 4)
    week = rfm_summary(orders, "2020-02-02", "days", "week").loc["a"]
    # weeks of 6, 20 and 27 January; the week of 20 January has revenue 0 + 4 + 6
    assert (week["frequency"], week["spend_frequency"], week["recency"], week["T"]) == (2, 2, 21, 21)
    assert week["monetary"] == pytest.approx((10 + 7) / 2)
    assert week["repeats_1"] == 2 and week[[f"repeats_{m}" for m in range(2, 13)]].sum() == 0
    by_day = calibration_holdout(orders, "2020-01-22", "2020-02-02", "days", "day").loc["a"]
    by_week = calibration_holdout(orders, "2020-01-22", "2020-02-02", "days", "week").loc["a"]
    # the week of 20 January holds the calibration end: the holdout is the week of 27 January
    assert by_day["frequency_holdout"] == 2 and by_day["duration_holdout"] == 11
    assert by_week["frequency_holdout"] == 1 and by_week["duration_holdout"] == 7


@pytest.mark.parametrize("zero_amount,kept", [("set_aside", 2), ("purchase", 3)])
def test_zero_amount_at_ingest(tmp_path, zero_amount: str, kept: int) -> None:
    path = tmp_path / "sales.csv"
    path.write_text("customer,when,amount\n1,2020-01-01,5.0\n1,2020-01-05,0\n2,2020-01-03,3.5\n")
    source = {
        "transactions": {"path": str(path), "columns": {"customer_id": "customer", "ts": "when", "amount": "amount"}}
    }
    result = ingest("custom", source, as_of="2020-01-31", key=b"k", zero_amount=zero_amount)
    assert len(result.tables["transactions"]) == kept and result.quality["zero_amount"] == zero_amount
    reasons = result.quarantine["reason"].tolist()
    assert reasons == ([] if zero_amount == "purchase" else ["non_positive_amount"])


def test_zero_value_purchases_lower_the_spend_per_purchase() -> None:
    """With zero-value repeat purchases kept, expected revenue per purchase is the spend model's
    expected revenue per paid purchase times the share of repeat purchases that were paid."""
    tx = simulate_bgnbd(1_500, {"r": 0.5, "alpha": 20.0, "a": 0.8, "b": 2.5}, seed=3)
    zero = tx.index.isin(tx.groupby("customer_id").tail(1).index[::4])  # a quarter of last purchases free
    tx.loc[zero & tx.duplicated("customer_id"), "amount"] = 0.0
    summary = rfm_summary(tx, "2021-06-23")
    model = CLVModel().fit(summary)
    share = summary["spend_frequency"].sum() / summary["frequency"].sum()
    assert model.paid_share_ == pytest.approx(share) and 0.8 < share < 1
    np.testing.assert_allclose(model.expected_spend(summary), model.spend_.expected_spend(summary) * share)


def test_a_plus_b_below_one_end_to_end() -> None:
    """Simulated BG/NBD customers with a + b < 1: fitted, validated and forecast; lifetimes' forecast
    for one-time buyers is NaN with these parameters, ours is finite."""
    tx = simulate_bgnbd(4_000, {"r": 0.5, "alpha": 10.0, "a": 0.2, "b": 0.4}, seed=11, max_repeats=400)
    result = fit_and_validate(tx, "2021-06-24", model="bgnbd", seasonality="none", bootstrap_samples=5)
    card = result.model_card
    for params in (card["purchase_params"], card["holdout"]["calibration_params"]):
        assert params["a"] + params["b"] < 1
    assert card["purchase_model"] == "BG/NBD" and not card["model_choice"]["fallback"]
    assert np.isfinite(result.table[["p_alive", "expected_purchases", "clv"]].to_numpy()).all()
    assert np.isfinite(result.comparison["mae"]).all() and np.isfinite(result.tracking["predicted"]).all()
    fitter = BetaGeoFitter()
    fitter.params_ = pd.Series(card["purchase_params"])
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        theirs = fitter.conditional_expected_number_of_purchases_up_to_time(90, np.zeros(1), np.zeros(1), np.ones(1))
    assert np.isnan(theirs).all()


def test_pareto_nbd_with_recency_equal_to_T_end_to_end() -> None:
    """Simulated Pareto/NBD customers with s = 112, beta = 13,589 (days), some of whom bought on the
    last day: fitted, validated and forecast without a non-finite value."""
    tx = simulate_pareto_nbd(1_200, {"r": 1.2, "alpha": 15.0, "s": 112.0, "beta": 13_589.0}, seed=5)
    summary = rfm_summary(tx, "2021-06-23")
    assert ((summary["recency"] == summary["T"]) & (summary["frequency"] > 0)).sum() >= 3
    result = fit_and_validate(tx, "2021-06-23", model="pareto_nbd", seasonality="none", bootstrap_samples=3)
    assert result.model_card["purchase_model"] == "Pareto/NBD" and not result.model_card["model_choice"]["fallback"]
    assert np.isfinite(result.table[["p_alive", "expected_purchases", "clv"]].to_numpy()).all()
    last_day = result.table["recency"] == result.table["T"]
    assert (result.table.loc[last_day & (result.table["frequency"] > 0), "p_alive"] == 1.0).all()
    assert np.isfinite(result.period_transactions["expected"]).all()


def test_a_model_that_cannot_serve_leaves_a_complete_run(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """clv_model: pareto_nbd with every Pareto/NBD fit failing: the run completes with the best other
    model, and the model card, the stage summary and the report notes name the fallback."""

    def fail(*args, **kwargs):
        raise clv_fitting.ConvergenceError("forced")

    from lifetimes import ParetoNBDFitter

    monkeypatch.setattr(ParetoNBDFitter, "fit", fail)
    monkeypatch.setattr(clv_fitting, "nelder_mead", fail)
    run = RunFolder(tmp_path)
    run.record_params(
        load_params(ROOT / "params" / "cdnow_paper.yaml", clv_model="pareto_nbd", clv_bootstrap_samples=5)
    )
    personas = ensure(run, "personas")
    card = run.load("clv_model")
    assert card["model_choice"]["requested"] == "pareto_nbd" and card["purchase_model"] in ("BG/NBD", "MBG/NBD")
    # the seasonal version is refused for its own reason (too little history) before any fit
    assert card["model_choice"]["fallback"] == (
        "could not use Pareto/NBD: forced; Pareto/NBD + monthly seasonality: a monthly index needs each calendar "
        "month covered on 56 days, about two years, with 20 repeat purchases; no month does"
    )
    assert card["notes"][0].startswith("Fallback: could not use Pareto/NBD: forced; Pareto/NBD + monthly seasonality")
    assert card["notes"][0].endswith(f"; {card['purchase_model']} was used instead.")
    assert run.stage_summary("05_clv")["notes"][0] == card["notes"][0]
    assert personas["cards"] and run.has("audience")


def test_monthly_seasonality_without_a_year_of_calibration_falls_back(cdnow_sample: pd.DataFrame) -> None:  # noqa: F811
    result = fit_and_validate(
        cdnow_sample, "1998-06-30", "weeks", model="bgnbd", seasonality="monthly", calibration_end_date="1997-09-30",
        bootstrap_samples=3,
    )  # fmt: skip
    choice = result.model_card["model_choice"]
    assert choice["chosen"] == "bgnbd" and result.model_card["purchase_model"] == "BG/NBD"
    assert choice["fallback"].startswith("could not use BG/NBD + monthly seasonality: a monthly index needs each")
    assert choice["fallback"].endswith("; no month does")


def test_no_dropout_is_flagged_and_p_alive_is_not_a_risk_signal() -> None:
    """Customers who never leave: BG/NBD's dropout collapses (a -> 0); the likelihood-ratio test against
    the no-dropout model flags it, and persona profiles leave P(alive) blank."""
    tx = simulate_pareto_nbd(3_000, {"r": 0.9, "alpha": 60.0, "s": 1e-4, "beta": 10.0}, seed=6)
    summary = rfm_summary(tx, "2021-06-23")
    model = CLVModel("bgnbd").fit(summary)
    p_alive = model.p_alive(summary)
    check = diagnostics.identification(model, summary, None, p_alive)
    assert not check["dropout_identified"] and not check["p_alive_usable"]
    assert check["dropout_test"]["statistic"] < check["dropout_test"]["critical_value"]
    assert check["messages"][0].startswith("Dropout is not identified: the model fits these data no better than one")
    assert "should not be read as low risk" in check["messages"][0] and check["p_alive_near_one_share"] > 0.9
    # and a base with dropout passes
    churners = simulate_bgnbd(2_000, {"r": 0.5, "alpha": 20.0, "a": 0.8, "b": 2.5}, seed=6, max_repeats=200)
    s2 = rfm_summary(churners, "2021-06-23")
    m2 = CLVModel("bgnbd").fit(s2)
    assert diagnostics.identification(m2, s2, None, m2.p_alive(s2))["dropout_identified"]
    # downstream: 06 blanks P(alive) and says why
    card = {"purchase_model": "BG/NBD", "identification": check}
    assert p_alive_note(card).startswith("P(alive) is not shown: the BG/NBD model could not identify dropout")
    ids = summary.index[:3]
    clv = pd.DataFrame({"customer_id": ids, "frequency": 1.0, "clv": 5.0})  # 05 withholds P(alive)
    segments = pd.DataFrame({"customer_id": ids, "rfm_segment": "Loyal"})
    features = pd.DataFrame(
        {"customer_id": ids, "recency_days": 1, "frequency": 2, "monetary": 3.0, "avg_order_value": 1.5}
    )
    predictions = pd.DataFrame({"customer_id": ids, "churn_probability": 0.1, "churn_risk": "low"})
    profile = customer_profile(segments, features, predictions, clv)
    assert profile["p_alive"].isna().all() and (profile["clv"] == 5.0).all()


def test_month_days_hand_computed() -> None:
    start = pd.DatetimeIndex([pd.Timestamp("2020-01-15"), pd.Timestamp("2019-12-31")])
    days = month_days(start, pd.DatetimeIndex([pd.Timestamp("2020-03-01 12:00"), pd.Timestamp("2021-01-01")]))
    assert days[0].tolist() == [17, 29, 0.5] + [0] * 9
    assert days[1].tolist() == [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 32]  # 2020 is a leap year


@pytest.fixture(scope="module")
def seasonal_base() -> pd.DataFrame:
    """Three years of BG/NBD customers whose purchase rate follows :data:`SEASON`."""
    return simulate_bgnbd(
        2_500, {"r": 0.9, "alpha": 30.0, "a": 0.5, "b": 6.0}, start="2018-01-01", acquisition_days=360,
        horizon_days=1_095, max_repeats=300, seed=21, season=SEASON,
    )  # fmt: skip


def test_seasonal_model_recovers_the_planted_pattern(seasonal_base: pd.DataFrame) -> None:
    summary = rfm_summary(seasonal_base, "2020-12-30")
    plain = CLVModel("bgnbd").fit(summary)
    seasonal = CLVModel("bgnbd", seasonal=True).fit(summary)
    planted = SEASON * 365.25 / (np.array([31, 28.25, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]) @ SEASON)
    np.testing.assert_allclose(seasonal.season_.index, planted, atol=0.08)
    assert seasonal.log_likelihood_ > plain.log_likelihood_ + 100
    # forecasts follow the calendar: November's expected purchases exceed July's
    nov = seasonal.season_.elapsed(pd.to_datetime(["2021-11-01"]), pd.to_datetime(["2021-12-01"]))[0]
    jul = seasonal.season_.elapsed(pd.to_datetime(["2021-07-01"]), pd.to_datetime(["2021-07-31"]))[0]
    assert nov / jul == pytest.approx(planted[10] / planted[6], rel=0.1)


def test_auto_weighs_the_seasonal_model_on_the_holdout(seasonal_base: pd.DataFrame) -> None:
    """Calibration of two years, holdout from September into December: the seasonal model forecasts
    the peak that the plain one misses, and auto takes it."""
    result = fit_and_validate(
        seasonal_base, "2020-12-30", model="bgnbd", seasonality="auto", calibration_end_date="2020-08-31",
        bootstrap_samples=3,
    )  # fmt: skip
    comparison = result.comparison
    plain, seasonal = (comparison.loc[m, "aggregate_error_pct"] for m in ("bgnbd", "bgnbd+monthly"))
    assert plain < -20 and abs(seasonal) < 1  # -26.2% and +0.1%
    assert comparison.loc["bgnbd+monthly", "mae"] < comparison.loc["bgnbd", "mae"]
    card = result.model_card
    assert card["model_choice"]["chosen"] == "bgnbd+monthly" and card["seasonality"]["used"]
    assert card["purchase_model"] == "BG/NBD + monthly seasonality"


def test_a_flat_dropout_direction_leaves_the_purchase_rate_its_standard_errors() -> None:
    """At the a -> 0 boundary only a and b lose their standard errors; r and alpha keep theirs."""
    tx = simulate_pareto_nbd(3_000, {"r": 0.9, "alpha": 60.0, "s": 1e-4, "beta": 10.0}, seed=6)
    summary = rfm_summary(tx, "2021-06-23")
    model = CLVModel("bgnbd").fit(summary)
    se = model.standard_errors_
    assert np.isnan(se["a"]) and np.isnan(se["b"])
    assert 0 < se["r"] < 0.1 * model.params_["r"] and 0 < se["alpha"] < 0.1 * model.params_["alpha"]
    check = diagnostics.identification(model, summary, None, model.p_alive(summary))
    assert not [m for m in check["messages"] if "purchase rate" in m or "inf" in m]


def test_forecast_interval_adds_the_customers_own_variation() -> None:
    """Parameter uncertainty alone is +/-10 here; the customers' errors (each 2 off, 400 of them:
    1.96 x 40 = 78.4) widen it, and a miss of 30 is then no miss."""
    cal = pd.DataFrame({"frequency_holdout": np.tile([1.0, 5.0], 200), "predicted_holdout": np.tile([3.0, 3.0], 200)})
    cal.loc[:29, "frequency_holdout"] += 1  # the actual total is 30 above the forecast of 1,200
    interval = diagnostics.forecast_interval(cal, {"actual_total": 1_230.0, "parameter_ci_low": 1_190.0,
                                                   "parameter_ci_high": 1_210.0})  # fmt: skip
    spread = 1.96 * np.sqrt(((cal["frequency_holdout"] - cal["predicted_holdout"]) ** 2).sum())
    assert interval["customer_variation_95"] == pytest.approx(spread)
    assert interval["predicted_ci_low"] == pytest.approx(1_200 - np.hypot(10, spread))
    assert interval["actual_in_interval"] and spread > 78


def test_quality_records_how_zero_amounts_were_treated(tmp_path) -> None:
    """Two sources, one keeping zero-value lines itself: 'mixed', which 05 states."""
    for name in ("web", "store"):
        (tmp_path / f"{name}.csv").write_text("customer,when,amount\n1,2020-01-01,5.0\n1,2020-01-05,0\n")
    columns = {"customer_id": "customer", "ts": "when", "amount": "amount"}
    sources = {"transactions": [
        {"name": "web", "path": str(tmp_path / "web.csv"), "columns": columns, "allow_zero_amount": True},
        {"name": "store", "path": str(tmp_path / "store.csv"), "columns": columns},
    ]}  # fmt: skip
    result = ingest("custom", sources, as_of="2020-01-31", key=b"k")
    assert result.quality["zero_amount"] == "mixed" and len(result.tables["transactions"]) == 3


@pytest.mark.parametrize(
    ("ratio", "words"),
    [(57.4, "a factor 57"), (999.0, "a factor 999"), (1_202.0, "over 3 orders of magnitude"),
     (4.3e66, "over 66 orders of magnitude"), (np.inf, "an unbounded range")],
)  # fmt: skip
def test_bootstrap_spread_is_said_in_words(ratio: float, words: str) -> None:
    assert _factor(ratio) == words


@pytest.mark.parametrize(
    ("thin", "words"),
    [(["Oct"], "Oct does not"), (["Oct", "Nov", "Dec"], "Oct, Nov, Dec do not"),
     (["Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], "only Jan does"),
     ([pd.Timestamp(2000, m, 1).strftime("%b") for m in range(1, 13)], "no month does")],
)  # fmt: skip
def test_months_without_enough_history_are_named_briefly(thin: list[str], words: str) -> None:
    assert _months_that_fail(thin) == words
