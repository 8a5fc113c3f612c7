"""The one table formatter of the reports: every table a notebook shows goes through :func:`present`.

A column's *kind* (:mod:`.numbers`) comes from its name: the names the stages use are listed in
:data:`COLUMN_KINDS`, others are read from their endings (``_share`` is a percentage, ``_days`` a
duration) or their type (integers are counts). Its heading is the text ``column.<name>`` (plus the
currency for money), so that one word means one thing in every report and every language. The
index is shown only when it is named (a month, a segment), a boolean ``flag`` column highlights
its rows instead of being shown, ``suppressed`` rows are greyed, and a long table is folded into
a ``<details>`` element under its first rows.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..config import DEFAULTS
from ..privacy import suppress_small_groups
from ..text import localize, t, words
from .numbers import KINDS, is_missing, number

__all__ = [
    "COLUMN_KINDS",
    "Table",
    "column_kind",
    "column_label",
    "present",
    "protect",
    "settings",
    "small_base",
    "suppressed_note",
]

#: Kinds of the column names the stages use (anything else: :func:`column_kind`'s rules).
COLUMN_KINDS: dict[str, str] = {
    **dict.fromkeys(
        [
            "revenue",
            "amount",
            "monetary",
            "clv",
            "mean_clv",
            "expected_spend",
            "discount",
            "coupon_discount",
            "price",
            "avg_order_value",
            "average_order_value",
            "median_order_value",
            "revenue_per_customer",
            "spend",
            "predicted_spend",
            "clv_at_stake",
        ],
        "money",
    ),
    **dict.fromkeys(
        [
            "share",
            "repeat_rate",
            "p_alive",
            "mean_p_alive",
            "churn_probability",
            "mean_churn_probability",
            "threshold_share",
        ],
        "percent",
    ),
    **dict.fromkeys(["recency_days", "tenure_days", "interpurchase_days", "mean_interpurchase_days"], "days"),
    **dict.fromkeys(["lift", "orders_per_customer", "avg_lines_per_order", "mean_frequency"], "ratio"),
    **dict.fromkeys(["month"], "month"),
    **dict.fromkeys(["first_purchase", "last_purchase", "first_ts", "last_ts", "ts", "date"], "date"),
}

_ENDINGS = (
    (re.compile(r"(_share|_rate|^share_.*)$"), "percent"),
    (re.compile(r"_days$"), "days"),
    (re.compile(r"(revenue|_clv|_spend|_value)$"), "money"),
)

_state: dict[str, Any] = {"currency": None, "min_group_size": 1, "base": None}


def settings(
    currency: str | None, min_group_size: int = DEFAULTS["min_group_size"], base: Callable[[], int | None] | None = None
) -> None:
    """Set what every following table shows: the currency of money headings (``revenue (USD)``),
    the smallest group of customers shown, and how to count the customers of the run (``base``:
    a function, called when a table is first shown; a base under ``min_group_size`` shows no figures)."""
    _state.update(currency=currency, min_group_size=min_group_size, base=base, base_size=None)


def small_base() -> int | None:
    """The number of customers of the run when it is under the smallest group shown (every
    figure would describe fewer people than that), else None."""
    if _state["base"] is None:
        return None
    if _state.get("base_size") is None:
        _state["base_size"] = _state["base"]()
    size = _state["base_size"]
    return size if size is not None and size < _state["min_group_size"] else None


def suppressed_note() -> str:
    """The sentence shown instead of a figure of a base under the smallest group shown."""
    return t("display.small_base", customers=small_base() or 0, min_group_size=_state["min_group_size"])


#: Columns that count the customers of a row: the row describes a group of that many.
COUNT_COLUMNS = ("customers", "active_customers")


def protect(frame: pd.DataFrame) -> pd.DataFrame:
    """A table of groups of customers with every group under the smallest group shown blanked,
    and the next smallest with it when the blanked ones could be worked out from a total
    (:func:`cp_toolkit.privacy.suppress_small_groups`), whichever of :data:`COUNT_COLUMNS` (or a
    column whose last heading level is one) counts them; tables that a stage suppressed already
    (a ``suppressed`` column) or that count no customers are returned as they are."""
    k = int(_state["min_group_size"])
    leaves = [c[-1] if isinstance(c, tuple) else c for c in frame.columns]
    counts = [c for c, leaf in zip(frame.columns, leaves, strict=True) if leaf in COUNT_COLUMNS]
    if k <= 1 or not counts or "suppressed" in leaves:
        return frame
    out = frame.copy()
    for column in counts:
        out[column] = pd.to_numeric(out[column], errors="coerce")
    smallest = out[counts].min(axis=1).rename("smallest")
    if not (smallest.dropna() < k).any():
        return frame
    leaf = counts[0][-1] if isinstance(counts[0], tuple) else counts[0]
    partition = leaf == "customers"  # customers of the rows add up to a known total; monthly ones do not
    hidden = suppress_small_groups(out.assign(smallest=smallest.to_numpy()), "smallest", k, partition)
    for column in counts:
        hidden[column] = hidden[column].round().astype("Int64")  # counts stay whole numbers
    return hidden.drop(columns="smallest")


def column_kind(name: object, values: pd.Series | None = None) -> str:
    """The kind of a column from its name (:data:`COLUMN_KINDS`, then its ending), else its type."""
    key = str(name)
    if key in COLUMN_KINDS:
        return COLUMN_KINDS[key]
    for pattern, kind in _ENDINGS:
        if pattern.search(key):
            return kind
    if values is not None:
        if pd.api.types.is_datetime64_any_dtype(values):
            return "date"
        if pd.api.types.is_integer_dtype(values) or pd.api.types.is_bool_dtype(values):
            return "count"
        if not pd.api.types.is_numeric_dtype(values):
            return "decimal" if _numbers_only(values) else "text"
    return "decimal"


def _numbers_only(values: pd.Series) -> bool:
    """Whether a column of mixed types holds numbers (and blanks) only: a table of figures whose
    missing cells a stage wrote as text."""
    filled = [v for v in values if not (isinstance(v, str) and v.strip() in ("", "–", "-")) and not is_missing(v)]
    return bool(filled) and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                                for v in filled)  # fmt: skip


def column_label(name: object, kind: str = "text", currency: str | None = None) -> str:
    """The heading of a column: the text ``column.<name>`` when there is one, else the name as it
    is (a heading a stage already wrote in words); money headings carry the currency."""
    label = words("column", name)
    unit = currency if currency is not None else _state["currency"]
    return f"{label} ({unit})" if kind == "money" and unit else label


@dataclass
class Table:
    """A formatted table, shown by Jupyter and in the HTML report through :meth:`_repr_html_`.

    Attributes
    ----------
    data : DataFrame
        The cells as the reader sees them (strings), with the headings in words.
    html : str
        The table's HTML (a ``<details>`` element when it is long).
    """

    data: pd.DataFrame
    html: str

    def _repr_html_(self) -> str:
        return self.html

    def to_html(self) -> str:
        """The table's HTML."""
        return self.html


