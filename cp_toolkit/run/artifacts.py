"""The run folder: where each stage writes its artifacts and the next stage reads them.

``reports/<run>/data/`` holds the artifacts named in the contract of DESIGN.md; a stage
never reads another notebook's state, only these files.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import CPToolkitWarning

__all__ = ["ARTIFACTS", "STAGING", "RunFolder", "replacing", "staging_folders", "write_json", "write_text"]

#: Artifact name -> file name inside ``<run>/data``.
ARTIFACTS: dict[str, str] = {
    "transactions": "transactions.parquet",
    "orders": "orders.parquet",
    "customers": "customers.parquet",
    "products": "products.parquet",
    "campaigns": "campaigns.parquet",
    "quarantine": "quarantine.parquet",
    "quality": "quality.json",
    "features": "features.parquet",
    "segments": "segments.parquet",
    "tags": "tags.parquet",
    "category_spend": "category_spend.parquet",
    "predictions": "predictions.parquet",
    "prediction_metrics": "prediction_metrics.json",
    "category_recommendations": "category_recommendations.parquet",
    "clv": "clv.parquet",
    "clv_model": "clv_model.json",
    "personas": "personas.json",
    "personas_md": "personas.md",
    "audience": "audience.csv",
}

#: Names of the staging folders a stage may create inside the run folder, as ``.<name>-<random>/``
#: (:meth:`RunFolder.staging`); the runner removes any left behind by a killed kernel.
STAGING: tuple[str, ...] = ("ingest",)


def staging_folders(folder: Path) -> list[Path]:
    """The staging folders (``.<name>-*`` of :data:`STAGING`) in a run folder."""
    return sorted(p for name in STAGING for p in folder.glob(f".{name}-*") if p.is_dir())


def _json_default(obj: Any) -> Any:
    """Make numpy scalars and timestamps JSON serialisable."""
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (pd.Timestamp, Path)):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` to write to, renamed to ``path`` when the block ends
    without error and removed otherwise: a reader never sees a half-written file, and a run
    killed while writing leaves the former file (or none) in place.

    Yields
    ------
    Path
        ``.<name>.<pid>.tmp`` in the folder of ``path`` (created when missing).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically (:func:`replacing`)."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON, numpy scalars included, NaN and infinity as null,
    atomically (:func:`replacing`)."""
    write_text(path, json.dumps(_finite(obj), indent=2, default=_json_default, ensure_ascii=False, allow_nan=False))


def _finite(obj: Any) -> Any:
    """``obj`` with NaN and infinite numbers as ``None`` (strict JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        return None
    return obj


class RunFolder:
    """One run's folder: ``data/`` artifacts, ``stages/`` summaries and ``params.json``.

    Parameters
    ----------
    path : str or Path
        The run folder, e.g. ``reports/2017-12-31_default``. Created when missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()
        self.data = self.path / "data"
        self.stages = self.path / "stages"
        self.data.mkdir(parents=True, exist_ok=True)

    def file(self, name: str) -> Path:
        """Path of the artifact ``name`` (a key of :data:`ARTIFACTS`)."""
        if name not in ARTIFACTS:
            raise KeyError(f"unknown artifact {name!r}; known: {sorted(ARTIFACTS)}")
        return self.data / ARTIFACTS[name]

    def has(self, name: str) -> bool:
        """Whether the artifact ``name`` has been written."""
        return self.file(name).is_file()

    def save(self, name: str, obj: Any) -> Path:
        """Write a DataFrame (Parquet or CSV), a dict (JSON) or a str (text) artifact, atomically
        (:func:`replacing`)."""
        path = self.file(name)
        if isinstance(obj, pd.DataFrame):
            with replacing(path) as tmp:
                if path.suffix == ".csv":
                    obj.to_csv(tmp, index=False)
                else:
                    obj.to_parquet(tmp, index=False)
        elif isinstance(obj, str):
            write_text(path, obj)
        else:
            write_json(path, obj)
        return path

    def load(self, name: str) -> Any:
        """Read the artifact ``name``; a clear error says which stage writes it."""
        path = self.file(name)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run the stage that writes {name!r} first")
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix == ".csv":
            return pd.read_csv(path)
        if path.suffix == ".json":
            return json.loads(path.read_text(encoding="utf-8"))
        return path.read_text(encoding="utf-8")

    # -- parameters and stage summaries -------------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        """Parameters recorded in ``params.json`` (empty when none were recorded)."""
        path = self.path / "params.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def record_params(self, params: dict[str, Any]) -> None:
        """Merge ``params`` into ``params.json`` so upstream rebuilds use the same settings."""
        write_json(self.path / "params.json", {**self.params, **params})

    def record_stage(self, stage: str, headline: str, **details: Any) -> None:
        """Write ``stages/<stage>.json``: the one-line result shown in ``index.html``."""
        write_json(self.stages / f"{stage}.json", {"stage": stage, "headline": headline, **details})

    def stage_summary(self, stage: str) -> dict[str, Any]:
        """The summary a stage recorded, or an empty dict."""
        path = self.stages / f"{stage}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def add_notes(self, stage: str, notes: list[str]) -> None:
        """Append ``notes`` (sentences the user must see) to the summary of ``stage``, each once.

        The runner prints a stage's notes on the console after its line; the report shows them too.
        """
        summary = self.stage_summary(stage) or {"stage": stage}
        known = list(summary.get("notes", []))
        summary["notes"] = known + [n for n in dict.fromkeys(notes) if n not in known]
        write_json(self.stages / f"{stage}.json", summary)

    @contextmanager
    def noting(self, stage: str) -> Iterator[list[str]]:
        """Collect the :class:`~cp_toolkit.errors.CPToolkitWarning` raised inside the block as notes
        of ``stage`` (added to its summary when the block ends without error).

        The warnings are shown as before (in a notebook, as a note in the report); only the toolkit's
        own warning class becomes a note, never a third-party warning.

        Yields
        ------
        list of str
            The notes collected so far.
        """
        notes: list[str] = []
        with warnings.catch_warnings():
            show = warnings.showwarning

            def tee(message: Warning | str, category: type[Warning], *args: Any) -> None:
                if issubclass(category, CPToolkitWarning):
                    notes.append(str(message))
                show(message, category, *args)

            warnings.showwarning = tee
            yield notes
        if notes:
            self.add_notes(stage, notes)

    # -- staging folders -----------------------------------------------------------------
    @contextmanager
    def staging(self, name: str) -> Iterator[Path]:
        """A private scratch folder ``.<name>-<random>/`` inside the run folder (on the same disk as
        the artifacts, e.g. for a staging database), removed when the block ends in any way.

        Parameters
        ----------
        name : str
            One of :data:`STAGING`.
        """
        if name not in STAGING:
            raise KeyError(f"unknown staging folder {name!r}; known: {list(STAGING)}")
        with tempfile.TemporaryDirectory(dir=self.path, prefix=f".{name}-", ignore_cleanup_errors=True) as tmp:
            yield Path(tmp)

    def staging_left(self) -> list[Path]:
        """Staging folders left in the run folder (by a kernel killed before it could remove them)."""
        return staging_folders(self.path)

    def remove_staging(self) -> list[Path]:
        """Remove the staging folders left in the run folder; returns those removed."""
        left = self.staging_left()
        for folder in left:
            shutil.rmtree(folder, ignore_errors=True)
        return left
