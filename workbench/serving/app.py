"""The HTTP application: a Starlette app serving one pipeline (``POST /predict`` and the status endpoints).

Endpoints:

- ``POST /predict``: the body is one JSON input, or ``{"inputs": [...]}`` for several. The answer is
  ``{"output": ...}`` or ``{"outputs": [...]}`` in the JSON encoding of ``workbench predict``, plus
  ``"label"``/``"labels"`` when the pipeline carries class names and an output is a class index.
- ``GET /health``: the process is up. ``GET /ready``: the pipeline is loaded and warmed up (503 before).
- ``GET /info``: the bundle's manifest, the pipeline's structure, annotations and the serving settings
  (read at start; nothing is executed to answer it).
- ``GET /metrics``: Prometheus text format. ``GET /openapi.json``: the OpenAPI schema.

Errors are JSON objects ``{"error": message, "type": ..., "step": ..., "stage": ..., "input": ...}``:
400 for a body that is not JSON, 422 for an input the pipeline rejects (naming the step), 500 for an
output JSON cannot hold, 503 with ``Retry-After`` while loading or when the queue is full, 504 past
the time limit.

>>> app = build_app("model.wb", Settings(max_batch=16))   # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._text import describe_error
from ..annotations import class_name, output_class
from .batcher import Batcher, QueueFull
from .metrics import Metrics

if TYPE_CHECKING:
    from .runner import Result

__all__ = ["Settings", "Service", "build_app", "OPENAPI", "parse_request", "encode_results", "respond"]


@dataclass
class Settings:
    """How a pipeline is served; the CLI flags of ``workbench serve`` (see docs/serving.md)."""

    max_batch: int = 32
    max_wait_ms: float = 5.0
    queue: int = 256
    timeout_s: float = 30.0
    as_type: str = "json"
    dtype: str | None = None
    non_finite: str = "string"
    names: bool = True
    warmup: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("max_batch", "queue"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")
        if not self.max_wait_ms >= 0:
            raise ValueError(f"max_wait_ms must be 0 or more, not {self.max_wait_ms!r}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be more than 0, not {self.timeout_s!r}")
        from ..predict import AS_TYPE_CHOICES, NON_FINITE_CHOICES

        if self.as_type not in AS_TYPE_CHOICES:
            raise ValueError(f"as_type must be one of {', '.join(AS_TYPE_CHOICES)}, not {self.as_type!r}")
        if self.non_finite not in NON_FINITE_CHOICES:
            raise ValueError(f"non_finite must be one of {', '.join(NON_FINITE_CHOICES)}, not {self.non_finite!r}")


class _Answer:
    """One input's answer, encoded on the pipeline thread: its JSON text, or an error and its status."""

    __slots__ = ("text", "label", "error", "status")

    def __init__(self, text: str | None = None, label: str | None = None,
                 error: dict[str, Any] | None = None, status: int = 200):
        self.text, self.label, self.error, self.status = text, label, error, status