def _named(value: object) -> object:
    """A text cell in the report's language when it is a name the artifacts keep in English (an
    RFM segment); anything else as it is."""
    return localize("segment.rfm", value) if isinstance(value, str) else value


def _formatted(frame: pd.DataFrame, kinds: Mapping[str, str]) -> tuple[pd.DataFrame, dict[object, str]]:
    """The cells as strings, and each column's kind (columns taken by position, so that two
    columns of one name stay two)."""
    cells, found = {}, {}
    for i, name in enumerate(frame.columns):
        leaf = name[-1] if isinstance(name, tuple) else name
        kind = kinds.get(str(leaf)) or column_kind(leaf, frame.iloc[:, i])
        if kind not in KINDS:
            raise ValueError(f"column {leaf!r}: kind {kind!r} is not one of {KINDS}")
        found[name] = kind
        cells[i] = [number(_named(v), kind) for v in frame.iloc[:, i]]
    shown = pd.DataFrame(cells, index=frame.index)
    shown.columns = frame.columns
    return shown, found


def _relabel(index: pd.Index, kinds: Mapping[object, str]) -> pd.Index:
    """Column headings in words (each level of a MultiIndex)."""
    if isinstance(index, pd.MultiIndex):
        tuples = [
            tuple(
                column_label(part, kinds.get(name, "text") if j == len(name) - 1 else "text")
                for j, part in enumerate(name)
            )
            for name in index
        ]
        return pd.MultiIndex.from_tuples(tuples)
    return pd.Index([column_label(name, kinds.get(name, "text")) for name in index])


