"""How numbers are shown in the notebooks and their HTML reports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from IPython.display import Markdown

__all__ = ["configure_display", "key_figures", "notes"]


def configure_display() -> None:
    """Pandas display options for the reports: thousands separators, 3 decimals, all columns."""
    pd.set_option("display.float_format", "{:,.3f}".format)
    pd.set_option("display.max_columns", 50)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", None)  # sentences in tables are shown whole


def _format(value: Any) -> str:
    """A readable string for one figure."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return "–"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def key_figures(values: Mapping[str, Any], prefix: str = "") -> pd.DataFrame:
    """A (figure, value) table from a possibly nested mapping; nested keys are joined with dots."""
    rows = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.append(key_figures(value, prefix=f"{name}.").reset_index())
        else:
            rows.append(pd.DataFrame({"figure": [name], "value": [_format(value)]}))
    if not rows:
        return pd.DataFrame(columns=["value"], index=pd.Index([], name="figure"))
    out = pd.concat(rows, ignore_index=True)
    return out.set_index("figure") if "figure" in out.columns else out


def notes(sentences: list[str]) -> Markdown:
    """Sentences as a bulleted Markdown list (what a report's reader must know first)."""
    return Markdown("\n".join(f"- {s}" for s in sentences) if sentences else "- Nothing to flag.")
