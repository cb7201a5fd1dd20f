"""Dask clients for dataset generation: a new ``LocalCluster`` or an existing scheduler."""

from __future__ import annotations

import os
from contextlib import contextmanager

from defectnet.errors import DefectnetError


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None, *, processes: bool = True):
    """A Dask client: on ``scheduler`` if given, else on a new ``LocalCluster`` of ``workers`` processes.

    Workers get one thread each (the calculator is not thread-safe; Dask's defaults pin
    BLAS/OpenMP to one thread per worker). Yields ``(client, label)``.
    """
    import logging

    from distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as exc:
            raise DefectnetError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
        label = scheduler
    else:
        n = workers or os.cpu_count() or 1
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes, dashboard_address=":0",
                               silence_logs=logging.ERROR)
        client = Client(cluster)
        label = f"local:{n}" + ("" if processes else " (threads)")
    try:
        yield client, label
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextmanager
def existing_client(client):
    """An already running client, with a label for the run record."""
    yield client, f"client:{client.scheduler.address}"
