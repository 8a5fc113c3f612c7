"""How numbers, tables and warnings are shown in the notebooks and their HTML reports."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from IPython import get_ipython
from IPython.display import Markdown, display
from pandas.io.formats.style import Styler

from .text import t

__all__ = ["cell", "configure_display", "heading", "key_figures", "notes", "paragraph", "skipped", "table"]

MISSING = "–"  # what an empty cell shows: never NaN, <NA> or NaT
_python_showwarning = warnings.showwarning


def configure_display() -> None:
    """Set up a notebook for its report: every DataFrame or Series a cell returns is shown through
    :func:`table` (thousands separators, dates without nanoseconds, "–" for missing values, a
    Series as a one-column table, an empty one as nothing), and a warning raised by the toolkit
    is shown as a sentence rather than a file path and a warning class. Outside IPython only
    pandas' options are set."""
    pd.set_option("display.float_format", "{:,.3f}".format)
    pd.set_option("display.max_columns", 50)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", None)  # sentences in tables are shown whole
    shell = get_ipython()
    if shell is None:
        return
    html = shell.display_formatter.formatters["text/html"]
    for kind in (pd.DataFrame, pd.Series):  # an empty table shows nothing: the notes say why it is empty
        html.for_type(kind, lambda data: table(data).to_html() if len(data) else "")
    warnings.showwarning = _show_warning


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, *args: Any) -> None:
    """The toolkit's own warnings as a note in the report; anything else as Python shows it."""
    if "cp_toolkit" in filename.replace("\\", "/").split("/"):
        display(Markdown(t("display.note", message=message)))
    else:
        _python_showwarning(message, category, filename, lineno, *args)


def cell(value: Any) -> str:
    """One table cell as a reader sees it: ``1,234``, ``0.532``, ``2017-03-04`` or ``2017-03-04 18:26``,
    and :data:`MISSING` for NaN, NA and NaT."""
    if isinstance(value, str):
        return value
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    if isinstance(value, (float, np.floating)):
        return f"{value:,.3f}" if np.isfinite(value) else MISSING
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d" if value == value.normalize() else "%Y-%m-%d %H:%M")
    return str(value)


def table(data: pd.DataFrame | pd.Series) -> Styler:
    """A DataFrame, or a Series as a one-column table, with every cell and index label through :func:`cell`."""
    if isinstance(data, pd.Series):
        data = data.to_frame(name=data.name if data.name is not None else t("display.value"))
    styler = data.style.format(cell).format_index(cell, axis=0)
    return styler.format_index(cell, axis=1)


def _format(value: Any) -> str:
    """A readable string for one figure."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return MISSING
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def key_figures(values: Mapping[str, Any], prefix: str = "") -> pd.DataFrame:
    """A (figure, value) table from a possibly nested mapping; nested keys are joined with dots.
    The two headers are the texts ``display.figure`` and ``display.value``."""
    figure, shown = t("display.figure"), t("display.value")
    rows = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.append(key_figures(value, prefix=f"{name}.").reset_index())
        else:
            rows.append(pd.DataFrame({figure: [name], shown: [_format(value)]}))
    if not rows:
        return pd.DataFrame(columns=[shown], index=pd.Index([], name=figure))
    out = pd.concat(rows, ignore_index=True)
    return out.set_index(figure) if figure in out.columns else out


def notes(sentences: list[str]) -> Markdown:
    """Sentences as a bulleted Markdown list (what a report's reader must know first)."""
    return Markdown("\n".join(f"- {s}" for s in sentences or [t("display.nothing_to_flag")]))


def paragraph(text: str | None) -> Markdown | None:
    """A sentence or paragraph of the report; nothing (None) when there is none."""
    return Markdown(text) if text else None


def heading(key: str, /, level: int = 2, **fields: Any) -> Markdown:
    """A report heading from the text table: ``heading("predict.heading.scores", as_of="2017-12-31")``
    shows ``## Scores for every customer as of 2017-12-31`` (``level`` = number of ``#``)."""
    return Markdown(f"{'#' * level} {t(key, **fields)}")


def skipped(reasons: Mapping[str, str] | str | None, part: str | None = None) -> Markdown | None:
    """Why a part of a report is not shown, as plain sentences; nothing (None) when all is shown.

    Parameters
    ----------
    reasons : mapping, str or None
        A stage result's ``skipped`` (part -> sentence), or one sentence.
    part : str, optional
        Show only this part's sentence (e.g. ``"clusters"``).
    """
    if isinstance(reasons, Mapping):
        sentences = [reasons[part]] if part in reasons else [] if part else list(reasons.values())
    else:
        sentences = [reasons] if reasons else []
    return Markdown("\n\n".join(t("display.note", message=s) for s in sentences)) if sentences else None
