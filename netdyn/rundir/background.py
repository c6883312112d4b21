"""A pack's file writes (trajectory rows, curves, checkpoints) on one background thread, in the order they were
queued, so the device trains on while the host serialises, writes and fsyncs.

Each write still happens, in the same order as in a trainer that writes in place; only later. A kill
therefore leaves a prefix of that sequence done, as a kill of the in-place trainer can, and a resumed run
ends with the same bytes. A failed write ends the sequence too: the writes queued after it are dropped
(a later row of the same run would otherwise land in the failed one's place), and the failure is raised in
the training thread at its next queued write or at :meth:`close`, with its own message (run and file). At
most ``max_pending`` writes wait at a time: the trainer blocks beyond that, so a slow disk bounds host
memory instead of growing the queue.
"""

from __future__ import annotations

import collections
import logging
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger("netdyn.rundir")


class BackgroundWrites:
    """``submit(fn, *args)`` runs ``fn(*args)`` on the writer thread (or at once when not `enabled`)."""

    def __init__(self, enabled: bool = True, max_pending: int = 64):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="netdyn-writes") if enabled else None
        self._pending: collections.deque[Future] = collections.deque()
        self.max_pending = max_pending
        self._failed = False  # set on the writer thread by the first failed write; later writes are dropped

    def _run(self, fn, args, kwargs) -> None:
        if self._failed:
            return
        try:
            fn(*args, **kwargs)
        except BaseException:
            self._failed = True
            raise

    def submit(self, fn, *args, **kwargs) -> None:
        if self._pool is None:
            fn(*args, **kwargs)
            return
        self._pending.append(self._pool.submit(self._run, fn, args, kwargs))
        while self._pending and (self._pending[0].done() or len(self._pending) > self.max_pending):
            self._pending.popleft().result()  # a failed write raises here, in the training thread

    def drain(self) -> None:
        """Wait until every queued write is done; raise the first that failed."""
        while self._pending:
            self._pending.popleft().result()

    def close(self, raise_errors: bool = True) -> None:
        """Finish the queued writes and stop the thread. ``raise_errors=False`` (training is already failing
        with another error): a failed write is logged, not raised, so that error is the one reported."""
        try:
            self.drain()
        except Exception:
            if raise_errors:
                raise
            log.exception("a queued write failed while training stopped; the writes after it were dropped")
            self._pending.clear()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