def _unique(columns: pd.Index) -> pd.Index:
    """Headings made unique for the styler: a repeated one gets `` (2)``, `` (3)`` ..."""
    if columns.is_unique or isinstance(columns, pd.MultiIndex):
        return columns
    seen: dict[str, int] = {}
    out = []
    for name in columns:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return pd.Index(out)


def _index_shown(frame: pd.DataFrame) -> bool:
    return any(name is not None for name in frame.index.names) and not isinstance(frame.index, pd.RangeIndex)


def _readable_index(index: pd.Index, kinds: Mapping[str, str]) -> pd.Index:
    if isinstance(index, pd.MultiIndex):
        levels = [_readable_index(index.get_level_values(i), kinds) for i in range(index.nlevels)]
        return pd.MultiIndex.from_arrays(levels)
    kind = kinds.get(str(index.name)) or column_kind(index.name, index.to_series())
    return pd.Index([number(_named(v), kind) for v in index], name=column_label(index.name))


def present(
    data: pd.DataFrame | pd.Series,
    kinds: Mapping[str, str] | None = None,
    *,
    flag: str | None = "flag",
    collapse: int = 15,
    head: int = 5,
) -> Table:
    """A table as the reader sees it.

    Parameters
    ----------
    data : DataFrame or Series
        The table (a Series shows as one column named after it).
    kinds : mapping, optional
        Kinds of some columns (or the index), overriding what their names say.
    flag : str, optional
        A boolean column whose true rows are highlighted (the column itself is not shown). A
        boolean ``suppressed`` column greys its rows the same way.
    collapse : int
        Tables longer than this are folded under their first ``head`` rows.
    head : int
        Rows shown above a folded table.
    """
    frame = data.to_frame(name=data.name if data.name is not None else "value") if isinstance(data, pd.Series) else data
    if small_base() is not None:
        note = html.escape(suppressed_note())
        return Table(data=pd.DataFrame({"": [note]}), html=f"<p class='cp-note'>{note}</p>")
    frame = protect(frame)
    kinds = dict(kinds or {})
    marks = {name: frame.pop(name).fillna(False).astype(bool) for name in (flag, "suppressed") if name in frame}
    frame = frame.drop(columns=list(marks), errors="ignore")
    shown, found = _formatted(frame, kinds)
    shown.columns = _unique(_relabel(frame.columns, found))
    index_shown = _index_shown(frame)
    if index_shown:
        shown.index = _readable_index(frame.index, kinds)
    else:
        shown = shown.reset_index(drop=True)
    body = _html(shown, marks, found, index_shown)
    if len(shown) > collapse:
        summary = html.escape(t("display.show_rows", rows=len(shown)))
        first = _html(shown.head(head), {k: v.head(head) for k, v in marks.items()}, found, index_shown)
        body = f"{first}<details class='cp-more'><summary>{summary}</summary>{body}</details>"
    return Table(data=shown, html=body)


def _html(shown: pd.DataFrame, marks: Mapping[str, pd.Series], kinds: Mapping[object, str], index: bool) -> str:
    """The table element: numbers right-aligned, flagged rows highlighted, suppressed rows grey."""
    styler = shown.style.set_table_attributes('class="dataframe cp-table"')
    if not index:
        styler = styler.hide(axis="index")
    for align, wanted in (("right", True), ("left", False)):
        columns = [shown.columns[i] for i, kind in enumerate(kinds.values()) if (kind != "text") == wanted]
        if columns:
            styler = styler.set_properties(subset=columns, **{"text-align": align})
    for name, rows in marks.items():
        style = "color: #888" if name == "suppressed" else "background-color: #fff3cd"
        hits = rows.to_numpy()
        if hits.any():
            styler = styler.apply(lambda col, r=hits, s=style: [s if hit else "" for hit in r], axis=0)
    return styler.to_html()
