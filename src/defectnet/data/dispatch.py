"""The generation pipeline's side of Dask: submitting tasks and taking their results as they finish.

:class:`Dispatch` knows nothing of hosts, patches or the store: it submits a task with the
kind and the state it belongs to, gives each finished one back with that kind and state, and
says how many hosts the cluster can keep busy (:mod:`.generate` decides what to submit).
"""

from __future__ import annotations

import time

import numpy as np

from defectnet.data.tasks import one_line

#: Dask priorities of the three kinds of task: finish open hosts before starting new ones.
PRIORITY = {"pristine": 0, "patch": 10, "samples": 20}


class Dispatch:
    """The open tasks of one run on a Dask client, each with what its result is for.

    Parameters
    ----------
    client : distributed.Client
    """

    def __init__(self, client):
        from distributed import as_completed

        self.client = client
        self.tasks: dict = {}  # future key -> (kind, state, payload)
        # Results are fetched by as_completed's own loop: half the client CPU per task of fut.result().
        self.ac = as_completed(with_results=True, raise_errors=False)
        self._threads, self._threads_at = 1, -np.inf

    def submit(self, kind: str, state, fn, *args, payload=None):
        """Run ``fn(*args)`` on the cluster at the priority of ``kind``; its result comes back with ``state``."""
        fut = self.client.submit(fn, *args, priority=PRIORITY[kind], pure=False)
        self.tasks[fut.key] = (kind, state, payload)
        self.ac.add(fut)
        return fut

    def scatter(self, blob):
        """``blob`` on the cluster once, for the tasks that read it."""
        return self.client.scatter(blob, hash=False)

    def finished(self):
        """Each task as it finishes, until none is left (the consumer may submit more meanwhile).

        Yields
        ------
        tuple
            ``(kind, state, result, error, payload)``; ``error`` is ``("worker_died", text)`` when the
            worker died (KilledWorker) or the task was cancelled, and ``result`` is then None.
        """
        for fut, result in self.ac:
            kind, state, payload = self.tasks.pop(fut.key)
            error = None
            if fut.status != "finished":
                exc = result[1] if isinstance(result, tuple) and len(result) == 3 else result
                result, error = None, ("worker_died", f"{type(exc).__name__}: {one_line(exc)}")
            yield kind, state, result, error, payload
            fut.release()

    def max_open(self) -> int:
        """Hosts in progress at once: twice the worker threads, refreshed every 10 s (clusters scale)."""
        now = time.monotonic()
        if now - self._threads_at > 10.0:
            info = self.client.scheduler_info(n_workers=0)  # totals only: cheap with 1,000 workers
            self._threads, self._threads_at = int(info.get("total_threads") or 1), now
        return max(2, 2 * self._threads)
