"""Running the HTTP server: in the foreground for ``workbench serve``, or in the background from a notebook.

:func:`run` is the command: it checks every file of the bundle first (a bad one stops it before
the port is opened), then runs uvicorn until SIGTERM or Ctrl-C, letting accepted requests finish.
:func:`serve` starts the same server on a thread of the current process and returns a
:class:`Server` handle with ``.url`` and ``.stop()``.

>>> server = serve(pl, warmup=[example])     # doctest: +SKIP
>>> server.url                               # doctest: +SKIP
'http://127.0.0.1:41237'
>>> server.stop()                            # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .._text import describe_error
from ..errors import LoadFailed
from .app import Service, Settings, build_app

__all__ = ["run", "serve", "Server", "LoadFailed"]

_CONFIG_ENV = "WORKBENCH_SERVE_CONFIG"


def run(bundle: str | os.PathLike[str], settings: Settings, *, host: str = "127.0.0.1", port: int = 8000,
        workers: int = 1, threads: int | None = None, log_level: str = "info") -> int:
    """Serve ``bundle`` until SIGTERM/SIGINT; returns the exit code (0 after a clean drain, 1 on failure).

    Raises :class:`workbench.bundle.IntegrityError` (naming the file) before opening the port when a
    file of the bundle is missing, edited or unexpected.
    """
    import uvicorn

    from ..bundle import snapshot as _snapshot

    _snapshot.read(Path(bundle))  # every file verified before the port opens
    grace = int(settings.timeout_s) + 5  # no accepted request can need longer than its own limit
    if workers > 1:
        return _run_workers(bundle, settings, host=host, port=port, workers=workers, threads=threads,
                            log_level=log_level, grace=grace)
    _set_threads(threads)
    failures: list[BaseException] = []
    server: Any = None

    def fatal(exc: BaseException) -> None:
        failures.append(exc)
        print(f"workbench serve: loading {bundle} failed: {describe_error(exc)}", file=sys.stderr, flush=True)
        server.should_exit = True

    service = Service(bundle, settings, on_fatal=fatal)
    config = uvicorn.Config(build_app(service), host=host, port=port, log_level=log_level,
                            timeout_graceful_shutdown=grace, lifespan="on")
    server = uvicorn.Server(config)
    return _run_foreground(server, failures)


def _run_foreground(server: Any, failures: list[BaseException]) -> int:
    # uvicorn re-raises the signal that stopped it once it has drained; after a drain, exit 0 instead.
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits with 3 when it cannot bind; 3 means a bad bundle here
        print(f"workbench serve: the server could not start (uvicorn exit {exc.code})", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if failures else 0


def _ignore(signum: int, frame: Any) -> None:
    return None


def _run_workers(bundle: str | os.PathLike[str], settings: Settings, *, host: str, port: int, workers: int,
                 threads: int | None, log_level: str, grace: int) -> int:
    """``workers`` processes sharing one socket (uvicorn's supervisor), metrics summed over them."""
    import uvicorn

    with tempfile.TemporaryDirectory(prefix="workbench-serve-") as shared:
        failed = Path(shared) / "failed"
        metrics = Path(shared) / "metrics"
        metrics.mkdir()
        os.environ[_CONFIG_ENV] = json.dumps({
            "bundle": str(Path(bundle).resolve()), "settings": asdict(settings), "failed": str(failed),
            "threads": threads if threads is not None else max(1, (os.cpu_count() or 1) // workers),
        })
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
        config = uvicorn.Config("workbench.serving.server:_worker_app", factory=True, host=host, port=port,
                                workers=workers, log_level=log_level, timeout_graceful_shutdown=grace,
                                lifespan="on", timeout_worker_healthcheck=120)  # importing torch can be slow
        previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            from uvicorn.supervisors import Multiprocess

            Multiprocess(config, sockets=[config.bind_socket()]).run()
        except SystemExit as exc:
            print(f"workbench serve: the server could not start (uvicorn exit {exc.code})", file=sys.stderr)
            return 1
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if failed.exists() else 0


def _worker_app() -> Any:
    """The app of one ``--workers`` process, configured from the environment the command set."""
    config = json.loads(os.environ[_CONFIG_ENV])
    _set_threads(config["threads"])

    def fatal(exc: BaseException) -> None:
        Path(config["failed"]).write_text(describe_error(exc))
        print(f"workbench serve: loading {config['bundle']} failed: {describe_error(exc)}", file=sys.stderr, flush=True)
        os.kill(os.getppid(), signal.SIGTERM)  # the supervisor stops every worker

    return build_app(Service(config["bundle"], Settings(**config["settings"]), on_fatal=fatal))


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


# --- in the background, from a notebook ------------------------------------------------------------


class Server:
    """A server running on a background thread of this process (see :func:`serve`).

    ``url`` is where it listens; ``stop()`` lets accepted requests finish, then stops it. Also a
    context manager: ``with workbench.serve(pl) as server: ...``.
    """

    def __init__(self, uvicorn_server: Any, service: Service, thread: threading.Thread, host: str):
        self._server, self.service, self._thread, self.host = uvicorn_server, service, thread, host
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """Stop accepting requests, answer the accepted ones, and stop (waits up to ``timeout`` s)."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = ("ready" if self.service.ready else "loading") if self.running else "stopped"
        return f"<workbench server {self.url} ({state})>"


def serve(pipeline_or_bundle: Any, *, host: str = "127.0.0.1", port: int = 0, max_batch: int = 32,
          max_wait_ms: float = 5.0, queue: int = 256, timeout_s: float = 30.0, as_type: str = "json",
          dtype: str | None = None, non_finite: str = "string", names: bool = True,
          warmup: list[Any] | None = None, wait: float | None = 60.0, log_level: str = "warning") -> Server:
    """Serve a pipeline (or the bundle at a path) over HTTP from a background thread; returns a :class:`Server`.

    The options are those of ``workbench serve`` (docs/serving.md); ``port=0`` picks a free port.
    ``warmup`` is a list of example inputs run once before the server reports ready. Unless
    ``wait=None``, waits up to ``wait`` seconds until the pipeline is loaded and warmed up, and raises
    :class:`LoadFailed` (after stopping the server) when that fails.

    >>> server = serve(pl, warmup=[[0.0] * 64])     # doctest: +SKIP
    >>> import httpx; httpx.post(server.url + "/predict", json=[0.0] * 64).json()   # doctest: +SKIP
    {'output': 3, 'label': 'three'}
    >>> server.stop()                                # doctest: +SKIP
    """
    import uvicorn

    settings = Settings(max_batch=max_batch, max_wait_ms=max_wait_ms, queue=queue, timeout_s=timeout_s,
                        as_type=as_type, dtype=dtype, non_finite=non_finite, names=names,
                        warmup=list(warmup or []))
    if isinstance(pipeline_or_bundle, (str, os.PathLike)):
        from ..bundle import snapshot as _snapshot

        _snapshot.read(Path(pipeline_or_bundle))  # every file verified before the server starts
    service = Service(pipeline_or_bundle, settings)
    config = uvicorn.Config(build_app(service), host=host, port=port, log_level=log_level,
                            timeout_graceful_shutdown=int(timeout_s) + 5, lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, name="workbench-server", daemon=True)
    handle = Server(uv, service, thread, host)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if not thread.is_alive():
            raise OSError(f"the server could not start on {host}:{port} (see the log above)")
        if time.monotonic() > deadline:
            handle.stop(5)
            raise TimeoutError("the server did not start within 30 s")
        time.sleep(0.01)
    handle.port = uv.servers[0].sockets[0].getsockname()[1]
    if wait is not None:
        if not service.loaded.wait(wait):
            handle.stop(5)
            raise TimeoutError(f"the pipeline was not loaded and warmed up within {wait:g} s")
        if service.failed is not None:
            handle.stop(5)
            raise LoadFailed(f"the pipeline failed to load or warm up: {describe_error(service.failed)}") \
                from service.failed
    return handle
