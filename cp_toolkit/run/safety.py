"""What a run may touch in its output folder.

A run deletes or overwrites only files it wrote itself: the files listed in the ``files`` of the
previous run's ``manifest.json``. It refuses an output folder that holds one of its own inputs,
always, and one that holds files it did not write unless ``--force`` is given (they are then
kept, never deleted). File-system errors on the output folder become an
:class:`~cp_toolkit.errors.OutputFolderError` that names the folder and says what to change.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OutputFolderError
from ..ingest.sources import resolve_paths, resolve_sources, source_list
from ..params import FILE_KEYS
from .artifacts import ARTIFACTS, staging_folders

__all__ = ["KERNEL_LOG", "FolderPlan", "folder_error", "input_files", "plan_output_folder", "run_outputs"]

#: At most this many file names are quoted in a message.
QUOTED = 5

#: The kernels' own log (their standard error, not the cells' output, which goes into the
#: notebooks), kept in the run folder instead of the console; removed at the end when empty.
KERNEL_LOG = "kernel.log"


def run_outputs(stages: Iterable[str]) -> set[str]:
    """Paths, relative to the run folder, of every file a run of ``stages`` may write."""
    out = {"index.html", "manifest.json", "params.json", KERNEL_LOG, *(f"data/{f}" for f in ARTIFACTS.values())}
    for stage in stages:
        out |= {f"{stage}.ipynb", f"{stage}.html", f"stages/{stage}.json"}
    return out


def input_files(params: Mapping[str, Any]) -> list[Path]:
    """Every local file the run reads: each source file (each file of a glob) and each
    ``exclude_customers_file``; bundled ``pkg://`` data is left out."""
    files: list[Path] = []
    for entry in resolve_sources(params["dataset"], params.get("sources")).values():
        for spec in source_list(entry):
            for key in FILE_KEYS:
                path = str(spec.get(key) or "")
                if path and not path.startswith("pkg://"):
                    files += resolve_paths(path)
    return files


def _quote(paths: Iterable[str]) -> str:
    """Up to :data:`QUOTED` names, then how many more."""
    paths = sorted(paths)
    more = f" and {len(paths) - QUOTED} more" if len(paths) > QUOTED else ""
    return ", ".join(paths[:QUOTED]) + more


def folder_error(folder: Path, err: OSError, doing: str) -> OutputFolderError:
    """An :class:`OutputFolderError` for ``err``, raised while ``doing`` something in ``folder``."""
    reason = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free some space or choose another --out"
    else:
        hint = "choose a folder you can write to with --out"
    return OutputFolderError(f"cannot {doing} {folder}: {reason}; {hint}")


@dataclass
class FolderPlan:
    """What a run does to its output folder before stage 01.

    Attributes
    ----------
    folder : Path
        The output folder (absolute).
    previous : list of str
        Files of the previous run found in the folder (relative paths): the run deletes them.
    staging : list of Path
        Staging folders a killed run left behind.
    foreign : list of str
        Files no run wrote (relative paths), accepted with ``--force``: they move into the new run.
    """

    folder: Path
    previous: list[str] = field(default_factory=list)
    staging: list[Path] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def files(self, outputs: set[str]) -> list[str]:
        """The ``files`` of the run's manifest: ``outputs`` the run may write, plus the previous run's
        files still in the folder."""
        return sorted(outputs | {f for f in self.previous if (self.folder / f).is_file()})


def previous_files(folder: Path, outputs: set[str]) -> set[str] | None:
    """The files an earlier run recorded in ``folder/manifest.json``; ``None`` when there is no
    manifest of this toolkit. A manifest written before runs listed their files (no ``files``
    key) counts for the file names a run writes (``outputs``)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or "stages" not in manifest or "parameters" not in manifest:
        return None
    files = manifest.get("files", sorted(outputs))
    return {str(f) for f in files if isinstance(f, str) and ".." not in Path(f).parts and not Path(f).is_absolute()}


def _walk(folder: Path) -> Iterator[str]:
    """Relative paths of the files under ``folder`` (symbolic links not followed)."""
    for root, dirs, files in os.walk(folder):
        base = Path(root).relative_to(folder)
        for name in sorted(files):
            yield (base / name).as_posix()
        dirs.sort()


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def plan_output_folder(out: str | Path, inputs: Iterable[Path], outputs: set[str], force: bool = False) -> FolderPlan:
    """Check that a run may use ``out`` and say which files it will delete.

    Parameters
    ----------
    out : str or Path
        The output folder (``--out``).
    inputs : iterable of Path
        The run's input files (:func:`input_files`).
    outputs : set of str
        The files the run may write (:func:`run_outputs`).
    force : bool
        Accept a folder that holds files no run wrote (they are kept).

    Returns
    -------
    FolderPlan

    Raises
    ------
    OutputFolderError
        When ``out`` is a file, holds one of the inputs, or (without ``force``) holds files no
        run of this toolkit wrote; the message names them.
    """
    folder = Path(out).expanduser().absolute()
    try:
        if folder.exists() and not folder.is_dir():
            raise OutputFolderError(f"--out {out} is a file, not a folder; give a folder for the run's reports")
        held = sorted(str(f) for f in inputs if _inside(f, folder))
        if held:
            raise OutputFolderError(
                f"output folder {out} holds input(s) of this run ({_quote(held)}); a run never writes beside "
                "its inputs: choose another --out (e.g. reports/<name>), also with --force"
            )
        if not folder.exists():
            return FolderPlan(folder)
        return _plan_existing(folder, outputs, force)
    except OutputFolderError:
        raise
    except OSError as err:
        raise folder_error(folder, err, "read the output folder") from err


def _plan_existing(folder: Path, outputs: set[str], force: bool) -> FolderPlan:
    """The plan for a folder that exists: its earlier run's files, and files no run wrote."""
    previous = previous_files(folder, outputs)
    ours = previous or set()
    staging = staging_folders(folder) if previous is not None else []
    foreign = []
    for rel in _walk(folder):
        mine = rel in ours and not (folder / rel).is_symlink()  # a run writes no links
        if not mine and rel.split("/", 1)[0] not in {s.name for s in staging}:
            foreign.append(rel)
    if foreign and not force:
        more = " and more" if len(foreign) > QUOTED else ""
        raise OutputFolderError(
            f"output folder {folder} holds file(s) that no run of cp-toolkit wrote ({_quote(foreign[:QUOTED])}"
            f"{more}); choose a new or empty --out, move them away, or pass --force to run beside them "
            "(they are kept)"
        )
    present = sorted(f for f in ours if (folder / f).is_file() and not (folder / f).is_symlink())
    in_the_way = sorted(f for f in outputs - ours if (folder / f).exists() or (folder / f).is_symlink())
    if in_the_way:  # --force keeps files beside the run, never files where the run writes
        raise OutputFolderError(
            f"output folder {folder} holds file(s) that no run of cp-toolkit wrote where this run writes "
            f"({_quote(in_the_way[:QUOTED])}); move them away or choose another --out (--force never overwrites them)"
        )
    return FolderPlan(folder, previous=present, staging=sorted(staging), foreign=foreign)
