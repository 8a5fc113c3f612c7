"""One run at a time per output folder (or series): a lock file beside the folder.

The lock is ``.<folder name>.lock`` in the folder's parent, held with ``flock`` for as long as the
run lasts; it records who holds it (pid, host, start time, command) so that a second run can
say who is in its way. The operating system releases a ``flock`` when its process dies, however
it dies: a lock file whose record is not empty but which nobody holds was left by a dead run, and
the next run takes it over (and says so). The file itself is never deleted (deleting a lock file
another process waits on would let two runs in), only emptied when its run ends.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from ..errors import OutputFolderError, RunLocked
from .safety import folder_error

__all__ = ["Holder", "RunLock", "lock_path"]

#: How often a waiting run tries the lock again, in seconds.
POLL = 0.5


def lock_path(folder: Path) -> Path:
    """The lock file of ``folder``: ``.<name>.lock`` beside it."""
    folder = Path(folder).absolute()
    return folder.parent / f".{folder.name}.lock"


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lock."""

    pid: int
    host: str
    started: str
    command: str

    @classmethod
    def me(cls) -> Holder:
        """This process."""
        return cls(
            pid=os.getpid(),
            host=socket.gethostname(),
            started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            command=" ".join(["cp-toolkit", *sys.argv[1:]]) if sys.argv else "cp-toolkit",
        )

    @classmethod
    def read(cls, text: str) -> Holder | None:
        """The holder recorded in a lock file's text; None when it is empty or unreadable."""
        try:
            return cls(**json.loads(text)) if text.strip() else None
        except (ValueError, TypeError):
            return None

    def describe(self) -> str:
        """``pid 123 on host h, started 2026-11-30T18:00:00+00:00``."""
        return f"pid {self.pid} on host {self.host}, started {self.started}"


class RunLock:
    """The lock of an output or series folder, as a context manager.

    Parameters
    ----------
    folder : Path
        The folder the run writes (a run's ``--out`` or a series folder).
    wait : float
        Seconds to wait for a lock another run holds before refusing (0: refuse at once).

    Attributes
    ----------
    path : Path
        The lock file.
    taken_over : Holder or None
        After entering: the dead run whose lock was taken over, if any.
    """

    def __init__(self, folder: Path, wait: float = 0.0) -> None:
        self.folder = Path(folder).absolute()
        self.path = lock_path(self.folder)
        self.wait = wait
        self.taken_over: Holder | None = None
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise folder_error(self.folder, err, "create the output folder") from err
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise self._refusal() from None
                time.sleep(POLL)
        self.taken_over = Holder.read(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
        self._fd = fd
        self._record(json.dumps(asdict(Holder.me())))
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        if self._fd is None:
            return
        try:
            self._record("")
        except OutputFolderError:
            pass  # the lock is released all the same; a record left behind reads as a dead run's
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def _record(self, text: str) -> None:
        """Replace the lock file's record (the lock is held)."""
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, text.encode("utf-8"), 0)
        except OSError as err:
            raise folder_error(self.path.parent, err, "write the lock file in") from err

    def _refusal(self) -> RunLocked:
        """The error of a lock another run holds, naming the holder."""
        try:
            holder = Holder.read(self.path.read_text(encoding="utf-8"))
        except OSError:
            holder = None
        who = f"another run ({holder.describe()}: {holder.command})" if holder else "another run"
        waited = f" after waiting {self.wait:.0f} s" if self.wait else ""
        return RunLocked(
            f"{self.folder} is being written by {who}{waited}; wait for it to end, or pass --wait SECONDS to "
            f"wait for it (lock file {self.path})"
        )
