"""Command line: ``cp-toolkit run [--params FILE] [--as-of DATE] [--out DIR] [--only STAGE | --from STAGE]
[--wait SECONDS] [--force] [--debug]``, a series ``cp-toolkit run --as-of FIRST..LAST --every month|week|quarter
[--series NAME]`` (:mod:`cp_toolkit.run.series`), ``cp-toolkit status [RUN]`` (:mod:`cp_toolkit.run.status`),
and
``cp-toolkit rekey AUDIENCE_CSV --ids FILE [--id-column NAME] --out OUT_CSV [--keep-pseudonym] [--force]``
(:mod:`cp_toolkit.rekey`: the audience joined to the key holder's own customer ids).

A user error (:class:`~cp_toolkit.errors.CPToolkitError`) ends the command with one line on
standard error and the error's exit status: 2 for parameters and the output folder, 1 for a
failed stage, 130 for Ctrl-C and 143 for SIGTERM, 75 when another run holds the folder; ``--debug``
prints the traceback as well.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import SERIES_PERIODS, load_params
from .errors import CPToolkitError, InterruptedRun, ParameterError
from .params import FILE_KEYS
from .text import available_languages, set_language, t

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
    """The command line: ``run`` and ``rekey``, with their options."""
    parser = argparse.ArgumentParser(prog="cp-toolkit", description="Customer-profiling reports from transactions.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute the six notebooks and write reports/<run>/")
    run.add_argument(
        "--params",
        type=Path,
        default=None,
        help="parameter YAML (default: params/default.yaml when present, else built-in defaults)",
    )
    run.add_argument(
        "--as-of",
        dest="as_of",
        default=None,
        help="last day of data to use, e.g. 2017-12-31; a range FIRST..LAST with --every runs a series",
    )
    run.add_argument(
        "--every",
        choices=SERIES_PERIODS,
        default=None,
        help="with --as-of FIRST..LAST: run each month (week, quarter) end in the range into one series folder",
    )
    run.add_argument(
        "--series",
        default=None,
        metavar="NAME",
        help="series folder under reports/ (default: <params file name>_<every>ly, e.g. default_monthly)",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=None,
        help="run folder (default: reports/<as_of>_<params file name>); for a series, the series folder",
    )
    run.add_argument("--notebooks", type=Path, default=None, help="folder with the notebooks (default: ./notebooks)")
    run.add_argument("--kernel", default="python3", help="Jupyter kernel name for papermill (default: python3)")
    stages = run.add_mutually_exclusive_group()
    stages.add_argument(
        "--only",
        default=None,
        metavar="STAGE",
        help="run this stage alone (e.g. 05_clv), reusing the earlier stages of the run in --out when their inputs, "
        "parameters and code are unchanged (refused otherwise)",
    )
    stages.add_argument(
        "--from",
        dest="start",
        default=None,
        metavar="STAGE",
        help="run this stage and the later ones (e.g. 03_segmentation), reusing the earlier ones as with --only",
    )
    run.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another run writing the same folder (default: refuse at once)",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="run in an output folder that holds files no run wrote (they are kept; a folder holding an input "
        "is refused all the same); in a series, also run again the periods already done",
    )
    run.add_argument("--debug", action="store_true", help="print the Python traceback of an error")
    status = sub.add_parser(
        "status", help="list a run's (or a series') stages, their state and why a stage would run again"
    )
    status.add_argument(
        "run",
        type=Path,
        nargs="?",
        default=None,
        metavar="RUN",
        help="a run or series folder (default: the latest folder under reports/)",
    )
    status.add_argument(
        "--params", type=Path, default=None, help="parameter YAML to compare with (default: the run's own)"
    )
    status.add_argument("--notebooks", type=Path, default=None, help="folder with the notebooks (default: ./notebooks)")
    status.add_argument("--debug", action="store_true", help="print the Python traceback of an error")
    _rekey_parser(sub)
    return parser


REKEY_DESCRIPTION = """\
Join a run's audience.csv (pseudonymized customer ids) to your own CRM customer ids.

