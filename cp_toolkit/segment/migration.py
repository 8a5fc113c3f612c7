"""Segment migration between two runs, with small cells and the flows that would reveal them hidden."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..run.artifacts import ARTIFACTS, RunFolder

__all__ = ["find_previous_run", "hidden_cells", "migration"]


def hidden_cells(counts: pd.DataFrame, min_group_size: int) -> pd.DataFrame:
    """Cells of a from x to table of customers that a report must blank.

    Cells of 1 to ``min_group_size - 1`` customers are hidden (an empty cell tells nothing about
    anyone and stays). Row and column totals are known (the segment sizes of both runs), so a row
    or column with one hidden cell would give it away: its smallest shown cell is hidden too,
    repeatedly, until no row or column has exactly one.
    """
    hidden = (counts > 0) & (counts < min_group_size)
    while True:
        extra = _lone_hidden(hidden, counts) | _lone_hidden(hidden.T, counts.T).T
        if not (extra & ~hidden).any().any():
            return hidden
        hidden |= extra


def _lone_hidden(hidden: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """For every row with exactly one hidden cell, its smallest shown cell."""
    extra = pd.DataFrame(False, index=hidden.index, columns=hidden.columns)
    for row in hidden.index[hidden.sum(axis=1) == 1]:
        shown = counts.loc[row][~hidden.loc[row]]
        if len(shown):
            extra.loc[row, shown.idxmin()] = True
    return extra


def _hide_flows(flows: pd.DataFrame, hidden: pd.DataFrame, min_group_size: int) -> pd.DataFrame:
    """Blank the per-segment flows that are hidden cells (stayed, new, lapsed); entered and left
    are the totals minus stayed, so they are blanked with it; small totals are blanked too."""

    def is_hidden(row: str, column: str) -> bool:
        return bool(row in hidden.index and column in hidden.columns and hidden.at[row, column])

    out = flows.astype("Float64")
    totals = out[["earlier", "now"]]
    out[["earlier", "now"]] = totals.mask((totals > 0) & (totals < min_group_size))
    for segment in out.index:
        if is_hidden(segment, segment):
            out.loc[segment, ["stayed", "entered", "left"]] = pd.NA
        if is_hidden("(new)", segment):
            out.loc[segment, "new"] = pd.NA
        if is_hidden(segment, "(lapsed)"):
            out.loc[segment, "lapsed"] = pd.NA
    return out.astype("Int64")


def migration(previous: pd.DataFrame, current: pd.DataFrame, min_group_size: int) -> dict[str, pd.DataFrame]:
    """Moves between segments from an earlier run to this one.

    Parameters
    ----------
    previous, current : DataFrame
        Indexed by ``customer_id``, with ``rfm_segment`` and ``monetary`` (revenue to date).
    min_group_size : int
        Cells with fewer customers, but not none, are blanked in the tables meant for reports,
        with the cells that would give them away (:func:`hidden_cells`).

    Returns
    -------
    dict of DataFrame
        ``counts``: customers from (rows; ``(new)`` = not in the earlier run) to (columns;
        ``(lapsed)`` = not in this run), unsuppressed, for checks only; ``shown``: the same with
        the :func:`hidden_cells` blanked; ``row_shares``: each row as shares of the earlier segment (blank where
        the count is); ``revenue``: revenue to date, as of the earlier run, of the customers in each
        move (this run's for new customers), blanked alike; ``flows``: per segment, customers who
        stayed, entered, left, were new or lapsed.
    """
    ids = previous.index.union(current.index)
    before = previous["rfm_segment"].reindex(ids).fillna("(new)").rename("from")
    after = current["rfm_segment"].reindex(ids).fillna("(lapsed)").rename("to")
    value = previous["monetary"].reindex(ids).fillna(current["monetary"].reindex(ids))
    counts = pd.crosstab(before, after)
    revenue = pd.crosstab(before, after, values=value, aggfunc="sum").reindex_like(counts).fillna(0.0)
    small = hidden_cells(counts, min_group_size)
    shown = counts.astype("float64").mask(small)
    names = sorted((set(before) | set(after)) - {"(new)", "(lapsed)"})
    square = counts.reindex(index=[*names, "(new)"], columns=[*names, "(lapsed)"], fill_value=0)
    stayed = pd.Series(np.diag(square.loc[names, names]), index=names)
    flows = pd.DataFrame(
        {
            "earlier": square.loc[names].sum(axis=1),
            "now": square[names].sum(axis=0),
            "stayed": stayed,
            "entered": square[names].sum(axis=0) - stayed,
            "left": square.loc[names].sum(axis=1) - stayed,
            "new": square.loc["(new)", names],
            "lapsed": square.loc[names, "(lapsed)"],
        }
    ).rename_axis("segment")
    flows = _hide_flows(flows, small, min_group_size)
    return {
        "counts": counts,
        "shown": shown,
        "row_shares": counts.div(counts.sum(axis=1), axis=0).mask(small),
        "revenue": revenue.mask(small),
        "flows": flows,
    }


def find_previous_run(run: RunFolder, as_of: str, path: str | None) -> RunFolder | None:
    """The earlier run to compare with: ``path`` (relative paths from the folder that holds this run),
    else the previous month end's run of the same profile beside this one (``<date>_<profile>``),
    when it has segments."""
    if path:
        folder = Path(path) if Path(path).is_absolute() else run.path.parent / path
        if not (folder / "data" / ARTIFACTS["segments"]).is_file():
            raise ParameterError(f"previous_run {path}: {folder} has no segments; run stage 03 there first")
        return RunFolder(folder)
    date, _, profile = run.path.name.partition("_")
    if date != str(as_of) or not profile:
        return None
    earlier = (pd.Timestamp(as_of).replace(day=1) - pd.Timedelta(days=1)).date()
    folder = run.path.parent / f"{earlier}_{profile}"
    return RunFolder(folder) if (folder / "data" / ARTIFACTS["segments"]).is_file() else None
