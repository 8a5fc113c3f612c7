"""Atomic runs: a run works beside its target and appears under its name only when it succeeded.

A run of ``reports/<name>`` works in ``reports/.<name>.partial/``. When every stage has ended ok
the work folder takes the target's name (the previous run of that name is removed only then; files
no run wrote, kept with ``--force``, move into the new folder); when a stage fails or the run is
interrupted the work folder becomes ``reports/<name>.failed/`` and the previous run of that name
stays as it was. Paths recorded inside the pages and notebooks (papermill's ``run_dir``) are
rewritten from the work folder to where the run ends up.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .artifacts import ARTIFACTS, RunFolder
from .pipeline import PRODUCERS
from .safety import KERNEL_LOG, folder_error

__all__ = ["Workspace", "stage_files"]

#: Files of a run folder that may hold the work folder's path (text; artifacts in Parquet do not).
TEXT_SUFFIXES = (".html", ".ipynb", ".json", ".md", ".log")


def stage_files(stage: str) -> list[str]:
    """The files a stage leaves in a run folder, relative to it: its notebook, page, summary and
    artifacts."""
    data = [f"data/{ARTIFACTS[name]}" for name, producer in PRODUCERS.items() if producer == stage]
    return [f"{stage}.ipynb", f"{stage}.html", f"stages/{stage}.json", *data]


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

    def publish(self, keep: Iterable[str] = ()) -> Path:
        """Give the work folder the target's name; the previous run of that name and its failed
        run are removed, ``keep`` (files no run wrote, relative to the target) move in."""
        old = self.target.parent / f".{self.target.name}.old"
        try:
            _relocate(self.partial, self.target)
            shutil.rmtree(old, ignore_errors=True)
            if self.target.exists():
                os.replace(self.target, old)
            os.replace(self.partial, self.target)
            for rel in keep:
                (self.target / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(old / rel, self.target / rel)
            _keep_empty_folders(old, self.target)
            shutil.rmtree(old, ignore_errors=True)
            shutil.rmtree(self.failed, ignore_errors=True)
        except OSError as err:
            raise folder_error(self.target, err, "publish the run as") from err
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


def _keep_empty_folders(old: Path, new: Path) -> None:
    """Recreate in ``new`` the empty folders of ``old`` (a user's, never a run's)."""
    if old.is_dir():
        for folder in old.rglob("*"):
            if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
                (new / folder.relative_to(old)).mkdir(parents=True, exist_ok=True)


def _relocate(folder: Path, destination: Path) -> None:
    """Rewrite the path of ``folder`` to ``destination`` in its text files (papermill's
    ``run_dir`` in the executed notebooks, paths in messages), before the folder is renamed."""
    for path in folder.rglob("*"):
        _rewrite(path, str(folder), str(destination))


def _rewrite(path: Path, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in a text file of a run folder (other files are left alone)."""
    if (path.suffix in TEXT_SUFFIXES or path.name == KERNEL_LOG) and path.is_file() and not path.is_symlink():
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        if old in text:
            path.write_text(text.replace(old, new), encoding="utf-8", errors="surrogateescape")
