"""SIGINT and SIGTERM during a search: an exception instead of a sudden death, so a worker can
give its running candidates back before it exits, and the command can say how far it got and
exit with 128 + the signal number instead of reporting success."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The search was stopped by a signal; ``exit_code`` is the shell's 128 + signal number."""

    def __init__(self, signum: int, message: str = ""):
        name = signal.Signals(signum).name
        super().__init__(message or f"interrupted ({name})")
        self.signum = signum
        self.exit_code = 128 + signum


def _in_import(frame) -> bool:
    """Is this stack importing a module? An import cut in half (torch registering its C++
    operators) leaves a module that crashes when it is touched again, even at exit."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


class Interrupts:
    """While installed (by :func:`handle_signals`), SIGINT and SIGTERM raise
    :class:`Interrupted`, except inside :meth:`deferred` or an import: then it is raised when
    the block or the import is done. After that first signal further ones are ignored: the
    process is already on its way out, and its cleanup (giving candidates back, committing a
    result) must not be cut in half."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._raised = False
        self._depth = 0
        self._watching = False

    def _handle(self, signum: int, frame) -> None:
        if self.signum is None:
            self.signum = signum
        if self._raised or self._depth > 0:
            return
        if _in_import(frame):
            self._after_import()
            return
        self._raised = True
        raise Interrupted(self.signum)

    def _after_import(self) -> None:
        """Signal this process again once its main thread is out of the import."""
        if self._watching:
            return
        self._watching = True
        main = threading.main_thread().ident

        def watch():
            while _in_import(sys._current_frames().get(main)):
                time.sleep(0.02)
            self._watching = False
            os.kill(os.getpid(), self.signum)

        threading.Thread(target=watch, daemon=True).start()

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """A block that a signal does not cut in half; it is raised when the block ends."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._depth == 0 and self.signum is not None and not self._raised:
            self._raised = True
            raise Interrupted(self.signum)


_active: Interrupts | None = None


@contextlib.contextmanager
def handle_signals() -> Iterator[Interrupts]:
    """Install the handlers (main thread only), or share the ones already installed: the
    command, the search and its worker loop see one state, so one signal is one exit."""
    global _active
    if _active is not None or threading.current_thread() is not threading.main_thread():
        yield _active or Interrupts()
        return
    _active = Interrupts()
    old = {s: signal.signal(s, _active._handle) for s in SIGNALS}
    try:
        yield _active
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _active = None


def exit_on_signal(fn: Callable) -> Callable:
    """For a command: SIGINT/SIGTERM from its start end in one line on stderr and exit code
    128 + the signal number, never in success or a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with handle_signals():
            try:
                return fn(*args, **kwargs)
            except Interrupted as e:
                msg = str(e) if ":" in str(e) else f"{e}; run the same command again to resume"
                print(f"hannah-hw: {msg}", file=sys.stderr, flush=True)
                sys.exit(e.exit_code)

    return wrapper
