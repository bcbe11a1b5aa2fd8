"""A single background thread for inference and saving; results are collected on the GUI thread by ``poll``.

The GUI thread submits one job at a time (the controller keeps at most one in flight and queues
later commands itself). Tk is never touched from the worker: results wait in a queue until the Tk
thread calls :meth:`InferenceWorker.poll` from an ``after`` loop.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, Optional

logger = logging.getLogger(__name__)


class InferenceWorker:
    """Runs ``fn()`` on a daemon thread and hands ``(result, seconds)`` or the exception back in ``poll``."""

    def __init__(self, name: str = 'isegm-inference'):
        self._jobs: 'queue.Queue[Optional[tuple]]' = queue.Queue()
        self._results: 'queue.Queue[tuple]' = queue.Queue()
        self._busy = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        """True from :meth:`submit` until its callback has run in :meth:`poll`."""
        return self._busy.is_set()

    def submit(self, fn: Callable[[], Any], on_done: Callable[[Any, float], None],
               on_error: Callable[[BaseException], None]) -> None:
        if self._busy.is_set():
            raise RuntimeError('a job is already running; wait for its result before submitting another')
        self._busy.set()
        self._jobs.put((fn, on_done, on_error))

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, on_done, on_error = job
            start = time.perf_counter()
            try:
                result = fn()
            except BaseException as exc:  # noqa: BLE001 - every failure goes back to the GUI
                # the GUI shows the message in a dialog; the traceback only at debug level
                logger.error('background job failed: %s: %s', type(exc).__name__, exc)
                logger.debug('background job traceback', exc_info=True)
                self._results.put((on_error, (exc,)))
            else:
                self._results.put((on_done, (result, time.perf_counter() - start)))

    def poll(self) -> bool:
        """Run the callbacks of finished jobs (call from the GUI thread). Returns True if one ran."""
        ran = False
        while True:
            try:
                callback, args = self._results.get_nowait()
            except queue.Empty:
                return ran
            self._busy.clear()
            ran = True
            callback(*args)

    def close(self, timeout: float = 2.0) -> None:
        self._jobs.put(None)
        self._thread.join(timeout)
