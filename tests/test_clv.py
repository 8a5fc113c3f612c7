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

from cp_toolkit import RunFolder, ensure
from cp_toolkit.clv import (
    CLVModel,
    calibration_holdout,
    choose_model,
    fit_and_validate,
    log_likelihood,
    rfm_summary,
    simulate_bgnbd,
    unique_rows,
)
from cp_toolkit.clv.diagnostics import period_transactions, tracking
from cp_toolkit.clv.spend import SpendModel
from cp_toolkit.config import load_params

from .conftest import ROOT

DATASETS = os.path.join(os.path.dirname(lifetimes.__file__), "datasets")
LIFETIMES_COLUMNS = ["frequency", "recency", "T", "monetary"]


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
    ours = rfm_summary(cdnow_sample, "1997-09-30", "weeks")[LIFETIMES_COLUMNS]
    pd.testing.assert_frame_equal(
        ours.loc[ref.index], ref.rename(columns={"monetary_value": "monetary"}), check_names=False
    )


def test_holdout_repeat_transactions(cdnow_sample) -> None:
    cal = calibration_holdout(cdnow_sample, "1997-09-30", "1998-06-30", "weeks")
    assert len(cal) == 2_357 and cal["frequency_holdout"].sum() == 1_882
    assert cal["duration_holdout"].iloc[0] == 39.0


def test_bgnbd_published_parameters(paper_summary) -> None:
    model = CLVModel("bgnbd", "weeks").fit(paper_summary)
    published = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
    for name, value in published.items():
        assert model.params_[name] == pytest.approx(value, rel=1e-3), name
    assert model.log_likelihood_ == pytest.approx(-9582.43, abs=0.1)
    for name, value in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert model.spend_.params_[name] == pytest.approx(value, rel=5e-3), name
    customer1 = paper_summary.loc[[1]]
    assert model.expected_purchases(39, customer1)[0] == pytest.approx(1.226, abs=5e-4)


def test_log_likelihood_hand_computed() -> None:
    """x=0: L = (alpha/(alpha+T))^r.  x=1: L = r alpha^r [b/(a+b) (alpha+T)^-(r+1) + a/(a+b) (alpha+t_x)^-(r+1)]."""
    p = {"r": 0.5, "alpha": 2.0, "a": 1.0, "b": 3.0}
    assert log_likelihood("bgnbd", p, [0], [0], [10]) == pytest.approx(0.5 * np.log(2.0 / 12.0))
    one = 0.5 * 2.0**0.5 * (0.75 * 12.0**-1.5 + 0.25 * 6.0**-1.5)
    assert log_likelihood("bgnbd", p, [1], [4], [10]) == pytest.approx(np.log(one))
    assert log_likelihood("bgnbd", p, [0, 1], [0, 4], [10, 10]) == pytest.approx(0.5 * np.log(2.0 / 12.0) + np.log(one))


