"""Command line: ``cp-toolkit run [--params FILE] [--as-of DATE] [--out DIR] [--force] [--debug]``, and
``cp-toolkit rekey AUDIENCE_CSV --ids FILE [--id-column NAME] --out OUT_CSV [--keep-pseudonym] [--force]``
(:mod:`cp_toolkit.rekey`: the audience joined to the key holder's own customer ids).

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
        return _rekey(args) if args.command == "rekey" else _run(args)
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
    for name in ("tag_definitions", "persona_playbook"):  # checked from here; the notebooks run in their own folder
        if params.get(name):
            params[name] = str(Path(params[name]).expanduser().resolve())
    profile = params_file.stem if params_file else "default"
    out = args.out or Path("reports") / f"{params['as_of']}_{profile}"
    print(t("run.console.start", profile=profile, as_of=params["as_of"], out=out), flush=True)
    from .run.report import run_report  # papermill and nbconvert load only for a run

    run_report(params, out, args.notebooks or default_notebooks_dir(), kernel=args.kernel, force=args.force)
    print(t("run.console.done", index=(out / "index.html").resolve()))
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
