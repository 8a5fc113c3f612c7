"""``cp-toolkit status [RUN]``: a run's stages, their state, and why each would run again.

For a run folder: its status, then each stage with its state in the latest attempt (the failed
run ``<name>.failed`` when it is newer than the published one) and whether it is up to date:
the reasons come from the stage fingerprints (:func:`~cp_toolkit.run.fingerprint.rerun_reasons`),
compared with the run's own parameters or with a parameter file. For a series folder: each
period with its status and what changed since it ran.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import CPToolkitError, ParameterError
from ..text import set_language, t
from .pipeline import STAGES
from .report import current_state, find_notebooks, read_manifest, stale_stages
from .workspace import Workspace

__all__ = ["describe", "latest_folder"]


def latest_folder(reports: Path) -> Path:
    """The most recently changed run or series folder under ``reports``.

    Raises
    ------
    ParameterError
        When there is none.
    """
    found = [p for p in reports.glob("*") if p.is_dir() and not p.name.startswith(".") and _kind(p)]
    if not found:
        raise ParameterError(f"no run under {reports}/; give the run folder: cp-toolkit status reports/<run>")
    return max(found, key=lambda p: p.stat().st_mtime)


def _kind(folder: Path) -> str | None:
    """ "run" (a run folder or its failed run), "series" (a folder of runs), else None."""
    if read_manifest(folder) or read_manifest(Workspace(folder).failed):
        return "run"
    if any(read_manifest(p) for p in folder.glob("*") if p.is_dir()):
        return "series"
    return None


def describe(folder: Path, params: dict[str, Any] | None, notebooks_dir: Path) -> list[str]:
    """The lines ``cp-toolkit status`` prints for ``folder``.

    Parameters
    ----------
    folder : Path
        A run folder (published or ``.failed``) or a series folder.
    params : dict, optional
        Parameters to compare with (default: each run's own, as recorded in its manifest).
    notebooks_dir : Path
        The notebooks a rerun would execute.

    Raises
    ------
    ParameterError
        When ``folder`` holds no run.
    """
    folder = Path(folder).absolute()
    if folder.name.endswith(".failed"):
        folder = folder.with_name(folder.name.removesuffix(".failed"))
    kind = _kind(folder)
    if kind is None:
        raise ParameterError(f"{folder} holds no run of cp-toolkit; give a run or series folder")
    notebooks = find_notebooks(notebooks_dir)
    if kind == "series":
        runs = sorted(
            {
                p.name.removesuffix(".failed")
                for p in folder.glob("*")
                if p.is_dir() and not p.name.startswith(".") and _kind(p)
            }
        )
        lines = [t("run.status_command.series", folder=folder, n=len(runs))]
        for name in runs:
            lines += ["", *_run_lines(folder / name, params, notebooks)]
        return lines
    return _run_lines(folder, params, notebooks)


def _run_lines(target: Path, params: dict[str, Any] | None, notebooks: dict[str, Path]) -> list[str]:
    """A run's heading and one line per stage."""
    found, latest = Workspace(target).latest()
    folder = found or target
    published = read_manifest(target)
    set_language((params or latest.get("parameters") or {}).get("report_language", "en"))
    lines = [
        t(
            "run.status_command.run",
            folder=folder,
            status=t(f"run.status.{latest.get('status', 'failed')}"),
            created=latest.get("created", "?"),
            as_of=(latest.get("parameters") or {}).get("as_of", "?"),
        )
    ]
    if folder != target and published:
        lines.append(t("run.status_command.published", folder=target, status=t(f"run.status.{published['status']}")))
    recorded = latest.get("parameters") or {}
    wanted = {**recorded, **(params or {}), "as_of": recorded.get("as_of"), "previous_run": None}  # as a rerun
    try:
        current = current_state(wanted, target, notebooks) if recorded else None
    except CPToolkitError as err:  # e.g. an input file gone since
        return [*lines, t("run.status_command.cannot_compare", error=err)]
    states = {s["stage"]: s for s in latest.get("stages", [])}
    stale = stale_stages(latest, current, list(STAGES)) if current else {}
    for stage in STAGES:
        entry = states.get(stage, {})
        state = entry.get("status", "not_run")
        reasons = stale.get(stage, [])
        verdict = (
            t("run.status_command.rerun", reasons="; ".join(reasons)) if reasons else t("run.status_command.up_to_date")
        )
        lines.append(t("run.status_command.stage", stage=stage, state=t(f"run.status.{state}"), verdict=verdict))
    return lines
