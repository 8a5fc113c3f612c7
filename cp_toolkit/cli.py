"""Command line: ``cp-toolkit run [--params FILE] [--as-of DATE] [--out DIR]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import load_params
from .errors import CPToolkitError, ParameterError

__all__ = ["main", "default_notebooks_dir", "absolute_source_paths"]


def default_notebooks_dir() -> Path:
    """``./notebooks`` when it exists, else the ``notebooks`` folder next to the package source."""
    here = Path.cwd() / "notebooks"
    return here if here.is_dir() else Path(__file__).resolve().parent.parent / "notebooks"


def _absolute(spec: dict[str, Any], base: Path) -> dict[str, Any]:
    """One source description with its relative file paths made absolute against ``base``."""
    spec = dict(spec)
    for key in ("path", "exclude_customers_file"):
        path = str(spec.get(key, ""))
        if path and not path.startswith("pkg://") and not Path(path).expanduser().is_absolute():
            spec[key] = str((base / path).resolve())
    return spec


def absolute_source_paths(sources: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make relative source paths absolute against ``base`` (notebooks run in their own folder)."""
    return {
        table: [_absolute(s, base) for s in entry] if isinstance(entry, list) else _absolute(entry, base)
        for table, entry in (sources or {}).items()
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cp-toolkit", description="Customer-profiling reports from transactions.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute the six notebooks and write reports/<run>/")
    run.add_argument(
        "--params",
        type=Path,
        default=None,
        help="parameter YAML (default: params/default.yaml when present, else built-in defaults)",
    )
    run.add_argument("--as-of", dest="as_of", default=None, help="last day of data to use, e.g. 2017-12-31")
    run.add_argument("--out", type=Path, default=None, help="run folder (default: reports/<as_of>_<params file name>)")
    run.add_argument("--notebooks", type=Path, default=None, help="folder with the notebooks (default: ./notebooks)")
    run.add_argument("--kernel", default="python3", help="Jupyter kernel name for papermill (default: python3)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cp-toolkit`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    params_file = args.params
    if params_file is None and Path("params/default.yaml").is_file():
        params_file = Path("params/default.yaml")
    try:
        runs_folder = args.out.parent if args.out else Path("reports")  # where a relative previous_run is
        params = load_params(params_file, as_of=args.as_of, runs_folder=runs_folder)
    except ParameterError as err:
        print(f"cp-toolkit: {err}", file=sys.stderr)
        return 2
    params["sources"] = absolute_source_paths(params["sources"], Path.cwd())
    if params["tag_definitions"]:  # checked from here; the notebooks run in their own folder
        params["tag_definitions"] = str(Path(params["tag_definitions"]).expanduser().resolve())
    profile = params_file.stem if params_file else "default"
    out = args.out or Path("reports") / f"{params['as_of']}_{profile}"
    print(f"cp-toolkit: profile {profile}, as_of {params['as_of']}, writing {out}")
    from .run.report import run_report  # papermill and nbconvert load only for a run

    try:
        run_report(params, out, args.notebooks or default_notebooks_dir(), kernel=args.kernel)
    except (CPToolkitError, FileNotFoundError) as err:
        print(f"cp-toolkit: {err}", file=sys.stderr)
        print(f"cp-toolkit: partial report in {out}/index.html", file=sys.stderr)
        return 1
    print(f"cp-toolkit: done: {(out / 'index.html').resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