For the holder of the pseudonymization key: rekey computes the pseudonym of each id in the ids
file with the key stage 01 used, keeps the audience rows of those pseudonyms, and writes them with
your id first, in a column named as in your file, then the audience columns. The key comes from
CP_TOOLKIT_PSEUDONYM_KEY, or from the file named by CP_TOOLKIT_PSEUDONYM_KEY_FILE, as for
'cp-toolkit run'; without one rekey refuses to run (a random key would match nothing).

Ids are read as stage 01 reads them: every CSV value as text, spaces around it removed, leading
zeros kept (00123 is not 123), a whole number written as a float (17850.0) read as 17850. Supply
the ids stage 01 read (with an identity map: its unified customer_id values). Blank ids are
skipped; repeated ids are kept once, with a warning. The console shows counts, never ids.

The output holds raw ids: it is refused inside the audience's run folder, inside any run folder
and inside the project's reports/ folder; an existing file is replaced only with --force. It is
written atomically (a temporary file, then renamed) and readable by its owner only."""


def _rekey_parser(sub: argparse._SubParsersAction) -> None:
    """The ``rekey`` subcommand and its options."""
    rekey = sub.add_parser(
        "rekey",
        help="join a run's audience.csv to your own customer ids (needs the pseudonymization key)",
        description=REKEY_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: cp-toolkit rekey reports/2017-12-31_default/data/audience.csv --ids ~/crm/customers.csv "
        "--id-column crm_id --out ~/crm/audience_2017-12.csv",
    )
    rekey.add_argument("audience", type=Path, metavar="AUDIENCE_CSV", help="<run>/data/audience.csv of stage 06")
    rekey.add_argument(
        "--ids", type=Path, required=True, metavar="IDS_FILE", help="your customer ids: CSV (.csv, .tsv) or Parquet"
    )
    rekey.add_argument(
        "--id-column",
        dest="id_column",
        default="customer_id",
        metavar="NAME",
        help="column of IDS_FILE holding the ids; the output's first column gets this name (default: customer_id)",
    )
    rekey.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="OUT_CSV",
        help="the CSV to write, outside run and reports folders",
    )
    rekey.add_argument(
        "--keep-pseudonym",
        dest="keep_pseudonym",
        action="store_true",
        help="keep the pseudonym as a column 'pseudonym' after your id (default: dropped)",
    )
    rekey.add_argument("--force", action="store_true", help="replace OUT_CSV when it exists")
    rekey.add_argument(
        "--language", choices=available_languages(), default="en", help="language of the console summary (default: en)"
    )
    rekey.add_argument("--debug", action="store_true", help="print the Python traceback of an error")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cp-toolkit`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return {"rekey": _rekey, "status": _status, "run": _run}[args.command](args)
    except CPToolkitError as err:
        if args.debug:
            traceback.print_exception(err)
        print(f"cp-toolkit: {err}", file=sys.stderr)
        for line in failure_summary(err):
            print(line, file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt as err:  # outside the stages, e.g. while loading the parameters
        stop = err.error(None) if hasattr(err, "error") else InterruptedRun("run interrupted by Ctrl-C (SIGINT)")
        print(f"cp-toolkit: {stop}", file=sys.stderr)
        return stop.exit_code


def failure_summary(err: CPToolkitError) -> list[str]:
    """The console lines after a failed run's error: where the failed run is kept, that the
    previous run is unchanged, and how to resume."""
    kept, page, resume = (getattr(err, name, None) for name in ("kept", "report", "resume_from"))
    if kept is None:
        return []
    lines = [t("run.console.kept_failed", folder=kept, page=page)]
    target = Path(kept).with_name(Path(kept).name.removesuffix(".failed"))
    if target.is_dir():
        lines.append(t("run.console.untouched", target=target))
    if resume:
        lines.append(t("run.console.resume", stage=resume))
    return lines


def _params(params_file: Path | None, as_of: str | None, runs_folder: Path) -> dict[str, Any]:
    """The checked parameters of a run, with paths made absolute (the notebooks run in their own folder)."""
    params = load_params(params_file, as_of=as_of, runs_folder=runs_folder)
    params["sources"] = absolute_source_paths(params["sources"], Path.cwd())
    for name in ("tag_definitions", "persona_playbook"):
        if params.get(name):
            params[name] = str(Path(params[name]).expanduser().resolve())
    return params


def _params_file(given: Path | None) -> Path | None:
    """``--params``, else ``params/default.yaml`` when present (else the built-in defaults)."""
    return given if given is not None or not Path("params/default.yaml").is_file() else Path("params/default.yaml")


def _run(args: argparse.Namespace) -> int:
    """``cp-toolkit run``: check the parameters, then run the stages into the output folder (or a
    series of runs, with ``--every``)."""
    params_file = _params_file(args.params)
    profile = params_file.stem if params_file else "default"
    if args.every or (args.as_of and ".." in args.as_of):
        return _run_series(args, params_file, profile)
    if args.series:
        raise ParameterError("--series names the folder of a series: give --as-of FIRST..LAST and --every too")
    runs_folder = args.out.parent if args.out else Path("reports")  # where a relative previous_run is
    params = _params(params_file, args.as_of, runs_folder)
    out = args.out or Path("reports") / f"{params['as_of']}_{profile}"
    print(t("run.console.start", profile=profile, as_of=params["as_of"], out=out), flush=True)
    from .run.report import run_report, select_stages  # papermill and nbconvert load only for a run

    run_report(
        params,
        out,
        args.notebooks or default_notebooks_dir(),
        kernel=args.kernel,
        force=args.force,
        stages=select_stages(args.only, args.start),
        wait=args.wait,
    )
    print(t("run.console.done", index=(out / "index.html").resolve()))
    return 0


def _run_series(args: argparse.Namespace, params_file: Path | None, profile: str) -> int:
    """``cp-toolkit run --as-of FIRST..LAST --every PERIOD``: every period end into one series folder."""
    from .run.series import period_ends, run_series

    if not args.every or not args.as_of or ".." not in args.as_of:
        raise ParameterError("a series needs --as-of FIRST..LAST and --every month|week|quarter together")
    if args.only or args.start:
        raise ParameterError("--only and --from apply to one run: give --as-of one date and --out its folder")
    first, _, last = args.as_of.partition("..")
    ends = period_ends(first, last, args.every)
    folder = args.out or Path("reports") / (args.series or f"{profile}_{args.every}ly")
    params = [_params(params_file, end, folder) for end in ends][-1]  # each period's as_of checked before any runs
    summary = run_series(
        params,
        folder,
        ends,
        profile,
        args.notebooks or default_notebooks_dir(),
        kernel=args.kernel,
        force=args.force,
        wait=args.wait,
        every=args.every,
    )
    return summary.exit_code


def _status(args: argparse.Namespace) -> int:
    """``cp-toolkit status [RUN]``: the state of a run's stages (or a series' periods) and why they would rerun."""
    from .run.status import describe, latest_folder

    folder = args.run or latest_folder(Path("reports"))
    params = _params(args.params, None, folder.parent) if args.params else None
    print("\n".join(describe(folder, params, args.notebooks or default_notebooks_dir())))
    return 0


def _rekey(args: argparse.Namespace) -> int:
    """``cp-toolkit rekey``: write the audience rows of the holder's ids, then print the counts."""
    from .rekey import rekey, summary_lines  # pandas loads only for this command

    set_language(args.language)
    counts = rekey(args.audience, args.ids, args.out, args.id_column, args.keep_pseudonym, args.force)
    print("\n".join(summary_lines(counts, args.ids)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
