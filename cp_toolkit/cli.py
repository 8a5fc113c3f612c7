"""Command line: ``cp-toolkit run [--params FILE] [--as-of DATE] [--out DIR] [--force] [--debug]``.

A user error (:class:`~cp_toolkit.errors.CPToolkitError`) ends the command with one line on
standard error and the error's exit status: 2 for parameters and the output folder, 1 for a
failed stage, 130 for Ctrl-C and 143 for SIGTERM; ``--debug`` prints the traceback as well.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import load_params
from .errors import CPToolkitError, InterruptedRun
from .params import FILE_KEYS
from .text import t

__all__ = ["main", "default_notebooks_dir", "absolute_source_paths"]


def default_notebooks_dir() -> Path:
    """``./notebooks`` when it exists, else the ``notebooks`` folder next to the package source."""
    here = Path.cwd() / "notebooks"
    return here if here.is_dir() else Path(__file__).resolve().parent.parent / "notebooks"


def _absolute(spec: dict[str, Any], base: Path) -> dict[str, Any]:
    """One source description with its relative file paths made absolute against ``base``."""
    spec = dict(spec)
    for key in FILE_KEYS:
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
    run.add_argument(
        "--force",
        action="store_true",
        help="run in an output folder that holds files no run wrote (they are kept; a folder holding an input "
        "is refused all the same)",
    )
    run.add_argument("--debug", action="store_true", help="print the Python traceback of an error")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cp-toolkit`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except CPToolkitError as err:
        if args.debug:
            traceback.print_exception(err)
        print(f"cp-toolkit: {err}", file=sys.stderr)
        report = getattr(err, "report", None)
        if report is not None and Path(report).is_file():
            print(t("run.console.partial", index=report), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt as err:  # outside the stages, e.g. while loading the parameters
        stop = err.error(None) if hasattr(err, "error") else InterruptedRun("run interrupted by Ctrl-C (SIGINT)")
        print(f"cp-toolkit: {stop}", file=sys.stderr)
        return stop.exit_code


def _run(args: argparse.Namespace) -> int:
    """``cp-toolkit run``: check the parameters, then run the six stages into the output folder."""
    params_file = args.params
    if params_file is None and Path("params/default.yaml").is_file():
        params_file = Path("params/default.yaml")
    runs_folder = args.out.parent if args.out else Path("reports")  # where a relative previous_run is
    params = load_params(params_file, as_of=args.as_of, runs_folder=runs_folder)
    params["sources"] = absolute_source_paths(params["sources"], Path.cwd())
    if params["tag_definitions"]:  # checked from here; the notebooks run in their own folder
        params["tag_definitions"] = str(Path(params["tag_definitions"]).expanduser().resolve())
    profile = params_file.stem if params_file else "default"
    out = args.out or Path("reports") / f"{params['as_of']}_{profile}"
    print(t("run.console.start", profile=profile, as_of=params["as_of"], out=out), flush=True)
    from .run.report import run_report  # papermill and nbconvert load only for a run

    run_report(params, out, args.notebooks or default_notebooks_dir(), kernel=args.kernel, force=args.force)
    print(t("run.console.done", index=(out / "index.html").resolve()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