def test_clv_equals_lifetimes_loop(paper_summary) -> None:
    model = CLVModel("bgnbd", "days").fit(paper_summary)
    monthly = 0.01
    ours = model.clv(paper_summary, 12, (1 + monthly) ** 12 - 1, 1.0, days_per_month=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = model.spend_.fitter_.customer_lifetime_value(
            model.purchases_,
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
    with pytest.raises(ValueError, match="fewer than two repeat buyers: the purchase model cannot be fitted"):
        CLVModel().fit(one_timers)
    zero_spend = one_timers.assign(frequency=[2.0, 1.0], recency=[3.0, 2.0])
    with pytest.raises(ValueError, match="fewer than two repeat buyers with positive spend"):
        SpendModel().fit(zero_spend)


def test_default_run_clv(cj_run) -> None:
    table, card = cj_run.load("clv"), cj_run.load("clv_model")
    assert len(table) == 2_469 and table["clv"].notna().all() and (table["clv"] >= 0).all()
    assert table["p_alive"].between(0, 1).all()
    h = card["holdout"]
    assert h["calibration_end"] == "2017-10-01" and abs(h["aggregate_error_pct"]) < 5
    assert h["correlation"] > 0.7


PUBLISHED_PARETO = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


def test_pareto_nbd_published_parameters(paper_summary) -> None:
    """Fader & Hardie (2005), "A note on deriving the Pareto/NBD model": LL -9595.0 on CDNOW."""
    model = CLVModel("pareto_nbd", "weeks").fit(paper_summary)
    for name, value in PUBLISHED_PARETO.items():
        assert model.params_[name] == pytest.approx(value, rel=1e-2), name
    assert model.log_likelihood_ == pytest.approx(-9595.0, abs=0.1)


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "pareto_nbd"])
def test_weighted_unique_rows_give_the_plain_fit(paper_summary, model: str) -> None:
    """Fitting the 1,016 distinct (x, t_x, T) rows with weights = fitting all 2,357 customers."""
    ours = CLVModel(model, "weeks").fit(paper_summary)
    assert ours.fit_settings_["purchases"]["rows"] == len(unique_rows(paper_summary, ("frequency", "recency", "T")))
    fitter = type(ours.purchases_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = fitter().fit(paper_summary["frequency"], paper_summary["recency"], paper_summary["T"], tol=1e-7)
    for name, value in plain.params_.items():
        assert ours.params_[name] == pytest.approx(value, rel=1e-4), name


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "pareto_nbd"])
def test_fitted_parameters_maximize_our_log_likelihood(paper_summary, model: str) -> None:
    """Our log-likelihood of each model peaks where lifetimes' fitter stopped."""
    fitted = CLVModel(model, "weeks").fit(paper_summary)
    x, tx, T = (paper_summary[c] for c in ("frequency", "recency", "T"))
    best = log_likelihood(model, fitted.params_, x, tx, T)
    for name in fitted.params_:
        for step in (0.99, 1.01):
            moved = {**fitted.params_, name: fitted.params_[name] * step}
            assert log_likelihood(model, moved, x, tx, T) < best, (name, step)


def test_hessian_standard_errors_equal_lifetimes(paper_summary) -> None:
    """Our finite-difference Hessian of our log-likelihood gives lifetimes' own BG/NBD standard errors."""
    model = CLVModel("bgnbd", "weeks").fit(paper_summary)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = lifetimes.BetaGeoFitter().fit(
            paper_summary["frequency"], paper_summary["recency"], paper_summary["T"]
        )
    for name, value in reference.standard_errors_.items():
        assert model.standard_errors_[name] == pytest.approx(value, rel=0.02), name


@pytest.fixture(scope="module")
def paper_result(cdnow_sample):
    return fit_and_validate(
        cdnow_sample, "1998-06-30", "weeks", model="auto", calibration_end_date="1997-09-30", bootstrap_samples=20
    )


def test_tracking_reproduces_the_paper(cdnow_sample, paper_result) -> None:
    """Fig. 4 of Fader, Hardie & Lee (2005): BG/NBD cumulative forecast ~4,171 at week 78 (actual 4,339)."""
    cal = paper_result.holdout
    bgnbd = CLVModel("bgnbd", "weeks").fit(cal)
    track = tracking(cdnow_sample, cal.index, pd.Timestamp("1997-09-30"), pd.Timestamp("1998-06-30"), bgnbd)
    assert track.loc[78, "predicted"] == pytest.approx(4_171, rel=0.01)
    assert track.loc[78, "actual"] == 4_339
    # actual repeat purchase days: those of the calibration by week 39, plus the holdout's by week 78
    assert track.loc[39, "actual"] == cal["frequency"].sum() and not track.loc[39, "holdout"]
    assert track.loc[78, "actual"] - track.loc[39, "actual"] == 1_882


