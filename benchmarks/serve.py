"""Serving throughput and latency: ``workbench serve`` against a per-request FastAPI endpoint and LitServe.

Every server runs in its own process on 127.0.0.1 and serves the same model with the same weights
(one torch thread in every process and thread: ``OMP_NUM_THREADS=1``); closed-loop clients (each sends a request, waits for the answer,
sends the next) run for a fixed time at 1, 8 and 32 concurrent clients; the servers take turns,
in several rounds. Reported per server: requests per second (the median over rounds), and the
50th and 99th percentile latency (over all rounds). The servers:

- ``workbench``: ``workbench serve BUNDLE --max-batch 32 --max-wait-ms 5 --threads 1`` (dynamic batching);
  also with ``--workers 2`` (one thread each).
- ``fastapi``: a hand-written FastAPI endpoint, ``def predict(x: list[float])``, calling the model on a
  batch of one per request (run by uvicorn; FastAPI runs sync endpoints on its thread pool).
- ``litserve``: a ``LitAPI`` with LitServe's batching (``max_batch_size=32, batch_timeout=0.005``).

Two models: the digits CNN of benchmarks/overhead.py on 1x8x8 inputs (convolutions on one thread
gain little from batching) and an MLP 512 -> 2048 -> 2048 -> 10 with GELU (batching pays). Each
answers the predicted class; the answers of all servers are checked equal on the same inputs
before timing.

    python benchmarks/serve.py                      # about 10 minutes
    python benchmarks/serve.py --seconds 2 --clients 1 8 --models mlp

The clients share the machine's cores with the server under test; figures are comparable within
one run, not across machines. See docs/serving.md for measured figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from workbench import batch, transform, unbatch

HERE = Path(__file__).resolve().parent
WORKBENCH = Path(sys.executable).parent / "workbench"
MAX_BATCH = 32
MAX_WAIT_S = 0.005


# --- the models, built the same way (same seed, same weights) in every server -------------------------

def small_cnn() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 4 * 4, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 10),
    )


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(512, 2048), torch.nn.GELU(),
        torch.nn.Linear(2048, 2048), torch.nn.GELU(),
        torch.nn.Linear(2048, 10),
    )


MODELS = {"cnn": (small_cnn, (1, 8, 8)), "mlp": (mlp, (512,))}


def build_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS[name][0]().eval()


def example_inputs(name: str, n: int) -> list[list[float]]:
    shape = MODELS[name][1]
    g = torch.Generator().manual_seed(1)
    size = 1
    for d in shape:
        size *= d
    return torch.rand(n, size, generator=g).tolist()


# --- workbench: the pipeline saved as a bundle ---------------------------------------------------------

@transform
def cnn_input(x):
    return torch.tensor(x, dtype=torch.float32).reshape(1, 8, 8)


@transform
def mlp_input(x):
    return torch.tensor(x, dtype=torch.float32)


@transform
def label(y):
    return int(y.argmax())


def pipeline(name: str) -> Any:
    first = cnn_input if name == "cnn" else mlp_input
    return first >> batch >> transform(build_model(name)) >> unbatch >> label


# --- the peers, each run in a process of its own ------------------------------------------------------

def run_fastapi(name: str, port: int) -> None:
    import uvicorn
    from fastapi import Body, FastAPI

    torch.set_num_threads(1)
    model = build_model(name)
    shape = MODELS[name][1]
    app = FastAPI()

    @app.post("/predict")
    def predict(x: list[float] = Body(...)) -> dict[str, int]:
        with torch.inference_mode():
            y = model(torch.tensor(x, dtype=torch.float32).reshape(1, *shape))
        return {"output": int(y[0].argmax())}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def run_litserve(name: str, port: int) -> None:
    import litserve as ls

    api = LitModelAPI(name, max_batch_size=MAX_BATCH, batch_timeout=MAX_WAIT_S)
    server = ls.LitServer(api, accelerator="cpu", devices=1, workers_per_device=1, timeout=30)
    server.run(host="127.0.0.1", port=port, log_level="warning", generate_client_file=False)


try:  # LitServe pickles the API into its inference process: the class must be importable by name
    import litserve as _litserve
except ImportError:  # pragma: no cover
    _litserve = None

if _litserve is not None:
    class LitModelAPI(_litserve.LitAPI):
        """The model behind LitServe's batching: ``predict`` gets the stacked batch."""

        def __init__(self, name: str, **options: Any):
            super().__init__(**options)
            self.name = name

        def setup(self, device: str) -> None:
            torch.set_num_threads(1)
            self.model = build_model(self.name)
            self.shape = MODELS[self.name][1]

        def decode_request(self, request: dict) -> torch.Tensor:
            return torch.tensor(request["input"], dtype=torch.float32).reshape(*self.shape)

        def predict(self, x: torch.Tensor) -> Any:
            with torch.inference_mode():
                return self.model(x).argmax(-1)

        def encode_response(self, output: Any) -> dict[str, int]:
            return {"output": int(output)}


