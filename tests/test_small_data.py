"""Small and odd data are explained, not crashed: each stage works or says what the data lack,
and the later stages go on; ingest's messages name the fix that applies."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
import pytest

from cp_toolkit.config import DEFAULTS
from cp_toolkit.errors import SourceError
from cp_toolkit.run.artifacts import RunFolder
from cp_toolkit.run.pipeline import STAGES, stage_function

matplotlib.use("Agg")

COLUMNS = {"customer_id": "c", "order_id": "o", "ts": "t", "amount": "a"}


def _orders(customers: int, per_customer: int, start: str = "2019-01-01", step_days: int = 37) -> list[tuple]:
    """(customer, order, day, amount) rows: customer i orders ``per_customer`` times, ``step_days`` apart,
    starting ``i`` days after ``start``; amounts vary by customer and order."""
    day0 = pd.Timestamp(start)
    return [
        (f"k{i}", f"o{i}_{j}", (day0 + pd.Timedelta(days=i + j * step_days)).strftime("%Y-%m-%d"), 10 + i + 3 * j)
        for i in range(customers)
        for j in range(per_customer)
    ]


def _csv(path: Path, rows: list[tuple]) -> Path:
    pd.DataFrame(rows, columns=["c", "o", "t", "a"]).to_csv(path, index=False)
    return path


def _run(tmp_path: Path, path: Path, as_of: str = "2020-12-31", stages: tuple[str, ...] = STAGES, **extra: Any):
    """Run ``stages`` in-process on one transaction file; returns the run folder."""
    run = RunFolder(tmp_path / "run")
    params = {
        **DEFAULTS,
        "dataset": "custom",
        "sources": {"transactions": {"path": str(path), "columns": COLUMNS}},
        "as_of": as_of,
        "clv_bootstrap_samples": 3,
        **extra,
    }
    for name in stages:
        fn = stage_function(name)
        fn(run, **{k: v for k, v in params.items() if k in inspect.signature(fn).parameters})
    return run


def _notes(run: RunFolder, stage: str) -> str:
    return " ".join(run.stage_summary(stage).get("notes", []))


def test_one_customer_runs_every_stage_and_says_what_is_missing(tmp_path: Path) -> None:
    run = _run(tmp_path, _csv(tmp_path / "one.csv", _orders(1, 5)))
    assert "behavioural clusters need at least 20 customers" in _notes(run, "03_segmentation")
    assert "the data have 1," in _notes(run, "03_segmentation")
    segments = run.load("segments")
    assert len(segments) == 1 and segments["cluster"].isna().all() and segments["rfm_segment"].notna().all()
    # five orders 37 days apart from 2019-01-01: the last is on 2019-05-29, 582 days before as_of
    assert "lies 582 days (1.6 years) after the last transaction (2019-05-29)" in _notes(run, "04_prediction")
    assert run.load("predictions")["churn_probability"].isna().all()
    assert _notes(run, "05_clv").startswith("CLV is not available: ")
    assert run.load("clv").empty and run.load("clv_model")["skipped"]
    assert "stage 05 could not compute them" in _notes(run, "06_persona")
    assert run.load("personas")["cards"] == []  # one customer is no persona


def test_three_customers_keep_rfm_without_clusters_and_plots_say_why(tmp_path: Path) -> None:
    from cp_toolkit import plots, segment
    from cp_toolkit.text import labels

    path = _csv(tmp_path / "three.csv", _orders(3, 5, start="2020-01-01", step_days=60))
    run = _run(tmp_path, path, stages=("01_ingest",))
    seg = segment.run_stage(run, as_of="2020-12-31")
    assert seg.clusters is None and seg.pca is None and seg.cluster_checks == {}
    assert set(seg.skipped) == {"clusters", "segments"}
    assert "3 customers in all" in seg.skipped["segments"]
    assert seg.segments["rfm_segment"].notna().sum() == 3
    assert (
        plots.cluster_selection(seg.clusters, **labels("plots.cluster_selection")) is None
        and plots.pca_scatter(seg.pca, **labels("plots.pca_scatter")) is None
    )
    assert plots.lift_heatmap(seg.lift, **labels("plots.lift_heatmap")) is None
    for ax in (
        plots.segment_shares(seg.summary, **labels("plots.segment_shares")),
        plots.rfm_heatmap(seg.grid, **labels("plots.rfm_heatmap")),
    ):
        assert "min_group_size" in ax.texts[0].get_text()  # the empty panel says why
    from cp_toolkit.display import skipped

    assert skipped(seg.skipped, "clusters").data.startswith("**Note:** Behavioural clusters are not shown")
    assert skipped({}, "clusters") is None


def test_stage_03_records_the_segment_sizes_its_report_shows(tmp_path: Path) -> None:
    """The summary keeps {segment: customers} for the index of a series; a segment the report
    hides (under min_group_size) is there without its count."""
    from cp_toolkit import segment

    run = _run(
        tmp_path, _csv(tmp_path / "t.csv", _orders(30, 2, start="2020-01-01", step_days=9)), stages=("01_ingest",)
    )
    seg = segment.run_stage(run, as_of="2020-12-31", min_group_size=8)
    sizes = run.stage_summary("03_segmentation")["segment_sizes"]
    summary = seg.segments["rfm_segment"].value_counts()
    assert set(sizes) == set(summary.index) and "kpis" not in run.stage_summary("03_segmentation")
    hidden = {name for name, n in sizes.items() if n is None}
    assert hidden and hidden >= {name for name, n in summary.items() if n < 8}
    assert all(sizes[name] == summary[name] >= 8 for name in set(sizes) - hidden)


def test_only_one_time_buyers_clv_asks_for_repeat_purchases(tmp_path: Path) -> None:
    rows = _orders(60, 1, start="2019-06-01", step_days=1)
    run = _run(tmp_path, _csv(tmp_path / "once.csv", rows), as_of="2019-12-31")
    note = _notes(run, "05_clv")
    assert "CLV needs repeat purchases: none of the 60 customers bought in more than one day" in note
    assert run.has("personas") and run.load("clv").empty
    assert all(c.get("value", {}).get("mean_clv") is None for c in run.load("personas")["cards"])


def test_one_extreme_outlier_plots_without_error(tmp_path: Path) -> None:
    from cp_toolkit import plots, segment
    from cp_toolkit.text import labels

    rows = _orders(80, 5, start="2019-06-01", step_days=20) + [("k1", "big", "2019-08-01", 9.9e9)]
    run = _run(tmp_path, _csv(tmp_path / "outlier.csv", rows), stages=("01_ingest",))
    seg = segment.run_stage(run, as_of="2020-12-31")
    assert seg.lift["customers"].sum() == 80 or seg.lift["suppressed"].any()
    ax = plots.lift_heatmap(
        seg.lift, **labels("plots.lift_heatmap")
    )  # every cluster suppressed here crashed seaborn before
    assert ax is not None
    plots.rfm_heatmap(seg.grid, **labels("plots.rfm_heatmap"))
    plots.segment_shares(seg.summary, **labels("plots.segment_shares"))


def test_as_of_years_after_the_data(tmp_path: Path) -> None:
    rows = _orders(40, 4, start="2019-01-01", step_days=30)
    run = _run(tmp_path, _csv(tmp_path / "t.csv", rows), as_of="2024-12-31", stages=STAGES[:5])
    note = _notes(run, "04_prediction")
    # last order: customer 39, 39 + 3 * 30 days after 2019-01-01 = 2019-05-10
    assert "no customer ordered in the training window nor the test window" in note
    assert "as_of 2024-12-31 lies 2,062 days (5.6 years) after the last transaction (2019-05-10)" in note
    assert "set as_of to 2019-05-10" in note
    assert "as_of lies 2,062 days after the last transaction (2019-05-10): set as_of to that day" in _notes(
        run, "05_clv"
    )


def _ingest(tmp_path: Path, content: bytes, **options: Any) -> Any:
    from cp_toolkit.ingest import ingest

    path = tmp_path / "input.csv"
    path.write_bytes(content)
    return ingest(
        "custom", {"transactions": {"path": str(path), "columns": COLUMNS, **options}}, "2020-12-31", key=b"k"
    )


def test_header_only_file_says_it_has_no_data_rows(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="the file has no data rows, only a header") as err:
        _ingest(tmp_path, b"c,o,t,a\n")
    assert "as_of" not in str(err.value)


def test_utf16_file_is_told_its_encoding(tmp_path: Path) -> None:
    text = "c,o,t,a\n1,A,2020-01-01,5\n"
    with pytest.raises(SourceError, match=r"UTF-16 byte-order mark: set read: \{encoding: utf-16\}") as err:
        _ingest(tmp_path, text.encode("utf-16"))
    assert "latin-1" not in str(err.value)
    assert _ingest(tmp_path, text.encode("utf-16"), read={"encoding": "utf-16"}).quality["rows_kept"] == 1


def test_decimal_commas_are_named(tmp_path: Path) -> None:
    content = b'c;o;t;a\n1;A;2020-01-01;"12,50"\n2;B;2020-01-02;"3,75"\n'
    with pytest.raises(SourceError, match=r"2 number\(s\) use a decimal comma \(column 'amount', row 1: '12,50'\)"):
        _ingest(tmp_path, content, read={"sep": ";"})
    result = _ingest(tmp_path, content, read={"sep": ";", "decimal": ","})
    assert result.tables["transactions"]["amount"].tolist() == [12.5, 3.75]


def test_many_rows_set_aside_make_a_console_note(tmp_path: Path) -> None:
    from cp_toolkit import ingest

    rows = [("1", f"o{i}", "2020-01-01" if i % 2 else "not a date", 5) for i in range(40)]
    path = _csv(tmp_path / "half.csv", rows)
    run = RunFolder(tmp_path / "run")
    with pytest.warns(UserWarning, match="50% of its 40 rows were set aside"):
        ingest.run_stage(
            run, dataset="custom", sources={"transactions": {"path": str(path), "columns": COLUMNS}}, as_of="2020-12-31"
        )
    assert _notes(run, "01_ingest").startswith(
        f"transactions ({path}): 50% of its 40 rows were set aside, most as invalid_timestamp (20 rows)"
    )


def test_one_row_in_a_hundred_set_aside_makes_no_note(tmp_path: Path) -> None:
    from cp_toolkit.ingest.stage import set_aside_notes

    entry = {"source": "x.csv", "rows_in": 100, "quarantined_by_reason": {"invalid_amount": 5, "after_as_of": 50}}
    assert set_aside_notes({"tables": {"transactions": entry}}) == []


def test_identifier_attribute_needs_allow_identifiers(tmp_path: Path) -> None:
    from cp_toolkit import ingest, segment

    tx = _csv(tmp_path / "t.csv", _orders(3, 2, start="2020-01-01"))
    customers = tmp_path / "customers.csv"
    customers.write_text(
        "id,email,region\nk0,ann@example.com,north\nk1,bob@example.org,south\nk2,cy@example.net,north\n"
        "k2,dup@example.net,east\n"
    )
    sources = {
        "transactions": {"path": str(tx), "columns": COLUMNS},
        "customers": {"path": str(customers), "columns": {"customer_id": "id"}, "attributes": ["email", "region"]},
    }
    run = RunFolder(tmp_path / "run")
    with pytest.raises(SourceError, match=r"\['email'\] look like direct identifiers.*allow_identifiers"):
        ingest.run_stage(run, dataset="custom", sources=sources, as_of="2020-12-31")
    with pytest.warns(UserWarning, match=r"identifier column\(s\) \['email'\] are kept because allow_identifiers"):
        ingest.run_stage(run, dataset="custom", sources=sources, as_of="2020-12-31", allow_identifiers=["email"])
    assert "allow_identifiers lists them" in _notes(run, "01_ingest")
    segment.run_stage(run, as_of="2020-12-31")
    kept = run.load("customers")
    assert kept["email"].str.fullmatch(r"id_[0-9a-f]{16}").all() and sorted(kept["region"]) == [
        "north",
        "north",
        "south",
    ]
    quarantine = run.load("quarantine")
    assert quarantine["reason"].tolist() == ["duplicate_key"] and "email=id_" in quarantine["values"].iloc[0]
    for name in ("customers", "features", "quarantine"):
        text = run.load(name).astype(str).to_csv()
        assert "@example" not in text, f"a raw e-mail in {name}.parquet"