def test_auto_takes_the_lowest_holdout_error(paper_result) -> None:
    comparison, card, cal = paper_result.comparison, paper_result.model_card, paper_result.holdout
    plain = ["bgnbd", "mbgnbd", "pareto_nbd"]
    assert list(comparison.index) == [*plain, *(f"{m}+monthly" for m in plain)]
    assert (comparison.loc[plain, "error"] == "").all()
    # the calibration (Jan to Sep 1997) has not seen every calendar month: no monthly index
    assert comparison.loc["bgnbd+monthly", "error"] == (
        "a monthly index needs each calendar month covered on 56 days, about two years, with 20 repeat purchases; "
        "no month does"
    )
    best = comparison["mae"].idxmin()
    assert card["model_choice"]["chosen"] == best == "pareto_nbd"
    assert card["model_choice"]["reason"].startswith("Pareto/NBD: lowest per-customer holdout MAE")
    assert comparison.loc["bgnbd", "log_likelihood"] == pytest.approx(-9582.43, abs=0.1)
    predictions = pd.DataFrame(
        {m: CLVModel(m, "weeks").fit(cal, spend=False).expected_purchases(39, cal) for m in plain}
    )
    choice = choose_model(comparison.loc[plain], predictions, cal["frequency_holdout"], "mbgnbd", "none")
    assert (choice["chosen"], choice["reason"], choice["fallback"]) == ("mbgnbd", "MBG/NBD as set by clv_model", "")
    with pytest.raises(ValueError, match="not one of"):
        choose_model(comparison, predictions, cal["frequency_holdout"], "bg", "none")


def test_period_transactions_add_up(paper_result) -> None:
    cal = paper_result.holdout
    bgnbd = CLVModel("bgnbd", "weeks").fit(cal)
    table = period_transactions(cal, bgnbd)
    assert table["actual"].sum() == len(cal) == 2_357 and table.loc["0", "actual"] == (cal["frequency"] == 0).sum()
    assert table["expected"].sum() == pytest.approx(len(cal))
    # the BG/NBD paper's fig. 2: the model matches the histogram closely
    assert (table["expected"] - table["actual"]).abs().max() < 40


def test_bootstrap_is_deterministic_and_brackets_the_estimate(cdnow_sample, paper_result) -> None:
    again = fit_and_validate(
        cdnow_sample, "1998-06-30", "weeks", model="auto", calibration_end_date="1997-09-30", bootstrap_samples=20
    )
    assert again.model_card["bootstrap"] == paper_result.model_card["bootstrap"]
    boot = paper_result.model_card["bootstrap"]
    assert boot["samples"] == 20 and boot["failed"] == 0
    for name, value in paper_result.model_card["purchase_params"].items():
        assert boot["parameters"][name]["ci_low"] < value < boot["parameters"][name]["ci_high"], name
    h = boot["holdout"]
    assert h["predicted_ci_low"] < paper_result.holdout_metrics["predicted_total"] < h["predicted_ci_high"]


def test_bootstrap_does_not_depend_on_customer_ids(cdnow_sample, paper_result) -> None:
    """Another pseudonymization key gives other ids in another order: the intervals stay the same."""
    renamed = cdnow_sample.assign(customer_id="x" + cdnow_sample["customer_id"].str[::-1])
    again = fit_and_validate(
        renamed, "1998-06-30", "weeks", model="auto", calibration_end_date="1997-09-30", bootstrap_samples=20
    )
    boot, reference = again.model_card["bootstrap"], paper_result.model_card["bootstrap"]
    assert boot["holdout"] == pytest.approx(reference["holdout"], rel=1e-9)
    for name, figures in reference["parameters"].items():
        assert boot["parameters"][name] == pytest.approx(figures, rel=1e-9), name


