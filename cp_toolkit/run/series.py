"""A series of runs: one run per period end, in one folder, with a page of their trends.

``cp-toolkit run --as-of 2017-07-31..2017-12-31 --every month`` runs each month end into
``reports/<series>/<as_of>_<profile>/`` (each run compares itself with the latest finished run
before it there) and writes ``reports/<series>/index.html``: every period with its status and
the trends of the key figures. A period already done is skipped unless ``--force``; one whose
inputs, parameters or code changed since it ran is flagged. A failed period does not stop the
series; an interrupted one does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import SERIES_PERIODS
from ..errors import CPToolkitError, InterruptedRun, ParameterError
from ..text import set_language, t
from . import history
from .artifacts import RunFolder
from .console import Console
from .lock import RunLock
from .pipeline import STAGES
from .report import current_state, find_notebooks, read_manifest, run_report, stale_stages
from .series_page import SeriesEntry, write_series_index
from .workspace import Workspace

__all__ = ["SeriesSummary", "period_ends", "run_series", "series_entries"]

#: pandas frequency of each period: month and quarter ends; a week steps seven days from FIRST.
FREQUENCIES = {"week": "7D", "month": "ME", "quarter": "QE"}


def period_ends(first: str, last: str, every: str) -> list[str]:
    """The period ends of a series, as ISO dates: the month (quarter) ends from the one of
    ``first`` to ``last``; for weeks, ``first`` and every seventh day after it up to ``last``.

    Raises
    ------
    ParameterError
        For a date that is not one, ``first`` after ``last``, or an unknown period.
    """
    if every not in SERIES_PERIODS:
        raise ParameterError(f"--every {every!r}: give one of {', '.join(SERIES_PERIODS)}")
    try:
        start, end = pd.Timestamp(first), pd.Timestamp(last)
    except ValueError as err:
        start = end = pd.NaT
        reason = f"{err}; "
    else:
        reason = ""
    if pd.isna(start) or pd.isna(end):
        raise ParameterError(f"--as-of {first}..{last}: {reason}give two dates, e.g. 2017-07-31..2017-12-31")
    if start > end:
        raise ParameterError(f"--as-of {first}..{last}: the first date is after the last")
    ends = pd.date_range(start, end, freq=FREQUENCIES[every])
    if not len(ends):
        raise ParameterError(f"--as-of {first}..{last} holds no {every} end; widen the range")
    return [d.date().isoformat() for d in ends]


@dataclass
class SeriesSummary:
    """What a series run did: the periods it ran (failed ones too), skipped and saw fail."""

    entries: list[SeriesEntry]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when no period failed, else 1."""
        return 1 if self.failed else 0


def changed_since(target: Path, params: dict[str, Any], notebooks: dict[str, Path]) -> list[str]:
    """Why the published run in ``target`` would not be the same today: each stage's reasons
    (:func:`~cp_toolkit.run.fingerprint.rerun_reasons`), without repeats; empty when none."""
    stale = stale_stages(read_manifest(target), current_state(params, target, notebooks), list(STAGES))
    reasons = [r for stage in STAGES for r in stale[stage]]
    return [r for r in dict.fromkeys(reasons) if not r.startswith("an earlier stage")]


def _entry(target: Path, as_of: str, flags: list[str], min_group_size: int) -> SeriesEntry:
    """The page's entry of one period, from what its folders hold."""
    folder, manifest = Workspace(target).latest()
    if folder is None:
        return SeriesEntry(as_of=as_of, name=target.name, status="not_run", flags=flags)
    status = manifest.get("status", "failed")
    failed = next((s for s in manifest.get("stages", []) if s.get("status") in ("failed", "interrupted")), None)
    page = f"{failed['stage']}.html" if failed and (folder / f"{failed['stage']}.html").is_file() else "index.html"
    shown = target if (target / "manifest.json").is_file() else None  # a failed rerun leaves the published run
    if folder != target and shown is not None:
        flags = [*flags, t("run.series_flag.published_kept")]
    recorded = (read_manifest(shown).get("parameters") or {}) if shown else {}
    before = recorded.get("previous_run")
    run = RunFolder(shown) if shown else None
    sizes = run.stage_summary("03_segmentation").get("segment_sizes", {}) if run else {}
    if sizes and int(recorded.get("min_group_size", 1)) < min_group_size:  # hidden under a smaller threshold
        sizes, flags = {}, [*flags, t("run.series_flag.smaller_groups", min_group_size=recorded["min_group_size"])]
    return SeriesEntry(
        as_of=as_of,
        name=target.name,
        status=status,
        link=f"{folder.name}/{page}",
        kpis=history.kpis(run),
        segment_sizes=sizes,
        compared_with=Path(before).name if before else None,
        flags=flags,
        error=manifest.get("error"),
    )


