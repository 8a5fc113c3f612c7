"""Which stage writes which artifact, and building missing upstream artifacts.

A notebook run alone (in JupyterLab, or by nbval) calls :func:`ensure` for its inputs: an
artifact already in the run folder is read; a missing one is built by the stage function
that writes it, with the parameters recorded in the run folder or else the defaults.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import pandas as pd

from ..config import DEFAULTS
from ..errors import ParameterError
from .artifacts import RunFolder

__all__ = ["STAGES", "PRODUCERS", "ensure", "stage", "start_stage", "stage_function", "transactions_up_to"]

#: The stages in run order (each has a notebook ``notebooks/<stage>.ipynb``).
STAGES: tuple[str, ...] = ("01_ingest", "02_eda", "03_segmentation", "04_prediction", "05_clv", "06_persona")

#: Artifact name -> stage that writes it.
PRODUCERS: dict[str, str] = {
    **dict.fromkeys(
        ["transactions", "orders", "customers", "products", "campaigns", "quarantine", "quality"], "01_ingest"
    ),
    **dict.fromkeys(["features", "segments", "tags", "category_spend"], "03_segmentation"),
    **dict.fromkeys(["predictions", "prediction_metrics", "category_recommendations"], "04_prediction"),
    **dict.fromkeys(["clv", "clv_model"], "05_clv"),
    **dict.fromkeys(["personas", "personas_md", "audience"], "06_persona"),
}
OPTIONAL = {"campaigns", "category_recommendations"}


def stage_function(stage: str) -> Callable[..., Any]:
    """The ``run_stage`` function of ``stage`` (e.g. ``"03_segmentation"``).

    The registry is written out here; the stages are imported on first use because each of them
    imports this module (for :func:`ensure` and :func:`stage`).
    """
    from .. import clv, eda, ingest, persona, predict, segment

    registry = {
        "01_ingest": ingest.run_stage,
        "02_eda": eda.run_stage,
        "03_segmentation": segment.run_stage,
        "04_prediction": predict.run_stage,
        "05_clv": clv.run_stage,
        "06_persona": persona.run_stage,
    }
    return registry[stage]


def ensure(run: RunFolder, name: str) -> Any:
    """Load artifact ``name`` from ``run``, building it (and what it needs) when missing.

    Parameters
    ----------
    run : RunFolder
        The run folder.
    name : str
        An artifact name, e.g. ``"transactions"``.

    Returns
    -------
    object
        The loaded artifact; ``None`` for an optional table the sources do not have.
    """
    if not run.has(name):
        stage = PRODUCERS[name]
        if run.stage_summary(stage) and name in OPTIONAL:
            return None
        fn = stage_function(stage)
        params = {**DEFAULTS, **run.params}
        accepted = inspect.signature(fn).parameters
        fn(run, **{k: v for k, v in params.items() if k in accepted})
        if not run.has(name) and name in OPTIONAL:
            return None
    return run.load(name)


def stage(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a ``run_stage(run, **params)`` function: before it runs, its parameters (with
    their defaults) are recorded in the run folder and the artifacts it makes stale are removed
    (:func:`start_stage`), so that no stage repeats its own signature to record it."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def run_stage(run: RunFolder, *args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(run, *args, **kwargs)
            bound.apply_defaults()
            params = {k: str(v) if k == "as_of" else v for k, v in bound.arguments.items() if k != "run"}
            start_stage(run, name, params)
            with run.noting(name):  # the toolkit's warnings become the stage's notes (console + report)
                return fn(run, *args, **kwargs)

        return run_stage

    return decorate


def start_stage(run: RunFolder, stage: str, params: dict[str, Any]) -> None:
    """Record a stage's parameters and remove what later stages built from its old output.

    A stage that writes artifacts makes every artifact of the later stages stale; they are
    deleted so that :func:`ensure` rebuilds them instead of reading outdated files.
    """
    run.record_params(params)
    if stage not in PRODUCERS.values():
        return
    for name, producer in PRODUCERS.items():
        if producer > stage:
            run.file(name).unlink(missing_ok=True)
    for later in (s for s in STAGES if s > stage):
        (run.stages / f"{later}.json").unlink(missing_ok=True)


def transactions_up_to(run: RunFolder, as_of: str, name: str = "transactions") -> Any:
    """The run's transactions (or ``name="orders"``: its orders) up to the end of ``as_of``, checked
    to reach it (an ``as_of`` before the ingest's leaves out the later rows).

    Raises
    ------
    ParameterError
        When the transactions were ingested with an earlier ``as_of``: later days would be missing.
    """
    tx = ensure(run, name)
    ingested = run.load("quality")["as_of"]
    if pd.Timestamp(as_of) > pd.Timestamp(ingested):
        raise ParameterError(
            f"as_of {as_of} is after {ingested}, the as_of the transactions in {run.path} were ingested with; "
            f"run 01_ingest with as_of {as_of} first"
        )
    end = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    return tx[tx["ts"] < end] if len(tx) and tx["ts"].max() >= end else tx
