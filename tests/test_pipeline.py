"""Stages build what they miss and drop what they made stale; a custom source needs no code."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cp_toolkit import RunFolder, ensure, segment

CDNOW_SAMPLE = {
    "transactions": {
        "path": "pkg://lifetimes/datasets/CDNOW_sample.txt",
        "read": {"sep": r"\s+", "header": None, "names": ["id", "customer", "date", "cds", "dollars"]},
        "columns": {"customer_id": "customer", "ts": "date", "quantity": "cds", "amount": "dollars"},
        "ts_format": "%Y%m%d",
        "drop_duplicates": False,
        "allow_zero_amount": True,
    }
}


@pytest.fixture()
def sample_run(tmp_path: Path) -> RunFolder:
    run = RunFolder(tmp_path / "run")
    run.record_params({"dataset": "custom", "sources": CDNOW_SAMPLE, "as_of": "1998-06-30", "clv_time_unit": "weeks"})
    return run


def test_ensure_builds_every_upstream_stage(sample_run: RunFolder) -> None:
    personas = ensure(sample_run, "personas")
    cards = personas["cards"]
    sizes = sample_run.load("segments")["rfm_segment"].value_counts()
    # CDNOW's customers mostly bought once: their habits are not data, the R x F segments stand in
    assert personas["basis"] == "rfm" and "fewer than two aspects" in personas["basis_note"]
    pooled = next((c["merged"] for c in cards if c["key"] == "other"), [])
    assert {c["key"]: c["customers"] for c in cards if c["key"] != "other"} == sizes.drop(pooled).to_dict()
    # every segment under 10 is pooled, and with it the smallest others until the pool holds 10
    assert set(sizes[sizes < 10].index) <= set(pooled) and (not pooled or sizes[pooled].sum() >= 10)
    assert sum(c["customers"] for c in cards) == sizes.sum() and min(c["customers"] for c in cards) >= 10
    assert sample_run.load("quality")["tables"]["transactions"]["rows_in"] == 6_919
    assert len(sample_run.load("segments")) == 2_357
    assert sample_run.load("clv_model")["time_unit"] == "weeks"
    assert not sample_run.has("campaigns")


def test_rerunning_a_stage_drops_later_artifacts(sample_run: RunFolder) -> None:
    ensure(sample_run, "personas")
    segment.run_stage(sample_run, as_of="1998-03-31")
    assert sample_run.has("segments") and sample_run.has("transactions")
    assert not any(sample_run.has(n) for n in ("predictions", "clv", "personas", "audience"))
    assert not sample_run.stage_summary("05_clv")
    assert sample_run.load("features")["last_purchase"].max() < pd.Timestamp("1998-04-01")
    ensure(sample_run, "personas")
    assert sample_run.has("clv")


def test_stage_as_of_after_ingest_is_refused(sample_run: RunFolder) -> None:
    ensure(sample_run, "transactions")
    with pytest.raises(ValueError, match=r"as_of 1998-07-31 is after 1998-06-30.*run 01_ingest with as_of 1998-07-31"):
        segment.run_stage(sample_run, as_of="1998-07-31")


def test_orders_are_built_once_at_ingest(sample_run: RunFolder) -> None:
    from cp_toolkit.features import orders_from_lines

    orders = ensure(sample_run, "orders")
    pd.testing.assert_frame_equal(orders, orders_from_lines(sample_run.load("transactions")), check_dtype=False)
    assert orders["amount"].sum() == pytest.approx(sample_run.load("transactions")["amount"].sum())
