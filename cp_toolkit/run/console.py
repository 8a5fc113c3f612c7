"""What a run prints: one line per stage, and the notes the user must see.

On a terminal the stage's line is papermill's progress bar over the notebook's cells, rewritten
in place and replaced by the result line when the stage ends; elsewhere (a log file, a pipe)
only the result line is written. A stage's notes (``notes`` in its summary, e.g. a missing
pseudonymization key or a model that fell back) follow its line.
"""

from __future__ import annotations

import shutil
import sys
from typing import Any, TextIO

from ..text import t

__all__ = ["Console"]

#: How papermill's tqdm bar draws a stage: its label, the bar, cells done and the time so far.
BAR_FORMAT = "{desc} {bar:24} {n_fmt}/{total_fmt} cells {elapsed}"


class Console:
    """The run's console output.

    Parameters
    ----------
    stream : text stream, optional
        Where lines go; default ``sys.stdout`` at the time of each write.
    tty : bool, optional
        Whether to draw a progress bar; default: whether ``stream`` is a terminal.
    """

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self._stream = stream
        self._tty = tty

    @property
    def stream(self) -> TextIO:
        """The stream lines are written to."""
        return self._stream if self._stream is not None else sys.stdout

    @property
    def tty(self) -> bool:
        """Whether the stream is a terminal (progress bars are drawn)."""
        if self._tty is not None:
            return self._tty
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def line(self, text: str) -> None:
        """Write one line."""
        self.stream.write(text + "\n")
        self.stream.flush()

    def progress_bar(self, label: str) -> bool | dict[str, Any]:
        """papermill's ``progress_bar`` argument for a stage: a one-line tqdm bar labelled ``label``
        that clears itself at the end (on a terminal), else ``False``."""
        if not self.tty:
            return False
        size = shutil.get_terminal_size((100, 24))  # the fallback where a terminal reports no size
        return {
            "desc": label,
            "file": self.stream,
            "leave": False,
            "bar_format": BAR_FORMAT,
            "ncols": size.columns,
            "nrows": size.lines,  # tqdm hides a bar below the last row; a terminal of size 0 has none
        }

    def stage(self, label: str, status: str, seconds: float, headline: str, notes: list[str] | None = None) -> None:
        """The line of a finished stage, then its notes, one line each."""
        self.line(
            t(
                "run.console.stage", label=label, status=t(f"run.status.{status}"), seconds=seconds, headline=headline
            ).rstrip()
        )
        for note in notes or []:
            self.line(t("run.console.note", note=note))
