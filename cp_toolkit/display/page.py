"""How numbers, tables and warnings are shown in the notebooks and their HTML reports."""

from __future__ import annotations

import base64
import html as htmllib
import io
import re
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd
from IPython import get_ipython
from IPython.display import HTML, Markdown, display

from ..config import DEFAULTS
from ..run.artifacts import RunFolder
from ..text import set_language, t, words
from .numbers import number
from .tables import Table, column_kind, present, settings, small_base, suppressed_note

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "appendix",
    "configure_display",
    "figure_html",
    "findings",
    "heading",
    "inline_html",
    "key_figures",
    "notes",
    "paragraph",
    "skipped",
    "text",
    "title",
]


def configure_display(
    language: str = DEFAULTS["report_language"],
    currency: str | None = DEFAULTS["currency"],
    min_group_size: int = DEFAULTS["min_group_size"],
    run: RunFolder | None = None,
) -> None:
    """Set up a notebook for its report in ``language`` (``en`` or ``zh``): every DataFrame or
    Series a cell returns is shown through :func:`~cp_toolkit.display.tables.present` (headings in
    words, money in ``currency``, numbers formatted by kind, groups under ``min_group_size``
    suppressed, an empty one as nothing), and a warning is shown as a short note rather than a
    file path and a warning class. When ``run`` has fewer customers than ``min_group_size``, no
    table, chart, finding or paragraph of figures is shown, only a sentence that says why."""
    set_language(language)
    settings(currency=currency, min_group_size=min_group_size, base=(lambda: base_size(run)) if run else None)
    pd.set_option("display.max_colwidth", None)  # sentences in tables are shown whole
    shell = get_ipython()
    if shell is None:
        return
    html = shell.display_formatter.formatters["text/html"]
    for kind in (pd.DataFrame, pd.Series):  # an empty table shows nothing: the notes say why it is empty
        html.for_type(kind, lambda data: present(data).html if len(data) else "")
    _hide_charts_of_a_small_base(shell)
    warnings.showwarning = _show_warning


def _hide_charts_of_a_small_base(shell: Any) -> None:
    """Before each cell, turn the PNG output of charts off while the run's base is under the
    smallest group shown (the inline backend registers its printer only at the first chart, so
    the formatter is switched rather than its printer replaced); a figure then shows as nothing."""
    formatters = shell.display_formatter.formatters
    png = formatters["image/png"]
    shell.events.register("pre_execute", lambda: setattr(png, "enabled", small_base() is None))
    formatters["text/html"].for_type_by_name(
        "matplotlib.figure", "Figure", lambda figure: "" if small_base() is not None else None
    )


def base_size(run: RunFolder | None) -> int | None:
    """The number of customers of a run (from its ingest), None before the ingest has run."""
    if run is None or not run.has("quality"):
        return None
    return int(run.load("quality")["transactions"]["customers"])


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, *args: Any) -> None:
    """A warning as a note in the report: the toolkit's own as they are, another library's with
    its origin in words (in a kernel, standard error is captured into the report too)."""
    if "cp_toolkit" in filename.replace("\\", "/").split("/"):
        display(Markdown(t("display.note", message=message)))
    else:
        library = next((part for part in filename.replace("\\", "/").split("/") if part in _LIBRARIES), "Python")
        display(Markdown(t("display.library_note", library=library, message=str(message).splitlines()[0])))


_LIBRARIES = ("lifetimes", "sklearn", "pandas", "numpy", "scipy", "matplotlib", "seaborn", "duckdb", "pyarrow")


def key_figures(values: Mapping[str, Any], labels: str, kinds: Mapping[str, str] | None = None) -> Table:
    """A (figure, value) table from a flat mapping: each figure named by the text ``<labels>.<key>``
    and formatted by its kind (given, else read from its name as a column's would be)."""
    kinds = dict(kinds or {})
    rows = [
        (words(labels, key), number(value, kinds.get(key) or column_kind(key, pd.Series([value]))))
        for key, value in values.items()
        if not isinstance(value, Mapping)
    ]
    frame = pd.DataFrame(rows, columns=[t("display.figure"), t("display.value")])
    return present(frame.set_index(t("display.figure")), {t("display.value"): "text"})


def notes(sentences: list[str]) -> Markdown:
    """Sentences as a bulleted Markdown list (what a report's reader must know first)."""
    return Markdown("\n".join(f"- {s}" for s in sentences or [t("display.nothing_to_flag")]))


def paragraph(text: str | None) -> Markdown | None:
    """A sentence or paragraph of the report's figures; nothing (None) when there is none, or when
    the base is under the smallest group shown."""
    return Markdown(text) if text and small_base() is None else None


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


def title(key: str, /, **fields: Any) -> Markdown:
    """The report's title (``# ...``) and its one-paragraph introduction: the texts ``<key>.title``
    and ``<key>.intro``."""
    return Markdown(f"# {t(key + '.title', **fields)}\n\n{t(key + '.intro', **fields)}")


def text(key: str, /, **fields: Any) -> Markdown:
    """A paragraph of the report from the text table (what a table or chart shows, how to read it)."""
    return Markdown(t(key, **fields))


def findings(sentences: list[str]) -> HTML:
    """What the report found, first on its page: a framed list of 3-6 generated sentences."""
    if small_base() is not None:
        sentences = [suppressed_note()]
    items = "".join(f"<li>{inline_html(s)}</li>" for s in sentences if s)
    return HTML(f"<div class='cp-findings'><h2>{t('display.findings')}</h2><ul>{items}</ul></div>{STYLE}")


def figure_html(ax: Axes, alt: str = "") -> str:
    """A chart as an ``<img>`` embedded in HTML (PNG), for a chart that belongs inside a block of
    the page (a persona card) rather than below a cell; the figure is closed."""
    import matplotlib.pyplot as plt  # charts load matplotlib, the tables do not

    buffer = io.BytesIO()
    ax.figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(ax.figure)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img src='data:image/png;base64,{data}' alt='{htmllib.escape(alt, quote=True)}'>"


def appendix() -> Markdown:
    """The heading of the appendix: technical detail below it (fit settings, standard errors, dictionaries)."""
    return Markdown(f"## {t('display.appendix')}\n\n{t('display.appendix_intro')}")


def inline_html(sentence: str) -> str:
    """A sentence with Markdown bold (``**...**``) and italics (``*...*``) as HTML, everything else escaped."""
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", htmllib.escape(sentence))
    return re.sub(r"(?<![\w*])\*(\S.*?)\*(?![\w*])", r"<em>\1</em>", escaped)


#: The style of the report's own elements (findings box, tables, folded tables), shown once per page.
STYLE = """<style>
.cp-findings{border-left:5px solid #2c7fb8;background:#f1f7fb;padding:.6em 1.2em;margin:1em 0 1.5em;max-width:60em}
.cp-findings h2{margin-top:.3em}.cp-findings li{margin:.35em 0;font-size:1.05em;line-height:1.45}
table.cp-table{border-collapse:collapse;margin:.5em 0 1em}table.cp-table th,table.cp-table td{padding:.25em .7em}
details.cp-more summary{cursor:pointer;color:#2c7fb8;margin:.2em 0 1em}
</style>"""
