"""How one figure reads in a report: thousands separators, sensible decimals, percentages, dates.

Every number a report shows goes through :func:`number` with a *kind* that says what it is:

========= =============================================== ==================
kind      what                                            ``1234.5678`` reads
========= =============================================== ==================
count     people, orders, rows                            ``1,235``
money     an amount of money (the unit is in the header)  ``1,235`` (``12.35`` under 100)
percent   a share stored as 0..1                          ``123,457%``
days      a duration in days                              ``1,235``
ratio     an index, lift or multiple                      ``1,234.57``
decimal   a score or statistic                            ``1,235`` (3 significant digits)
date      a day or a time                                 ``2017-03-04`` / ``2017-03-04 18:26``
month     a calendar month                                ``2017-03``
========= =============================================== ==================

A missing figure (NaN, NA, NaT, None, infinity) reads as :data:`MISSING`, never ``NaN``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["KINDS", "MISSING", "is_missing", "money", "number"]

MISSING = "–"  # what an empty cell shows: never NaN, <NA> or NaT
KINDS = ("count", "money", "percent", "days", "ratio", "decimal", "date", "month", "text")


def is_missing(value: Any) -> bool:
    """Whether ``value`` is a figure that could not be computed (None, NaN, NA, NaT, infinite)."""
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return not math.isfinite(value)
    return bool(np.ndim(value) == 0 and pd.isna(value))


def _decimal(value: float) -> str:
    """Three significant digits, thousands separated: 0.532, 17.6, 1,235, 0.00123."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:,.{digits}f}"


def _date(value: Any, kind: str) -> str:
    stamp = pd.Timestamp(value)
    if kind == "month":
        return stamp.strftime("%Y-%m")
    return stamp.strftime("%Y-%m-%d" if stamp == stamp.normalize() else "%Y-%m-%d %H:%M")


def number(value: Any, kind: str = "decimal") -> str:
    """``value`` as a reader sees it (see the module's table of kinds).

    Parameters
    ----------
    value : object
        A number, a date, a string (returned as it is) or a missing value.
    kind : str
        One of :data:`KINDS`.
    """
    if isinstance(value, str):
        return value
    if is_missing(value):
        return MISSING
    if isinstance(value, (pd.Timestamp, np.datetime64)) or kind in ("date", "month"):
        return _date(value, kind)
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if kind == "text":  # a number in a column of words: as a figure, never its full repr
        return f"{value:,}" if isinstance(value, (int, np.integer)) else _decimal(float(value))
    value = float(value)
    if kind in ("count", "days"):
        return f"{value:,.0f}"
    if kind == "money":
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    if kind == "percent":
        return f"{value:.1%}" if abs(value) < 0.1 and value != 0 else f"{value:,.0%}"
    if kind == "ratio":
        return f"{value:,.2f}"
    return _decimal(value)


def money(value: Any, currency: str) -> str:
    """An amount with its currency for a sentence: ``4,594,146 USD`` (``n/a`` style dash when missing)."""
    shown = number(value, "money")
    return shown if shown == MISSING else f"{shown} {currency}"
