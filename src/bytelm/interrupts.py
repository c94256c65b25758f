"""SIGTERM and SIGHUP handled like Ctrl-C (SIGINT).

A scheduler, ``docker stop`` or a closed terminal ends a process with SIGTERM or SIGHUP, whose
default action kills it on the spot; inside ``termination_as_interrupt()`` they raise
``Terminated`` (a ``KeyboardInterrupt``) instead, so every cleanup written for Ctrl-C (temporary
folders removed, live learning's final checkpoint) runs for them too.
"""
import contextlib
import signal
import threading

SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


class Terminated(KeyboardInterrupt):
    """Raised by SIGTERM / SIGHUP inside ``termination_as_interrupt``; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum, frame):
    raise Terminated(signum)


def install(handler, signals=SIGNALS) -> dict:
    """Sets ``handler`` for ``signals`` (main thread only); returns the old handlers for
    ``restore``."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, handler) for s in signals}


def restore(old: dict) -> None:
    for s, h in old.items():
        signal.signal(s, h)


@contextlib.contextmanager
def termination_as_interrupt():
    """Inside the block SIGTERM and SIGHUP raise ``Terminated``."""
    old = install(_raise)
    try:
        yield
    finally:
        restore(old)
