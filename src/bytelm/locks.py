"""Advisory locks (``flock`` on directories) for run directories and checkpoint swaps.

``RunLock``: the one process allowed to write a run directory holds a lock on the directory
itself for its lifetime; a second writer is refused at once with a one-line error.
``swap_lock``: the renames that replace a checkpoint run under an exclusive lock on the folder
that holds it, and readers take it shared, so a reader never sees files of two different
checkpoints. Locks live on the directories (no lock files are left anywhere) and the kernel drops
them when their process dies (kill -9 included), so a crash leaves no stale lock. Where ``fcntl``
is missing (Windows) the locks are no-ops.
"""
import contextlib
import errno
import os
from pathlib import Path

from bytelm.errors import UserError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


def _open_dir(path: Path) -> int | None:
    """A read-only descriptor of directory ``path`` to flock; None where that is not possible."""
    if fcntl is None:
        return None
    try:
        return os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return None


class RunLock:
    """Exclusive ownership of a run directory by this process (see the module docstring).

    ``acquire`` creates the directory if needed; ``release`` removes it again if this lock
    created it and nothing was written into it (a refused or failed start leaves no trace).
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir)
        self.fd: int | None = None
        self.created = False

    def acquire(self) -> None:
        """Takes the lock or raises UserError."""
        self.created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        fd = _open_dir(self.path)
        if fd is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise UserError(f"{self.path} is being written by another bytelm process; wait for it "
                            "to finish or choose another --out") from None
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None
            if self.created:
                with contextlib.suppress(OSError):
                    self.path.rmdir()  # only succeeds while empty

    __del__ = release


@contextlib.contextmanager
def swap_lock(folder: Path, shared: bool):
    """Holds a lock on ``folder``: exclusive while a checkpoint in it is swapped, shared while one
    is read."""
    fd = _open_dir(Path(folder))
    if fd is None:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
