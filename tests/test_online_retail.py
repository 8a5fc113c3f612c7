"""UCI Online Retail (../shared/data, 541,909 real, dirty lines) read through a YAML-style mapping."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cp_toolkit.clv import CLVModel, calibration_end, calibration_holdout
from cp_toolkit.ingest import PRESETS, ingest

from .conftest import KEY

UCI = Path(__file__).resolve().parents[2] / "shared" / "data" / "online_retail" / "online_retail.parquet"
# the preset's column mapping without its cancellation rule: what a user who only maps columns gets
SPEC = {"transactions": {"path": str(UCI), "columns": PRESETS["online_retail"]["transactions"]["columns"]}}

pytestmark = pytest.mark.skipif(not UCI.is_file(), reason="../shared/data/online_retail is not beside the checkout")


@pytest.fixture(scope="module")
def uci():
    return ingest("custom", SPEC, "2011-11-30", key=KEY)


def test_every_row_accounted_for(uci) -> None:
    """A plain mapping: cancellations are not netted; their negative quantities set them aside."""
    q = uci.quality["tables"]["transactions"]
    assert q["rows_in"] == 541_909 == q["rows_kept"] + q["rows_quarantined"]
    assert q["quarantined_by_reason"] == {
        "missing_customer_id": 135_080,
        "after_as_of": 17_661,
        "duplicate_row": 4_946,
        "negative_quantity": 8_516,
        "non_positive_amount": 40,
    }
    assert q["rows_kept"] == 375_666 and len(uci.quarantine) == 166_243


@pytest.fixture(scope="module")
def uci_preset():
    return ingest("online_retail", {"transactions": {"path": str(UCI)}}, "2011-12-09", key=KEY)


def test_preset_nets_cancellations(uci_preset) -> None:
    q = uci_preset.quality["tables"]["transactions"]
    assert q["quarantined_by_reason"] == {
        "missing_customer_id": 135_080,
        "duplicate_row": 5_225,
        "cancellation_netted": 7_482,
        "cancellation_unmatched": 1_390,
        "cancelled": 2_824,
        "non_positive_amount": 38,
    }
    assert q["rows_kept"] == 389_870 == 541_909 - sum(q["quarantined_by_reason"].values())
    n = q["netting"]
    assert n["cancellation_lines"] == 7_482 + 1_390 and n["purchase_lines_cancelled"] == 2_824
    assert n["quantity_netted"] == 249_125 and n["quantity_unmatched"] == 23_910
    tx = uci_preset.tables["transactions"]
    assert (tx["quantity"] > 0).all() and (tx["amount"] > 0).all() and not tx["order_id"].str.startswith("C").any()
    assert (tx["channel"] == "web").all()
    # the 80,995-unit order of 2011-12-09 and its cancellation minutes later cancel out
    assert tx["quantity"].max() < 80_995


def test_float_customer_ids_keep_their_integer_form(uci) -> None:
    """CustomerID is stored as float (17850.0); the pseudonym is that of "17850"."""
    from cp_toolkit.privacy import pseudonymize

    expected = pseudonymize(pd.Series(["17850"]), KEY).iloc[0]
    assert expected in set(uci.tables["transactions"]["customer_id"])
    assert uci.tables["transactions"]["customer_id"].nunique() == 4_297


def test_bgnbd_retry_ladder_on_a_boundary_optimum(uci) -> None:
    """In days, the MLE sits at a -> 0 (no dropout): BFGS stops with 'precision loss' at 1e-7 and the
    ladder's first retry, tolerance 1e-6, converges without a penalizer."""
    tx = uci.tables["transactions"]
    end = pd.Timestamp("2011-11-30")
    cal = calibration_holdout(tx, calibration_end(tx["ts"].min(), end, 0.25), end, "days")
    with pytest.warns(UserWarning, match="tolerance 1e-06 instead"):
        model = CLVModel("bgnbd", "days").fit(cal)
    assert model.fit_settings_["purchases"] == {
        "penalizer": 0.0,
        "tol": 1e-6,
        "optimizer": "lifetimes",
        "rows": 2_062,
        "customers": 3_317,
    }
    assert model.params_["a"] < 1e-3 and model.params_["r"] == pytest.approx(0.7226, abs=1e-3)
    predicted = model.expected_purchases(91, cal)
    assert predicted.sum() == pytest.approx(3_306, abs=5) and cal["frequency_holdout"].sum() == 4_265


def test_streaming_in_small_chunks_gives_the_same_result(uci_preset) -> None:
    """Duplicates and cancellations whose originals lie in earlier chunks are found all the same."""
    small = ingest("online_retail", {"transactions": {"path": str(UCI)}}, "2011-12-09", key=KEY, chunk_rows=50_000)
    pd.testing.assert_frame_equal(small.tables["transactions"], uci_preset.tables["transactions"])
    pd.testing.assert_frame_equal(small.quarantine, uci_preset.quarantine)
    assert small.quality == uci_preset.quality
