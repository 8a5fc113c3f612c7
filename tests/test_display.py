"""How report tables show their cells: hand cases for the one formatter every notebook table goes through."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cp_toolkit.display import MISSING, cell, key_figures, table


@pytest.mark.parametrize(
    ("value", "shown"),
    [(np.int64(1469307), "1,469,307"), (0.53241, "0.532"), (1234.5, "1,234.500"), (np.nan, MISSING),
     (pd.NA, MISSING), (pd.NaT, MISSING), (None, MISSING), (np.inf, MISSING), (np.True_, "True"),
     (pd.Timestamp("2017-01-26 21:13:09.530174208"), "2017-01-26 21:13"), (pd.Timestamp("2017-03-01"), "2017-03-01"),
     ("Champions", "Champions")],
)  # fmt: skip
def test_a_cell_reads_as_a_number_date_or_dash(value: object, shown: str) -> None:
    assert cell(value) == shown


def test_a_table_has_no_raw_missing_values_and_a_series_is_a_named_column() -> None:
    frame = pd.DataFrame(
        {"revenue": [370886.93, np.nan], "customers": pd.array([1982, None], dtype="Int64")},
        index=pd.Index(pd.to_datetime(["2017-01-01", "2017-02-01"]), name="month"),
    )
    html = table(frame).to_html()
    assert "370,886.930" in html and "1,982" in html and ">2017-02-01<" in html and ">month<" in html
    assert "NaN" not in html and "&lt;NA&gt;" not in html and html.count(f">{MISSING}<") == 2
    counts = table(pd.Series([2282, 112], index=pd.Index(["low", "medium"], name="churn_risk"), name="count"))
    assert ">count<" in counts.to_html() and ">2,282<" in counts.to_html() and "dtype" not in counts.to_html()
    assert key_figures({"split": {"horizon_days": 90, "rate": float("nan")}}).loc["split.rate", "value"] == MISSING