def test_paper_profile_reproduces_the_published_tables(tmp_path) -> None:
    """params/cdnow_paper.yaml end to end: clv_model.json holds the paper's calibration fit."""
    run = RunFolder(tmp_path)
    run.record_params(load_params(ROOT / "params" / "cdnow_paper.yaml", clv_bootstrap_samples=10))
    card = ensure(run, "clv_model")
    h = card["holdout"]
    assert h["calibration_end"] == "1997-09-30" and h["customers"] == 2_357 and h["actual_total"] == 1_882
    for name, value in {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}.items():
        assert h["calibration_params"][name] == pytest.approx(value, rel=1e-3), name
    assert h["calibration_log_likelihood"] == pytest.approx(-9582.43, abs=0.1)
    assert h["calibration_fit_settings"]["spend"]["customers"] == 946  # the paper's repeat buyers
    for name, value in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert h["calibration_spend_params"][name] == pytest.approx(value, rel=5e-3), name
    assert card["purchase_model"] == "BG/NBD" and card["time_unit"] == "weeks"


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "pareto_nbd"])
def test_last_rung_is_another_optimizer(paper_summary, model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """When every lifetimes attempt fails, Nelder-Mead on our log-likelihood finds the same optimum."""
    reference = CLVModel(model, "weeks").fit(paper_summary)
    fitter = type(reference.purchases_)

    def fail(*args, **kwargs):
        raise lifetimes.utils.ConvergenceError("forced")

    monkeypatch.setattr(fitter, "fit", fail)
    with pytest.warns(UserWarning, match="fitted with Nelder-Mead on our log-likelihood instead"):
        rescued = CLVModel(model, "weeks").fit(paper_summary)
    assert rescued.fit_settings_["purchases"]["optimizer"] == "Nelder-Mead (cp_toolkit)"
    for name, value in reference.params_.items():
        assert rescued.params_[name] == pytest.approx(value, rel=1e-3), name
    assert rescued.log_likelihood_ == pytest.approx(reference.log_likelihood_, abs=1e-3)
    assert np.isfinite(rescued.expected_purchases(39, paper_summary)).all()


@pytest.mark.parametrize("time_unit", ["days", "weeks"])
def test_summary_equals_lifetimes_on_simulated_customers(time_unit: str) -> None:
    tx = simulate_bgnbd(3_000, {"r": 0.25, "alpha": 10.0, "a": 0.8, "b": 2.5}, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = summary_data_from_transaction_data(
            tx, "customer_id", "ts", monetary_value_col="amount", observation_period_end="2021-03-31",
            freq="D", freq_multiplier=7 if time_unit == "weeks" else 1,
        )  # fmt: skip
    ours = rfm_summary(tx, "2021-03-31", time_unit)[LIFETIMES_COLUMNS]
    assert len(ours) == len(ref) == 3_000 and (ours["frequency"] > 0).sum() > 1_000
    pd.testing.assert_frame_equal(
        ours.loc[ref.index], ref.rename(columns={"monetary_value": "monetary"}), check_names=False
    )


def test_tracking_stops_at_the_last_whole_week(cdnow_sample, paper_result) -> None:
    cal = paper_result.holdout
    end = pd.Timestamp("1998-06-20")
    track = tracking(cdnow_sample, cal.index, pd.Timestamp("1997-09-30"), end, paper_result.model)
    assert track["week_end"].max() <= end and track.index.max() == 76


def test_degenerate_data_get_clear_errors() -> None:
    """Identical customers, an empty holdout."""
    days = ["2020-01-01", "2020-02-01", "2020-04-01"]
    same = pd.DataFrame(
        {"customer_id": np.repeat([f"c{i}" for i in range(50)], 3), "ts": pd.to_datetime(days * 50), "amount": 5.0}
    )
    with pytest.raises(ValueError, match=r"only 1 distinct \(frequency, recency, T\)"):
        CLVModel().fit(rfm_summary(same, "2020-06-30"))
    with pytest.raises(ValueError, match="no customer seen by 2020-05-15 bought between then and 2020-06-30"):
        fit_and_validate(same, "2020-06-30", calibration_end_date="2020-05-15")


def test_model_cards_are_strict_json(tmp_path, paper_result) -> None:
    """NaN (e.g. Pareto/NBD has no Hessian standard errors) is written as null."""
    import json

    card = {**paper_result.model_card, "extra": [float("nan"), np.float64("inf")]}
    run = RunFolder(tmp_path)
    run.save("clv_model", card)

    def refuse(name: str) -> None:
        raise ValueError(name)

    loaded = json.loads(run.file("clv_model").read_text(), parse_constant=refuse)
    assert loaded["extra"] == [None, None]
