"""The errors a user of cp_toolkit can meet, under one base class.

Every error raised on user input is a :class:`CPToolkitError` whose message names what is
wrong (file, key, column, row) and what to change. The command line catches the base class,
prints the message in one line and exits with :attr:`CPToolkitError.exit_code`: 2 for input
that was refused before anything ran (parameters, the output folder), 1 for a run that started
and failed, 130 (143 for SIGTERM) for an interrupted run, 75 when another run holds the lock.

The kinds about input also subclass :class:`ValueError` (:class:`OSError` for the output
folder), so code that catches the built-in kinds keeps working. :class:`CPToolkitWarning`
marks the warnings that matter to the user: a run prints them on the console as stage notes.
"""

from __future__ import annotations

__all__ = [
    "CPToolkitError",
    "CPToolkitWarning",
    "DataError",
    "InterruptedRun",
    "OutputFolderError",
    "ParameterError",
    "RunLocked",
    "SchemaError",
    "SourceError",
    "StageFailed",
    "StaleUpstream",
]


class CPToolkitError(Exception):
    """Base class of every error cp_toolkit raises on user input."""

    #: Exit status of ``cp-toolkit`` when this error ends a run.
    exit_code = 1


class ParameterError(CPToolkitError, ValueError):
    """A parameter file or value that cannot be used as given (refused before any stage runs)."""

    exit_code = 2


class SourceError(CPToolkitError, ValueError):
    """A data source that cannot be read or mapped onto the canonical schema (stage 01)."""


class SchemaError(SourceError):
    """Canonical tables that break the schema contract (types, keys, value ranges)."""


class DataError(CPToolkitError, ValueError):
    """Data too small or too degenerate for a computation (one customer, no repeat buyers, ...)."""


class OutputFolderError(CPToolkitError, OSError):
    """An output folder that cannot be used: unwritable, full, invalid, or holding files the run did not write."""

    exit_code = 2


class StageFailed(CPToolkitError, RuntimeError):
    """A stage's notebook failed; the message names the stage, the statement and the error."""


class InterruptedRun(CPToolkitError):
    """A run stopped by Ctrl-C or SIGTERM."""

    exit_code = 130


class RunLocked(CPToolkitError):
    """Another run holds the lock of the output folder or series; the message names it."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class StaleUpstream(CPToolkitError):
    """``--only`` or ``--from`` would reuse a stage whose inputs, parameters or code have changed."""

    exit_code = 2


class CPToolkitWarning(UserWarning):
    """A warning the user must see (no pseudonymization key, a model fell back, ids that hardly
    match): shown in the stage's report and, through the stage summary's ``notes``, on the console."""