class Service:
    """One served pipeline: loading and warm-up, the batcher, the metrics and the request handlers.

    ``source`` is a pipeline or the path of a bundle (loaded on the pipeline thread after the
    server started, so ``/health`` answers while it loads). ``on_fatal(exc)`` is called when
    loading or warm-up fails; the server should then stop.
    """

    def __init__(self, source: Any, settings: Settings, *,
                 on_fatal: Callable[[BaseException], None] | None = None):
        self.settings = settings
        self.on_fatal = on_fatal
        self.metrics = Metrics()
        self.bundle: Path | None = None
        self.manifest: dict[str, Any] | None = None
        self.pipeline: Any = None
        if isinstance(source, (str, os.PathLike)):
            from ..bundle import snapshot as _snapshot

            self.bundle = Path(source)
            self.manifest = _snapshot.read(self.bundle, verify=False).manifest
        else:
            self.pipeline = source
        self.runner: Any = None
        self.ready = False
        self.failed: BaseException | None = None
        self.loaded = threading.Event()
        self.batcher = Batcher(self._run, max_batch=settings.max_batch, max_wait_s=settings.max_wait_ms / 1000,
                               queue_limit=settings.queue, on_batch=self._batch_done,
                               on_depth=self.metrics.queue_depth.set, initializer=_torch_threads_like_this_one())
        self._info: dict[str, Any] | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.batcher.start()
        loading = asyncio.get_running_loop().run_in_executor(self.batcher.executor, self._load)
        loading.add_done_callback(self._loading_done)
        try:
            yield
        finally:
            await self.batcher.stop()

    def _load(self) -> None:
        """On the pipeline thread: load the bundle, prepare the runner, run the warm-up inputs."""
        from .runner import BatchRunner

        if self.pipeline is None:
            from ..bundle import load

            with contextlib.redirect_stdout(sys.stderr):
                self.pipeline = load(self.bundle)
        self.runner = BatchRunner(self.pipeline)
        if not self.runner.batchable:
            self.batcher.max_batch = 1  # all forward stage: each input runs alone, through infer_apply
        self._info = self._build_info()
        warmup = self._convert(self.settings.warmup) if self.settings.warmup else []
        for i, x in enumerate(warmup, 1):
            result = self.runner.run([x])[0]
            if not result.ok:
                raise RuntimeError(f"warm-up input {i} failed: {describe_error(result.error)}") from result.error
        if warmup and self.runner.batchable and self.settings.max_batch > 1:
            # The batched path too, at full size, so the first loaded batch does not pay for it.
            group = (warmup * self.settings.max_batch)[: self.settings.max_batch]
            for i, result in enumerate(self.runner.run(group)):
                if not result.ok:
                    raise RuntimeError(f"warm-up input {i % len(warmup) + 1} failed in a batch of {len(group)}: "
                                       f"{describe_error(result.error)}") from result.error

    def _loading_done(self, future: "asyncio.Future[None]") -> None:
        exc = future.exception() if not future.cancelled() else None
        if exc is None and not future.cancelled():
            self.ready = True
        else:
            self.failed = exc
            if self.on_fatal is not None and exc is not None:
                self.on_fatal(exc)
        self.loaded.set()

    # --- running -------------------------------------------------------------------------------

    def _convert(self, values: list[Any]) -> list[Any]:
        from ..predict import convert_inputs

        return convert_inputs(values, self.settings.as_type, self.settings.dtype)

    def _run(self, values: list[Any]) -> list[_Answer]:
        """On the pipeline thread: run one batch and encode each answer."""
        return encode_results(self.runner.run(values), self.settings.non_finite, self._class_names())

    def _batch_done(self, size: int, seconds: float) -> None:
        self.metrics.batch_size.observe(size)
        self.metrics.batch_seconds.observe(seconds)
        self.metrics.items.inc(size)

    def _class_names(self) -> Any:
        if not self.settings.names:
            return None
        from ..annotations import class_names

        return class_names(self.pipeline)  # annotated, or the model's config.id2label

    # --- endpoints -----------------------------------------------------------------------------

    async def predict(self, request: Request) -> Response:
        started = time.perf_counter()
        with self.metrics.in_progress.track_inprogress():
            response = await self._predict(request)
        self.metrics.latency.observe(time.perf_counter() - started)
        self.metrics.requests.labels(endpoint="/predict", status=str(response.status_code)).inc()
        return response

    async def _predict(self, request: Request) -> Response:
        from ..predict import InputError

        if not self.ready:
            self.metrics.errors.labels(kind="not_ready").inc()
            message = "the pipeline is still loading" if self.failed is None else "the pipeline failed to load"
            return _error(503, message, retry_after=1)
        parsed = parse_request(await request.body())
        if isinstance(parsed, Response):
            self.metrics.errors.labels(kind="bad_request").inc()
            return parsed
        values, several = parsed
        if len(values) > self.settings.queue:
            self.metrics.errors.labels(kind="bad_request").inc()
            return _error(413, f"{len(values)} inputs in one request are more than the queue holds "
                               f"({self.settings.queue}): split them")
        try:
            values = self._convert(values)
        except InputError as exc:
            self.metrics.errors.labels(kind="input").inc()
            return _error(422, str(exc))
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                answers = await self.batcher.submit(values)
        except QueueFull as exc:
            self.metrics.errors.labels(kind="queue_full").inc()
            return _error(503, f"the server is busy: {exc}; retry later", retry_after=1)
        except TimeoutError:
            self.metrics.errors.labels(kind="timeout").inc()
            return _error(504, f"no answer within the time limit of {self.settings.timeout_s:g} s")
        failed = next((a for a in answers if a.error is not None), None)
        if failed is not None:
            self.metrics.errors.labels(kind="pipeline" if failed.status == 422 else "output").inc()
        return respond(answers, several)

    async def health(self, request: Request) -> Response:
        return self._counted("/health", JSONResponse({"status": "up"}))

    async def ready_endpoint(self, request: Request) -> Response:
        if self.ready:
            return self._counted("/ready", JSONResponse({"status": "ready"}))
        if self.failed is not None:
            return self._counted("/ready", _error(503, f"the pipeline failed to load: {describe_error(self.failed)}"))
        return self._counted("/ready", _error(503, "the pipeline is still loading", retry_after=1))

    async def info(self, request: Request) -> Response:
        info = self._info if self._info is not None else self._build_info(loaded=False)
        return self._counted("/info", JSONResponse({**info, "ready": self.ready}))

    async def metrics_endpoint(self, request: Request) -> Response:
        body, content_type = self.metrics.render()
        return Response(body, headers={"Content-Type": content_type})

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(OPENAPI)

    def _counted(self, endpoint: str, response: Response) -> Response:
        self.metrics.requests.labels(endpoint=endpoint, status=str(response.status_code)).inc()
        return response

    def _build_info(self, loaded: bool = True) -> dict[str, Any]:
        from .. import __version__

        info: dict[str, Any] = {"workbench": __version__,
                                "bundle": str(self.bundle) if self.bundle is not None else None}
        if self.manifest is not None:
            info["manifest"] = self.manifest
            info["structure"] = self.manifest.get("structure")
        elif self.pipeline is not None:
            from ..display import describe

            info["structure"] = describe(self.pipeline)
        annotations = getattr(self.pipeline, "annotations", None) if loaded else None
        if annotations is None and self.manifest is not None:
            annotations = self.manifest.get("annotations")
        info["annotations"] = _plain_annotations(annotations or {})
        batching: dict[str, Any] = {**asdict(self.settings)}
        batching.pop("warmup")
        if loaded and self.runner is not None and not self.runner.batchable:
            batching["mode"] = "per request: the pipeline has no batch marker"
        elif loaded:
            batching["mode"] = "dynamic"
        info["serving"] = batching
        return info


