"""The page of a series of runs: ``reports/<series>/index.html``.

A series runs one profile at several dates (``cp-toolkit run --as-of A..B --every month``), each
period in its own run folder under the series folder. Its page says first, in sentences, how many
periods ran and which failed, how the key figures moved from the first to the last period that
ran to the end, and what needs attention; then the table of runs (status, the run each compared
itself with, notes, a link to its report), the key figures as charts and as a table, and the
customers of each RFM segment over the periods.

A period that did not run to the end has no figures (a gap in the charts, a word in the tables);
a run with fewer customers than ``min_group_size`` shows none either, as its own index does; a
segment its report hid has no count here.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..display import MISSING
from ..display.page import STYLE as FINDINGS_STYLE
from ..display.page import inline_html
from ..text import get_language, labels, localize, t
from . import history
from .artifacts import write_text
from .report import _INDEX_STYLE

__all__ = ["STATUSES", "TREND_KPIS", "SeriesEntry", "findings", "kpi_frame", "segment_frame", "write_series_index"]

#: The statuses of a period, in the order the page counts them.
STATUSES = ("ok", "partial", "failed", "interrupted", "not_run")
#: The key figures whose move from the first to the last good period the findings state.
TREND_KPIS = ("customers", "revenue", "share_at_risk", "mean_clv")
#: The columns of the runs table (their headings are ``run.series.column.*``).
RUN_COLUMNS = ("period", "status", "compared_with", "notes", "report")

_DATED = re.compile(r"^(\d{4}-\d{2}-\d{2})_")

#: The style of the series page beyond the run index's: charts scale to the page, wide tables scroll.
_SERIES_STYLE = """<style>img{max-width:100%;height:auto}.wide{overflow-x:auto}td.num{text-align:right}
.hidden{color:#888;font-style:italic}tr:first-child th,td.nowrap,td.num{white-space:nowrap}.not_run{color:#666}
.caption{color:#555;font-size:.9em;margin:.2em 0 1.2em}</style>"""


@dataclass
class SeriesEntry:
    """One period of a series as the page shows it.

    Attributes
    ----------
    as_of : str
        The period's date, ``"2017-07-31"``.
    name : str
        Its run folder's name, ``"2017-07-31_default"``.
    status : str
        ``"ok"``, ``"failed"``, ``"interrupted"`` or ``"not_run"``.
    link : str, optional
        Its report, relative to the series folder (``"2017-07-31_default/index.html"``; for a
        failed run, the failing stage's report).
    kpis : dict
        :func:`~cp_toolkit.run.history.kpis` of the run; empty for a run that failed.
    segment_sizes : dict
        Customers per RFM segment (English names) from its 03 summary; None for a hidden segment.
    compared_with : str, optional
        The name of the run it compared itself with (its previous run).
    flags : list of str
        Sentences in the report's language that the reader must see (its input changed, ...).
    error : str, optional
        The one-line error of a failed run.
    """

    as_of: str
    name: str
    status: str
    link: str | None = None
    kpis: dict[str, float] = field(default_factory=dict)
    segment_sizes: dict[str, int | None] = field(default_factory=dict)
    compared_with: str | None = None
    flags: list[str] = field(default_factory=list)
    error: str | None = None


def _date(as_of: str, short: bool = False) -> str:
    """A period's date in words (``30 September 2017``; ``short``: ``30 Sep 2017``)."""
    date = pd.Timestamp(as_of)
    return t("run.series.short_date", date=date) if short else t("run.series.date", date=date)


def _shows_figures(entry: SeriesEntry, min_group_size: int) -> bool:
    """Whether the page shows the figures of ``entry``: it ran to the end and its base is not
    under the smallest group a report may describe."""
    return entry.status == "ok" and bool(entry.kpis) and entry.kpis.get("customers", min_group_size) >= min_group_size


def _listed(items: list[str]) -> str:
    """Items in a sentence, joined with the language's list separator (``, `` or ``、``)."""
    return t("run.series.separator").join(items)


def _count_sentence(entries: list[SeriesEntry]) -> str:
    """``6 periods from 31 July 2017 to 31 December 2017: 5 ran to the end, 1 failed.``"""
    counts = [
        t(f"run.series.count.{status}", n=n) for status in STATUSES if (n := sum(e.status == status for e in entries))
    ]
    if len(entries) == 1:
        return t("run.series.finding.one_period", period=_date(entries[0].as_of), counts=_listed(counts))
    return t(
        "run.series.finding.periods",
        periods=len(entries),
        first=_date(entries[0].as_of),
        last=_date(entries[-1].as_of),
        counts=_listed(counts),
    )


def _failure_sentences(entries: list[SeriesEntry]) -> list[str]:
    """One sentence per period that failed or was interrupted (with its error), one for those not run."""
    out = []
    for e in entries:
        period = _date(e.as_of)
        if e.status == "failed":
            out.append(
                t("run.series.finding.failed", period=period, error=e.error)
                if e.error
                else t("run.series.finding.failed_no_error", period=period)
            )
        elif e.status == "interrupted":
            out.append(
                t("run.series.finding.interrupted", period=period, error=e.error)
                if e.error
                else t("run.series.finding.interrupted_no_error", period=period)
            )
    not_run = [_date(e.as_of) for e in entries if e.status == "not_run"]
    if not_run:
        out.append(t("run.series.finding.not_run", periods=_listed(not_run)))
    return out


def _trend_sentence(entries: list[SeriesEntry], currency: str, min_group_size: int) -> str:
    """How the key figures moved from the first to the last period whose figures are shown."""
    good = [e for e in entries if _shows_figures(e, min_group_size)]
    if not good:
        return t("run.series.finding.no_figures")
    if len(good) == 1:
        return t("run.series.finding.one_good", period=_date(good[0].as_of))
    first, last = good[0], good[-1]
    moves = []
    for name in TREND_KPIS:
        if name not in first.kpis or name not in last.kpis:
            continue
        moved = history.change(last.kpis[name], first.kpis[name], history.KPIS[name][1])
        label = t(f"run.index.kpi.{name}")
        before = history.kpi_text(name, first.kpis[name], currency)
        now = history.kpi_text(name, last.kpis[name], currency)
        moves.append(
            t("run.series.trend.moved", label=label, before=before, now=now, change=moved)
            if moved
            else t("run.series.trend.same", label=label, before=before, now=now)
        )
    if not moves:
        return t("run.series.finding.no_figures")
    return t("run.series.finding.trend", first=_date(first.as_of), last=_date(last.as_of), moves=_clauses(moves))


def _clauses(moves: list[str]) -> str:
    """Clauses of one sentence, joined with the language's separator (``; `` or ``；``)."""
    return t("run.series.clause_separator").join(moves)


def _flag_sentences(entries: list[SeriesEntry], min_group_size: int) -> list[str]:
    """Each note of the runs once, with the periods it concerns; the periods whose base is too
    small to show figures."""
    periods: dict[str, list[str]] = {}
    for e in entries:
        for flag in dict.fromkeys(e.flags):
            periods.setdefault(flag, []).append(_date(e.as_of))
    out = [t("run.series.finding.flag", periods=_listed(p), flag=flag) for flag, p in periods.items()]
    small = [_date(e.as_of) for e in entries if e.status == "ok" and e.kpis and not _shows_figures(e, min_group_size)]
    if small:
        out.append(t("run.series.finding.small_base", periods=_listed(small), min_group_size=min_group_size))
    return out


def findings(entries: list[SeriesEntry], currency: str = "", min_group_size: int = 10) -> list[str]:
    """The sentences the page opens with: how many periods ran and how, each failure with its
    error, the move of the key figures, the notes of the runs."""
    if not entries:
        return [t("run.series.finding.empty")]
    return [
        _count_sentence(entries),
        *_failure_sentences(entries),
        _trend_sentence(entries, currency, min_group_size),
        *_flag_sentences(entries, min_group_size),
    ]


def _compared(entry: SeriesEntry) -> str:
    """The run ``entry`` compared itself with, as a period when its name starts with a date."""
    if not entry.compared_with:
        return MISSING
    dated = _DATED.match(entry.compared_with)
    return _date(dated.group(1)) if dated else entry.compared_with


def _link(entry: SeriesEntry) -> str:
    """The link to the period's report: its index, the report of the stage that failed, or what
    an interrupted run wrote."""
    if not entry.link:
        return MISSING
    word = {
        "ok": t("run.series.link.report"),
        "partial": t("run.series.link.report"),
        "interrupted": t("run.series.link.partial"),
    }.get(entry.status, t("run.series.link.failed_stage"))
    return f'<a href="{html.escape(entry.link, quote=True)}">{html.escape(word)}</a>'


def _runs_table(entries: list[SeriesEntry]) -> str:
    """Period, status (coloured), the run it compared itself with, notes and error, report link."""
    rows = []
    for e in entries:
        notes = [*e.flags, *([e.error] if e.error else [])]
        cells = (
            html.escape(_date(e.as_of)),
            f"<span class='{e.status}'>{html.escape(t(f'run.status.{e.status}'))}</span>",
            html.escape(_compared(e)),
            "<br>".join(html.escape(n) for n in notes) or MISSING,
            _link(e),
        )
        kept = ("nowrap", "nowrap", "nowrap", "", "")  # dates and status on one line; notes wrap
        rows.append("<tr>" + "".join(f"<td class='{k}'>{c}</td>" for k, c in zip(kept, cells, strict=True)) + "</tr>")
    headings = "".join(f"<th>{html.escape(t(f'run.series.column.{c}'))}</th>" for c in RUN_COLUMNS)
    return f"<table><tr>{headings}</tr>{''.join(rows)}</table>"


def kpi_frame(entries: list[SeriesEntry], min_group_size: int = 10) -> pd.DataFrame:
    """The key figures of the periods whose figures are shown: one row per period (indexed by its
    short date), one column per key figure of :data:`~cp_toolkit.run.history.KPIS` that any has;
    NaN where a period has no figure."""
    rows = [e.kpis if _shows_figures(e, min_group_size) else {} for e in entries]
    names = [n for n in history.KPIS if any(n in r for r in rows)]
    index = [_date(e.as_of, short=True) for e in entries]
    return pd.DataFrame(
        [[r.get(n, float("nan")) for n in names] for r in rows], index=index, columns=names, dtype=float
    )


def segment_frame(entries: list[SeriesEntry], min_group_size: int = 10) -> pd.DataFrame:
    """Customers of each RFM segment (named in the report's language) per period, as
    :func:`kpi_frame`; NaN for a hidden segment and where the period shows no figures."""
    rows = [e.segment_sizes if _shows_figures(e, min_group_size) else {} for e in entries]
    names = list(dict.fromkeys(n for r in rows for n in r))
    data = [[_size(r, n) for n in names] for r in rows]
    index = [_date(e.as_of, short=True) for e in entries]
    columns = [localize("segment.rfm", n) for n in names]
    return pd.DataFrame(data, index=index, columns=columns, dtype=float)


def _size(sizes: dict[str, int | None], name: str) -> float:
    """A segment's customers in a period that records sizes: 0 when it has none, NaN when hidden."""
    if not sizes:
        return float("nan")
    value = sizes.get(name, 0)
    return float("nan") if value is None else float(value)


def _no_figures(entry: SeriesEntry, min_group_size: int) -> str | None:
    """The word a table cell of ``entry`` shows when the period shows no figures (it did not run
    to the end, or its base is too small); None when it shows them."""
    if entry.status != "ok":
        return f"<span class='{entry.status}'>{html.escape(t(f'run.status.{entry.status}'))}</span>"
    return None if _shows_figures(entry, min_group_size) else _hidden()


def _hidden() -> str:
    """A cell whose figure is not shown (a segment under the minimum, a base too small)."""
    return f"<span class='hidden'>{html.escape(t('run.series.cell.hidden'))}</span>"


def _kpi_table(entries: list[SeriesEntry], currency: str, min_group_size: int) -> str:
    """Rows: the key figures any shown period has; columns: the periods."""
    rows = []
    for name in kpi_frame(entries, min_group_size).columns:
        cells = [
            _no_figures(e, min_group_size)
            or html.escape(history.kpi_text(name, e.kpis[name], currency) if name in e.kpis else MISSING)
            for e in entries
        ]
        rows.append(_row(t(f"run.index.kpi.{name}"), cells))
    return _wide_table(entries, rows, t("run.series.column.figure")) if rows else ""


def _segment_table(entries: list[SeriesEntry], min_group_size: int) -> str:
    """Rows: the RFM segments; columns: the periods; a hidden segment says so, never a count."""
    names = dict.fromkeys(n for e in entries if _shows_figures(e, min_group_size) for n in e.segment_sizes)
    rows = []
    for name in names:
        cells = []
        for e in entries:
            value = e.segment_sizes.get(name, 0)
            shown = _hidden() if value is None else html.escape(history.kpi_text("customers", value))
            cells.append(_no_figures(e, min_group_size) or (shown if e.segment_sizes else MISSING))
        rows.append(_row(localize("segment.rfm", name), cells))
    return _wide_table(entries, rows, t("run.series.column.segment")) if rows else ""


def _row(label: str, cells: list[str]) -> str:
    """A row of a table of periods: its label, then the cells (HTML already)."""
    return f"<tr><th>{html.escape(label)}</th>{''.join(f'<td class=num>{c}</td>' for c in cells)}</tr>"


def _wide_table(entries: list[SeriesEntry], rows: list[str], corner: str) -> str:
    """A table with a column per period (short dates), scrolling sideways when the page is too narrow."""
    periods = "".join(f"<th>{html.escape(_date(e.as_of, short=True))}</th>" for e in entries)
    return f"<div class='wide'><table><tr><th>{html.escape(corner)}</th>{periods}</tr>{''.join(rows)}</table></div>"


def _charts(entries: list[SeriesEntry], currency: str, min_group_size: int) -> tuple[str, str]:
    """The key figures and the segments over the periods as embedded images ("" when there is
    nothing to draw)."""
    from .. import plots  # charts load matplotlib; the rest of the run frame does not
    from ..display.page import figure_html

    missing = [e.status != "ok" for e in entries]
    kpis = kpi_frame(entries, min_group_size)
    figures = ""
    if kpis.notna().any().any():
        kinds = {n: history.KPIS[n][1] for n in kpis.columns}
        names = {n: _kpi_title(n, currency) for n in kpis.columns}
        axes = plots.kpi_trends(kpis, kinds=kinds, names=names, missing=missing, **labels("plots.kpi_trends"))
        figures = figure_html(axes.ravel()[0], t("run.series.kpi_chart_alt"))
    segments = segment_frame(entries, min_group_size)
    drawn = ""
    if segments.notna().any().any():
        ax = plots.segment_trends(segments, missing=missing, **labels("plots.segment_trends"))
        drawn = figure_html(ax, t("plots.segment_trends.title"))
    return figures, drawn


def _kpi_title(name: str, currency: str) -> str:
    """A key figure's name as a chart's title, money with its currency."""
    label = t(f"run.index.kpi.{name}")
    return (
        t("run.series.money_title", label=label, currency=currency)
        if history.KPIS[name][1] == "money" and currency
        else label
    )


def write_series_index(
    folder: Path, entries: list[SeriesEntry], title: str, currency: str = "", min_group_size: int = 10
) -> Path:
    """Write ``folder/index.html``, the page of a series of runs (atomically), in the language
    already selected (:func:`~cp_toolkit.text.set_language`).

    Parameters
    ----------
    folder : Path
        The series folder, holding the runs' folders.
    entries : list of SeriesEntry
        The periods in order.
    title : str
        The page's title.
    currency : str
        The unit of money figures.
    min_group_size : int
        The smallest group a report may describe: a run with fewer customers shows no figures.

    Returns
    -------
    Path
        The page written.
    """
    kpi_chart, segment_chart = _charts(entries, currency, min_group_size) if entries else ("", "")
    items = "".join(f"<li>{inline_html(s)}</li>" for s in findings(entries, currency, min_group_size))
    caption = (
        f"<p class='caption'>{html.escape(t('run.series.chart_caption'))}</p>"
        if any(e.status != "ok" for e in entries)
        else ""
    )
    kpi_part = (
        f"<h2>{html.escape(t('run.series.heading.figures'))}</h2>{kpi_chart}{caption}"
        f"{_kpi_table(entries, currency, min_group_size)}"
        if kpi_chart
        else ""
    )
    segment_part = (
        f"<h2>{html.escape(t('run.series.heading.segments'))}</h2>"
        f"<p>{html.escape(t('run.series.segments_intro', min_group_size=min_group_size))}</p>"
        f"{segment_chart}{_segment_table(entries, min_group_size)}"
        if segment_chart
        else ""
    )
    head = f"<head><meta charset='utf-8'><title>{html.escape(title)}</title>"
    page = f"""<!DOCTYPE html><html lang='{get_language()}'>{head}
<style>{_INDEX_STYLE}</style>{_SERIES_STYLE}{FINDINGS_STYLE}</head><body>
<h1>{html.escape(title)}</h1>
<div class='cp-findings'><h2>{html.escape(t("display.findings"))}</h2><ul>{items}</ul></div>
<h2>{html.escape(t("run.series.heading.runs"))}</h2>
{_runs_table(entries)}
{kpi_part}
{segment_part}
</body></html>"""
    return write_text(Path(folder) / "index.html", page)
