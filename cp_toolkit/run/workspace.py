"""Atomic runs: a run works beside its target and appears under its name only when it succeeded.

A run of ``reports/<name>`` works in ``reports/.<name>.partial/``. When every stage has ended ok
the work folder takes the target's name (the previous run of that name is removed only then; files
no run wrote move into the new folder); when a stage fails or the run is
interrupted the work folder becomes ``reports/<name>.failed/`` and the previous run of that name
stays as it was. Paths recorded inside the pages and notebooks (papermill's ``run_dir``) are
rewritten from the work folder to where the run ends up.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .artifacts import ARTIFACTS, RunFolder
from .pipeline import PRODUCERS
from .safety import KERNEL_LOG, folder_error

__all__ = ["Workspace", "read_manifest", "stage_files"]

#: Files of a run folder that may hold the work folder's path (text; artifacts in Parquet do not).
TEXT_SUFFIXES = (".html", ".ipynb", ".json", ".md", ".log")


def stage_files(stage: str) -> list[str]:
    """The files a stage leaves in a run folder, relative to it: its notebook, page, summary and
    artifacts."""
    data = [f"data/{ARTIFACTS[name]}" for name, producer in PRODUCERS.items() if producer == stage]
    return [f"{stage}.ipynb", f"{stage}.html", f"stages/{stage}.json", *data]


def read_manifest(folder: Path) -> dict[str, Any]:
    """A run folder's ``manifest.json``; empty when it has none (or an unreadable one)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


@dataclass(frozen=True)
class Workspace:
    """The work, failed and published folders of one run target.

    Parameters
    ----------
    target : Path
        The run folder the run publishes (``--out``), absolute.
    """

    target: Path

    @property
    def partial(self) -> Path:
        """The folder the run works in: ``.<name>.partial`` beside the target."""
        return self.target.parent / f".{self.target.name}.partial"

    @property
    def failed(self) -> Path:
        """Where a failed or interrupted run is kept: ``<name>.failed`` beside the target."""
        return self.target.parent / f"{self.target.name}.failed"

    def latest(self) -> tuple[Path | None, dict[str, Any]]:
        """The target's latest attempt and its manifest: the failed run when it is newer than the
        published one; ``(None, {})`` when there is neither."""
        published, failed = read_manifest(self.target), read_manifest(self.failed)
        if failed and failed.get("created", "") >= published.get("created", ""):
            return self.failed, failed
        return (self.target, published) if published else (None, {})

    def open(self) -> RunFolder:
        """A fresh work folder (one left by a run that died is removed: the lock is held)."""
        try:
            shutil.rmtree(self.partial, ignore_errors=True)
            self.partial.mkdir(parents=True)
            return RunFolder(self.partial)
        except OSError as err:
            raise folder_error(self.target.parent, err, "create the run's work folder in") from err

    def copy_in(self, source: Path, files: Iterable[str]) -> list[str]:
        """Copy ``files`` (relative paths) of an earlier run folder into the work folder, the path
        of ``source`` in their text rewritten to the work folder's; returns those copied (a stage
        without an optional artifact has fewer)."""
        copied = []
        for rel in files:
            if (source / rel).is_file():
                (self.partial / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / rel, self.partial / rel)
                _rewrite(self.partial / rel, str(source), str(self.partial))
                copied.append(rel)
        return copied

    @property
    def old(self) -> Path:
        """Where the previous run waits while the work folder takes its name: ``.<name>.old``."""
        return self.target.parent / f".{self.target.name}.old"

    def recover(self) -> bool:
        """Put back a previous run that a publish cut short (a killed process) left as
        ``.<name>.old`` with no run under the target's name; whether there was one."""
        if self.old.is_dir() and not self.target.exists():
            try:
                os.replace(self.old, self.target)
            except OSError as err:
                raise folder_error(self.target, err, "put back the previous run as") from err
            return True
        return False

    def publish(self, ours: set[str]) -> Path:
        """Give the work folder the target's name. The previous run of that name (``ours``: the
        files its manifest lists) and the failed run are removed; every other file in the target,
        however it got there, moves into the new run. When the renaming fails or is interrupted,
        the previous run is put back and the error raised (the work folder stays)."""
        _relocate(self.partial, self.target)
        shutil.rmtree(self.old, ignore_errors=True)
        moved = False
        try:
            if self.target.exists():
                os.replace(self.target, self.old)
                moved = True
            os.replace(self.partial, self.target)
        except BaseException as err:  # Ctrl-C or SIGTERM too: never leave the target without a run
            if moved and not self.target.exists():
                os.replace(self.old, self.target)
            _rewrite_all(self.partial, str(self.target), str(self.partial))
            if isinstance(err, OSError):
                raise folder_error(self.target, err, "publish the run as") from err
            raise
        if moved:
            _move_others(self.old, self.target, ours)
        shutil.rmtree(self.failed, ignore_errors=True)
        return self.target

    def keep_failed(self) -> Path:
        """Keep the work folder as ``<name>.failed`` (replacing an earlier failed run)."""
        try:
            _relocate(self.partial, self.failed)
            shutil.rmtree(self.failed, ignore_errors=True)
            os.replace(self.partial, self.failed)
        except OSError as err:
            raise folder_error(self.failed, err, "keep the failed run as") from err
        return self.failed

    def discard(self) -> None:
        """Remove the work folder (a run that ended before its first stage)."""
        shutil.rmtree(self.partial, ignore_errors=True)


def _move_others(old: Path, new: Path, ours: set[str]) -> None:
    """Move into ``new`` everything in ``old`` that is not one of ``ours`` (files, links, empty
    folders a user put there), then remove ``old``; a name the new run also has gets ``.kept``.
    ``old`` stays when something could not be moved, so that nothing is lost."""
    for root, dirs, files in os.walk(old):
        base = Path(root).relative_to(old)
        links = [d for d in dirs if (Path(root) / d).is_symlink()]
        empty = [d for d in dirs if d not in links and not any((Path(root) / d).iterdir())]
        for name in [*files, *links, *empty]:
            rel = (base / name).as_posix()
            if rel in ours:
                continue
            dest = new / rel
            dest = dest.with_name(dest.name + ".kept") if dest.exists() or dest.is_symlink() else dest
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(Path(root) / name, dest)
            except OSError:
                continue
    if not any(p.is_file() or p.is_symlink() for p in old.rglob("*") if p.relative_to(old).as_posix() not in ours):
        shutil.rmtree(old, ignore_errors=True)


def _relocate(folder: Path, destination: Path) -> None:
    """Rewrite the path of ``folder`` to ``destination`` in its text files (papermill's
    ``run_dir`` in the executed notebooks, paths in messages), before the folder is renamed."""
    _rewrite_all(folder, str(folder), str(destination))


def _rewrite_all(folder: Path, old: str, new: str) -> None:
    """:func:`_rewrite` every file of ``folder``."""
    for path in folder.rglob("*"):
        _rewrite(path, old, new)


def _rewrite(path: Path, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in a text file of a run folder (other files are left alone)."""
    if (path.suffix in TEXT_SUFFIXES or path.name == KERNEL_LOG) and path.is_file() and not path.is_symlink():
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        if old in text:
            path.write_text(text.replace(old, new), encoding="utf-8", errors="surrogateescape")
