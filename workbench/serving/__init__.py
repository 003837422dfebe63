"""Serving a pipeline over HTTP with dynamic batching (``workbench serve``; ``workbench.serve``).

Modules: :mod:`.runner` (running a group of inputs as one forward batch, each failing alone),
:mod:`.batcher` (forming batches from concurrent requests), :mod:`.metrics` (Prometheus),
:mod:`.app` (the Starlette application), :mod:`.server` (uvicorn in the foreground or in the
background). uvicorn, Starlette and prometheus_client (the ``serve`` extra) are imported only when
a server is started, never by ``import workbench``.

>>> server = workbench.serve(pl)    # doctest: +SKIP
>>> server.url, server.stop()       # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import Server

__all__ = ["serve"]


def serve(pipeline_or_bundle: Any, **options: Any) -> "Server":
    """Serve a pipeline, or the bundle at a path, over HTTP from a background thread.

    Returns a handle with ``.url`` and ``.stop()``; the options are those of
    :func:`workbench.serving.server.serve` (``host``, ``port=0``, ``max_batch``, ``max_wait_ms``,
    ``queue``, ``timeout_s``, ``warmup``...), the flags of ``workbench serve``.

    >>> server = serve(pl, warmup=[example])   # doctest: +SKIP
    >>> server.stop()                          # doctest: +SKIP
    """
    from .server import serve as _serve

    return _serve(pipeline_or_bundle, **options)
