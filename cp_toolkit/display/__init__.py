"""The presentation layer of the reports: how figures, tables, findings, notes and warnings are shown.

- :mod:`.numbers`: one figure by its kind (count, money, percent, days, ...);
- :mod:`.tables`: the one table formatter (:func:`present`), headings in words from the text table;
- :mod:`.page`: a report's title, findings, paragraphs, notes, headings and appendix.
"""

from .numbers import KINDS, MISSING, is_missing, money, number
from .page import (
    STYLE,
    appendix,
    configure_display,
    findings,
    heading,
    key_figures,
    notes,
    paragraph,
    skipped,
    text,
    title,
)
from .tables import COLUMN_KINDS, Table, column_kind, column_label, present, settings

__all__ = [
    "COLUMN_KINDS",
    "KINDS",
    "MISSING",
    "STYLE",
    "Table",
    "appendix",
    "column_kind",
    "column_label",
    "configure_display",
    "findings",
    "heading",
    "is_missing",
    "key_figures",
    "money",
    "notes",
    "number",
    "paragraph",
    "present",
    "settings",
    "skipped",
    "text",
    "title",
]