def _torch_threads_like_this_one() -> Callable[[], None]:
    """An initializer giving a new thread this thread's torch thread count.

    A new thread's OpenMP pool starts at the default size whatever ``torch.set_num_threads`` said
    in the thread that set it (``torch.get_num_threads()`` still reports the setting); on a busy
    machine the surplus threads make each call many times slower. Setting it again in the thread fixes it.
    """
    import torch

    threads = torch.get_num_threads()

    def adopt() -> None:
        torch.set_num_threads(threads)

    return adopt


def build_app(service: Service) -> Starlette:
    """The Starlette application for ``service``."""
    routes = [
        Route("/predict", service.predict, methods=["POST"]),
        Route("/health", service.health, methods=["GET"]),
        Route("/ready", service.ready_endpoint, methods=["GET"]),
        Route("/info", service.info, methods=["GET"]),
        Route("/metrics", service.metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", service.openapi, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=service.lifespan)
    app.state.service = service
    return app


# --- encoding ------------------------------------------------------------------------------------



def parse_request(body: bytes) -> "tuple[list[Any], bool] | JSONResponse":
    """``(inputs, several)`` of a ``/predict`` body (one JSON input, or ``{"inputs": [...]}``), or a 400 answer."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(400, f"the request body is not valid JSON ({exc})")
    several = isinstance(data, dict) and list(data) == ["inputs"] and isinstance(data["inputs"], list)
    values = data["inputs"] if several else [data]
    if not values:
        return _error(400, '"inputs" is an empty list: give at least one input')
    return values, several


def encode_results(results: "list[Result]", non_finite: str, class_names: Any) -> list[_Answer]:
    """Each :class:`Result` as its answer: the output's JSON text (and class name), or a 422/500 error body."""
    from ..predict import EncodeError, to_json

    answers = []
    for result in results:
        if not result.ok:
            answers.append(_Answer(error=_error_body(result.error, step=result.step, stage=result.stage),
                                   status=422))
            continue
        try:
            text = to_json(result.value, non_finite)
        except EncodeError as exc:
            answers.append(_Answer(error={"error": f"the output cannot be written as JSON: {exc}",
                                          "type": "EncodeError", "step": None, "stage": None}, status=500))
            continue
        answers.append(_Answer(text=text, label=_label(result.value, class_names)))
    return answers


def respond(answers: list[_Answer], several: bool) -> Response:
    """The ``/predict`` response: the first failed input's error, else ``{"output"}`` or ``{"outputs"}``."""
    for i, answer in enumerate(answers):
        if answer.error is not None:
            body = dict(answer.error)
            if several:
                body["input"] = i
                body["error"] = f"input {i}: {body['error']}"
            return JSONResponse(body, status_code=answer.status)
    if several:
        text = '{"outputs": [' + ", ".join(a.text for a in answers) + "]"  # type: ignore[misc]
        if any(a.label is not None for a in answers):
            text += ', "labels": ' + json.dumps([a.label for a in answers], ensure_ascii=False)
    else:
        text = '{"output": ' + answers[0].text  # type: ignore[operator]
        if answers[0].label is not None:
            text += ', "label": ' + json.dumps(answers[0].label, ensure_ascii=False)
    return Response(text + "}", media_type="application/json")

def _error(status: int, message: str, *, retry_after: int | None = None, **fields: Any) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"error": message, "type": None, "step": None, "stage": None, **fields},
                        status_code=status, headers=headers)