def series_entries(
    folder: Path, ends: list[str], profile: str, flags: dict[str, list[str]], min_group_size: int
) -> list[SeriesEntry]:
    """The page's entries of every period end of a series folder (a run's segment sizes only when
    it hid groups under ``min_group_size`` at least)."""
    return [_entry(folder / f"{end}_{profile}", end, flags.get(end, []), min_group_size) for end in ends]


def _write_page(
    folder: Path, ends: list[str], profile: str, flags: dict[str, list[str]], params: dict[str, Any]
) -> Path:
    """The series page, from the folders as they are now."""
    k = int(params.get("min_group_size", 1))
    return write_series_index(
        folder,
        series_entries(folder, ends, profile, flags, k),
        t("run.series.title", series=folder.name),
        currency=params.get("currency", ""),
        min_group_size=k,
    )


def run_series(
    params: dict[str, Any],
    folder: str | Path,
    ends: list[str],
    profile: str,
    notebooks_dir: str | Path,
    kernel: str = "python3",
    console: Console | None = None,
    force: bool = False,
    wait: float = 0.0,
    every: str = "month",
) -> SeriesSummary:
    """Run every period end of a series that is not done yet (all with ``force``), then write the
    series page.

    Parameters
    ----------
    params : dict
        Complete parameters; ``as_of`` is set to each period end, ``previous_run`` to the latest
        finished run before it in the series.
    folder : str or Path
        The series folder (``reports/<series>``).
    ends : list of str
        :func:`period_ends`.
    profile : str
        The parameter profile's name: runs are ``<as_of>_<profile>``.
    notebooks_dir, kernel, console, force, wait
        As for :func:`~cp_toolkit.run.report.run_report` (``force`` also reruns periods done).
    every : str
        The period, for the console.

    Returns
    -------
    SeriesSummary

    Raises
    ------
    InterruptedRun
        On Ctrl-C or SIGTERM (after writing the page); the series stops.
    RunLocked
        When another run holds the series.
    """
    set_language(params.get("report_language", "en"))
    console = console or Console()
    folder = Path(folder).expanduser().absolute()
    notebooks = find_notebooks(notebooks_dir)
    flags: dict[str, list[str]] = {}
    summary = SeriesSummary(entries=[])
    console.line(t("run.series_console.start", n=len(ends), every=every, first=ends[0], last=ends[-1], folder=folder))
    with RunLock(folder, wait):
        for end in ends:
            target = folder / f"{end}_{profile}"
            period = {**params, "as_of": end, "previous_run": None}
            if not force and read_manifest(target).get("status") == "ok" and Workspace(target).latest()[0] == target:
                reasons = "; ".join(changed_since(target, period, notebooks))
                if reasons:
                    flags[end] = [t("run.series_flag.changed", reasons=reasons)]
                console.line(
                    t("run.series_console.skipped_changed", as_of=end, reasons=reasons)
                    if reasons
                    else t("run.series_console.skipped", as_of=end)
                )
                summary.skipped.append(end)
                continue
            console.line(t("run.series_console.period", as_of=end, out=target))
            summary.ran.append(end)
            try:
                run_report(period, target, notebooks_dir, kernel=kernel, console=console, force=force, wait=wait)
            except InterruptedRun:
                summary.failed.append(end)
                _write_page(folder, ends, profile, flags, params)
                raise
            except CPToolkitError as err:
                summary.failed.append(end)
                console.line(t("run.series_console.failed", as_of=end, error=err))
            _write_page(folder, ends, profile, flags, params)
        page = _write_page(folder, ends, profile, flags, params)
    summary.entries = series_entries(folder, ends, profile, flags, int(params.get("min_group_size", 1)))
    counts = pd.Series([e.status for e in summary.entries]).value_counts()
    console.line(
        t(
            "run.series_console.done",
            ok=int(counts.get("ok", 0)),
            failed=int(counts.get("failed", 0) + counts.get("interrupted", 0)),
            ran=len(summary.ran),
            skipped=len(summary.skipped),
            index=page,
        )
    )
    return summary