# --- clients -----------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    """A server under test in a subprocess."""

    def __init__(self, kind: str, command: list[str], port: int, body: Any):
        self.kind, self.port, self.body = kind, port, body
        self.url = f"http://127.0.0.1:{port}/predict"
        self.log = tempfile.TemporaryFile("w+")
        # One OpenMP thread in every thread of every server (FastAPI runs endpoints on worker threads).
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)

    def wait_until_answering(self, sample: list[float], timeout: float = 300) -> None:
        """Until 10 requests in a row succeed (with several workers, every one must have loaded)."""
        import httpx

        deadline = time.monotonic() + timeout
        row = 0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                ok = httpx.post(self.url, json=self.body(sample), timeout=5).status_code == 200
            except httpx.HTTPError:
                ok = False
            row = row + 1 if ok else 0
            if row == 10:
                return
            time.sleep(0.05 if ok else 0.3)
        self.log.seek(0)
        self.stop()
        raise RuntimeError(f"{self.kind} did not answer:\n{self.log.read()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the server and the workers it started
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


async def closed_loop(url: str, bodies: list[Any], clients: int, seconds: float,
                      warmup: float) -> tuple[int, list[float], int]:
    """(answered requests, latencies in s, failures) over ``seconds`` after ``warmup`` seconds."""
    import aiohttp

    latencies: list[float] = []
    failures = 0
    start = time.perf_counter()
    measure_from, end = start + warmup, start + warmup + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def client(k: int) -> None:
            nonlocal failures
            i = k
            while True:
                sent = time.perf_counter()
                if sent >= end:
                    return
                async with session.post(url, json=bodies[i % len(bodies)]) as response:
                    await response.read()
                    ok = response.status == 200
                done = time.perf_counter()
                if sent >= measure_from:
                    if ok:
                        latencies.append(done - sent)
                    else:
                        failures += 1
                i += clients

        await asyncio.gather(*(client(k) for k in range(clients)))
    return len(latencies), latencies, failures


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def answers(url: str, bodies: list[Any]) -> list[int]:
    import httpx

    return [httpx.post(url, json=b, timeout=30).json()["output"] for b in bodies]


def servers(name: str, bundle: Path) -> list[tuple[str, list[str], Any]]:
    me = [sys.executable, str(Path(__file__).resolve())]
    flags = ["--max-batch", str(MAX_BATCH), "--max-wait-ms", str(MAX_WAIT_S * 1000), "--log-level", "warning"]
    plain = lambda x: x  # noqa: E731
    return [
        ("workbench", [str(WORKBENCH), "serve", str(bundle), *flags, "--threads", "1"], plain),
        ("workbench --workers 2", [str(WORKBENCH), "serve", str(bundle), *flags, "--workers", "2",
                                   "--threads", "1"], plain),
        ("fastapi per request", [*me, "_fastapi", name], plain),
        ("litserve", [*me, "_litserve", name], lambda x: {"input": x}),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["cnn", "mlp"])
    parser.add_argument("--clients", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=4.0, help="measured time per point (default 4)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured time before each point (default 1)")
    parser.add_argument("--rounds", type=int, default=2, help="turns per server and point; the median is kept")
    parser.add_argument("--only", nargs="+", default=None, help="run only these servers (by name prefix)")
    args = parser.parse_args(argv)
    if max(args.clients) > 64 or args.seconds > 60:
        parser.error("at most 64 clients and 60 seconds per point")
    from workbench.bundle import save

    rows = []
    with tempfile.TemporaryDirectory(prefix="workbench-bench-serve-") as work:
        for name in args.models:
            bundle = save(pipeline(name), Path(work) / f"{name}.wb")
            inputs = example_inputs(name, 256)
            running: list[Running] = []
            try:
                for kind, command, body in servers(name, bundle):
                    if args.only and not any(kind.startswith(o) for o in args.only):
                        continue
                    port = free_port()
                    tail = ["--port", str(port)] if kind.startswith("workbench") else [str(port)]
                    running.append(Running(kind, [*command, *tail], port, body))
                reference = None
                for server in running:
                    server.wait_until_answering(inputs[0])
                    got = answers(server.url, [server.body(x) for x in inputs[:16]])
                    if reference is None:
                        reference = got
                    elif got != reference:
                        raise RuntimeError(f"{server.kind} answers {got}, {running[0].kind} answered {reference}")
                for clients in args.clients:
                    # Servers take turns, round after round, so that drifting machine load hits them alike.
                    measured: dict[str, list[tuple[float, list[float], int]]] = {s.kind: [] for s in running}
                    for _ in range(args.rounds):
                        for server in running:
                            bodies = [server.body(x) for x in inputs]
                            count, latencies, failures = asyncio.run(
                                closed_loop(server.url, bodies, clients, args.seconds, args.warmup))
                            measured[server.kind].append((count / args.seconds, latencies, failures))
                    for kind, runs in measured.items():
                        rate = statistics.median(r for r, _, _ in runs)
                        latencies = [v for _, lat, _ in runs for v in lat]
                        failures = sum(f for _, _, f in runs)
                        row = (name, kind, clients, rate, 1000 * percentile(latencies, 50),
                               1000 * percentile(latencies, 99), failures)
                        rows.append(row)
                        print(f"{name:4} {kind:22} {clients:3} clients  {rate:8.1f} req/s  p50 {row[4]:7.2f} ms  "
                              f"p99 {row[5]:7.2f} ms" + (f"  {failures} failed" if failures else ""), flush=True)
            finally:
                for server in running:
                    server.stop()
    print()
    print("| model | server | clients | req/s | p50 ms | p99 ms |")
    print("|---|---|---:|---:|---:|---:|")
    for name, kind, clients, rate, p50, p99, failures in rows:
        print(f"| {name} | {kind} | {clients} | {rate:.0f} | {p50:.2f} | {p99:.2f} |")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] in ("_fastapi", "_litserve"):
        (run_fastapi if sys.argv[1] == "_fastapi" else run_litserve)(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(main())
