"""The run before this one, and the key figures (KPIs) that runs compare.

Each stage records its key figures in its summary (``stages/<stage>.json``, key ``kpis``); the
index shows them as cards with the change since the previous run of the same profile, and the
findings of a report say that change in words.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ..display import is_missing, money, number
from ..text import t
from .artifacts import RunFolder

__all__ = [
    "KPIS",
    "SIGNED",
    "change",
    "compared",
    "kpi_text",
    "kpis",
    "previous_folder",
    "previous_run",
    "since_previous",
]

#: The key figures of a run in the order of the index's cards: name -> (stage, kind).
KPIS: dict[str, tuple[str, str]] = {
    "customers": ("01_ingest", "count"),
    "active_customers": ("02_eda", "count"),
    "revenue": ("02_eda", "money"),
    "orders": ("02_eda", "count"),
    "repeat_rate": ("02_eda", "percent"),
    "share_at_risk": ("04_prediction", "percent"),
    "mean_clv": ("05_clv", "money"),
    "holdout_error": ("05_clv", "percent"),
    "quality_score": ("01_ingest", "percent"),
}

#: The key figures that may go either way from zero (an error), shown with their sign: ``+0.8%``.
SIGNED = frozenset({"holdout_error"})

_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})_(.+)$")


def _finished(folder: Path) -> bool:
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("status") == "ok"
    except (OSError, ValueError):
        return False


def previous_folder(folder: Path) -> Path | None:
    """The latest finished run of the same profile beside ``folder`` with an earlier date
    (folders named ``<as_of>_<profile>``, as ``cp-toolkit run`` names them); None when there is none."""
    found = _NAME.match(folder.name)
    if not found:
        return None
    date, profile = found.groups()
    earlier = sorted(
        (m.group(1), p)
        for p in folder.parent.glob(f"*_{profile}")
        if (m := _NAME.match(p.name)) and m.group(2) == profile and m.group(1) < date and _finished(p)
    )
    return earlier[-1][1] if earlier else None


def previous_run(run: RunFolder) -> RunFolder | None:
    """The run to compare with: the ``previous_run`` parameter when the run sets it (relative to
    the folder holding the run, as for the segment migration; ``cp-toolkit run`` sets it to
    :func:`previous_folder` of its target), else :func:`previous_folder`; None when there is none."""
    chosen = run.params.get("previous_run")
    if chosen:
        folder = Path(chosen) if Path(chosen).is_absolute() else run.path.parent / chosen
        return RunFolder(folder) if (folder / "stages").is_dir() else None
    folder = previous_folder(run.path)
    return RunFolder(folder) if folder else None


def kpis(run: RunFolder | None) -> dict[str, float]:
    """The key figures the stages of ``run`` recorded (empty for no run)."""
    if run is None:
        return {}
    out: dict[str, float] = {}
    for stage in dict.fromkeys(stage for stage, _ in KPIS.values()):
        out.update(run.stage_summary(stage).get("kpis", {}))
    return out


def kpi_text(name: str, value: float, currency: str = "") -> str:
    """The key figure ``name`` as a card or a table shows it: money with ``currency``, a share as a
    percentage, a count with separators; a figure of :data:`SIGNED` with its sign (``+0.8%``).

    Parameters
    ----------
    name : str
        A key of :data:`KPIS` (another name reads as a count).
    value : float
        The figure; a missing one reads as :data:`~cp_toolkit.display.MISSING`.
    currency : str
        The unit of money figures.
    """
    kind = KPIS.get(name, ("", "count"))[1]
    shown = money(value, currency) if kind == "money" and currency else number(value, kind)
    if name not in SIGNED or is_missing(value):
        return shown
    if not shown.lstrip("-").strip("0.%"):  # rounds to zero: no sign, "0.0%" rather than "-0.0%"
        return shown.lstrip("-")
    return f"+{shown}" if value > 0 else shown


def change(now: float | None, before: float | None, kind: str) -> str | None:
    """The change from ``before`` to ``now`` in words (``+3.2%``; a share in points, ``+1.5 pts``),
    None when either is missing."""
    if now is None or before is None or pd.isna(now) or pd.isna(before):
        return None
    if kind == "percent":
        points = (now - before) * 100
        return t("display.change.points", points=points) if round(points, 1) else t("display.change.none")
    if before == 0:
        return None
    relative = now / before - 1
    return t("display.change.relative", relative=relative) if round(relative, 3) else t("display.change.none")


def compared(run: RunFolder, current: dict[str, Any]) -> dict[str, str]:
    """Each KPI of ``current`` with its change since :func:`previous_run` in words (only those that have one)."""
    before = kpis(previous_run(run))
    out = {}
    for name, value in current.items():
        kind = KPIS.get(name, ("", "count"))[1]
        moved = change(value, before.get(name), kind)
        if moved is not None:
            out[name] = moved
    return out


def since_previous(run: RunFolder | None, figures: dict[str, Any], name: str) -> str:
    """`` (+3.2% on the previous run)`` for the key figure ``name`` of ``figures``, for a finding
    sentence; nothing without a run, a previous run or that figure in both."""
    moved = compared(run, figures).get(name) if run is not None else None
    return t("display.since_previous", change=moved) if moved else ""