def _error_body(exc: BaseException | None, *, step: str | None, stage: str | None) -> dict[str, Any]:
    message = describe_error(exc) if exc is not None else "unknown error"
    if step is not None and f"{step!r}" not in message:
        message += f" (in step {step!r})"
    return {"error": message, "type": type(exc).__name__, "step": step, "stage": stage}


def _label(value: Any, class_names: Any) -> str | None:
    """The class name of an output that is a class index (an int, or a 0-d integer tensor or array)."""
    index = output_class(value)
    return None if index is None else class_name(index, class_names)


def _plain_annotations(annotations: dict[str, Any]) -> dict[str, Any]:
    from ..predict import EncodeError, to_jsonable

    out = {}
    for key, value in annotations.items():
        try:
            out[str(key)] = to_jsonable(value)
        except EncodeError:
            out[str(key)] = f"<{type(value).__name__}>"
    return out


_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "what went wrong, naming the step and the input"},
        "type": {"type": ["string", "null"], "description": "the exception's type"},
        "step": {"type": ["string", "null"], "description": "the pipeline step that raised"},
        "stage": {"type": ["string", "null"], "enum": ["preprocess", "forward", "postprocess", None]},
        "input": {"type": "integer", "description": "with several inputs: the index of the one that failed"},
    },
    "required": ["error"],
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "workbench serve", "version": "1",
             "description": "A workbench pipeline served over HTTP, with dynamic batching."},
    "paths": {
        "/predict": {"post": {
            "summary": "Run the pipeline on one input, or on several",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "description": 'One JSON input, or {"inputs": [...]} for several. Inputs reach the pipeline '
                               "as decoded JSON, or as tensors/arrays when the server runs with --as.",
                "oneOf": [{"type": "object", "properties": {"inputs": {"type": "array", "minItems": 1}},
                           "required": ["inputs"], "additionalProperties": False}, {}],
            }}}},
            "responses": {
                "200": {"description": "The output(s), in the JSON encoding of `workbench predict`",
                        "content": {"application/json": {"schema": {"type": "object", "properties": {
                            "output": {}, "label": {"type": "string"},
                            "outputs": {"type": "array"}, "labels": {"type": "array"}}}}}},
                "400": {"description": "The body is not JSON, or has no inputs",
                        "content": {"application/json": {"schema": _ERROR_SCHEMA}}},
                "422": {"description": "A step of the pipeline rejected the input",
                        "content": {"application/json": {"schema": _ERROR_SCHEMA}}},
                "413": {"description": "More inputs in one request than the queue holds",
                        "content": {"application/json": {"schema": _ERROR_SCHEMA}}},
                "500": {"description": "The output has no JSON form",
                        "content": {"application/json": {"schema": _ERROR_SCHEMA}}},
                "503": {"description": "Still loading, or the queue is full (see Retry-After)",
                        "content": {"application/json": {"schema": _ERROR_SCHEMA}}},
                "504": {"description": "No answer within --timeout-s",
                        "content": {"application/json": {"schema": _ERROR_SCHEMA}}},
            },
        }},
        "/health": {"get": {"summary": "The process is up", "responses": {"200": {"description": "up"}}}},
        "/ready": {"get": {"summary": "The pipeline is loaded and warmed up",
                           "responses": {"200": {"description": "ready"},
                                         "503": {"description": "loading, or failed to load"}}}},
        "/info": {"get": {"summary": "Manifest, structure, annotations and serving settings",
                          "responses": {"200": {"description": "a JSON object"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics",
                             "responses": {"200": {"description": "Prometheus text exposition format"}}}},
    },
}
