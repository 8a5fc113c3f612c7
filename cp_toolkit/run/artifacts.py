"""The run folder: where each stage writes its artifacts and the next stage reads them.

``reports/<run>/data/`` holds the artifacts named in the contract of DESIGN.md; a stage
never reads another notebook's state, only these files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ARTIFACTS", "RunFolder", "write_json"]

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
    "clv": "clv.parquet",
    "clv_model": "clv_model.json",
    "personas": "personas.json",
    "personas_md": "personas.md",
    "audience": "audience.csv",
}


def _json_default(obj: Any) -> Any:
    """Make numpy scalars and timestamps JSON serialisable."""
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (pd.Timestamp, Path)):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON, numpy scalars included, NaN and infinity as null."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_finite(obj), indent=2, default=_json_default, ensure_ascii=False, allow_nan=False)
    path.write_text(text, encoding="utf-8")


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
        """Write a DataFrame (Parquet or CSV), a dict (JSON) or a str (text) artifact."""
        path = self.file(name)
        if isinstance(obj, pd.DataFrame):
            if path.suffix == ".csv":
                obj.to_csv(path, index=False)
            else:
                obj.to_parquet(path, index=False)
        elif isinstance(obj, str):
            path.write_text(obj, encoding="utf-8")
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
