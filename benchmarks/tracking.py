"""What notebook cell tracking costs: per-cell overhead, and saving from a 500-cell notebook.

In one IPython shell (``InteractiveShell``, the same execution path a Jupyter kernel uses), a
notebook of 500 realistic cells (a function, a class, an assignment, a magic every few cells) runs
twice, interleaved cell by cell (which of the pair runs first alternates): once with tracking
installed and once without, same texts up to names, so the paired difference is the cost of
tracking. The median of the paired differences is the figure to read: the machine is shared and a
few cells in both runs hit pauses (history database writes, garbage collection) that dwarf it. Tracking stays installed across its blocks, so the last blocks
run with 500+ records in place. Then a pipeline built from functions and classes spread over the
notebook is saved as a bundle (best of several saves, each into a new directory).

Targets: under 1 ms added per cell, save under 1 s.

    python benchmarks/tracking.py
    python benchmarks/tracking.py --cells 500 --blocks 10
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

PER_CELL_TARGET_MS = 1.0
SAVE_TARGET_S = 1.0


def cell_text(i: int, tag: str) -> str:
    """A typical notebook cell; ``tag`` keeps the two runs' texts (and cell file names) apart."""
    kind = i % 5
    if kind == 0:
        return f"def f_{tag}_{i}(x):\n    '''step {i}'''\n    y = x + {i}\n    return y * 2\n"
    if kind == 1:
        return (f"class C_{tag}_{i}:\n    scale = {i}\n    def __call__(self, x):\n"
                f"        return x * self.scale\n")
    if kind == 2:
        return f"v_{tag}_{i} = [k * {i} for k in range(10)]\nlen(v_{tag}_{i})\n"
    if kind == 3:
        return f"%time t_{tag}_{i} = sum(range({i}))\n"
    return f"from dataclasses import dataclass\n@dataclass\nclass D_{tag}_{i}:\n    a: int = {i}\n    b: float = 0.5\n"


def run_block(ip, cells: list[str]) -> list[float]:
    times = []
    for text in cells:
        start = time.perf_counter()
        result = ip.run_cell(text, store_history=True)
        times.append(time.perf_counter() - start)
        assert result.success, text
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=500)
    parser.add_argument("--blocks", type=int, default=500, help="interleaved blocks (default: one cell each)")
    parser.add_argument("--saves", type=int, default=5)
    args = parser.parse_args()

    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    import workbench
    from workbench import tracking

    tracking.uninstall(ip)
    on_cells = [cell_text(i, "on") for i in range(args.cells)]
    off_cells = [cell_text(i, "off") for i in range(args.cells)]
    size = max(1, args.cells // args.blocks)
    on_times: list[float] = []
    off_times: list[float] = []
    import contextlib
    import io

    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        for block, start in enumerate(range(0, args.cells, size)):
            for tracked in ((False, True) if block % 2 == 0 else (True, False)):  # alternate which goes first
                if tracked:
                    _resume(ip)  # tracking keeps its records between blocks
                    on_times += run_block(ip, on_cells[start : start + size])
                else:
                    tracking.uninstall(ip)
                    off_times += run_block(ip, off_cells[start : start + size])
    tracking.uninstall(ip)
    _resume(ip)
    assert len(tracking.cells()) >= args.cells, len(tracking.cells())  # %time bodies add records

    on_ms = statistics.median(on_times) * 1e3
    off_ms = statistics.median(off_times) * 1e3
    mean_diff = (statistics.fmean(on_times) - statistics.fmean(off_times)) * 1e3
    paired = statistics.median(a - b for a, b in zip(on_times, off_times)) * 1e3
    print(f"cells per run: {args.cells} ({args.blocks} interleaved blocks)")
    print(f"median per cell, tracking off: {off_ms:.3f} ms; on: {on_ms:.3f} ms")
    for label, times in (("off", off_times), ("on", on_times)):
        q = statistics.quantiles(times, n=100)
        print(f"tracking {label}: p10 {q[9] * 1e3:.3f} ms, p90 {q[89] * 1e3:.3f} ms, p99 {q[98] * 1e3:.3f} ms, "
              f"max {max(times) * 1e3:.3f} ms")
    print(f"added per cell: median of paired differences {paired:+.3f} ms, difference of medians "
          f"{on_ms - off_ms:+.3f} ms, of means {mean_diff:+.3f} ms"
          f"  (target < {PER_CELL_TARGET_MS} ms)")

    # A pipeline from definitions spread over the notebook, saved from the 500-cell session.
    build = (
        "from workbench import transform\n_steps = []\n"
        + "".join(f"_steps.append(transform(f_on_{i}))\n" for i in range(0, args.cells, 25))
        + "".join(f"_steps.append(transform(C_on_{i})())\n" for i in range(1, args.cells, 50))
        + f"_cfg = D_on_{args.cells - 1}()\n"
        + "_steps.append(transform(lambda x: x + _cfg.a * _cfg.b))\n"
        + "bench_pl = _steps[0]\n"
        + "for _s in _steps[1:]:\n    bench_pl = bench_pl >> _s\n"
    )
    assert ip.run_cell(build, store_history=True).success
    pipeline = ip.user_ns["bench_pl"]
    root = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    try:
        save_times = []
        for i in range(args.saves):
            start = time.perf_counter()
            workbench.save(pipeline, root / f"b{i}")
            save_times.append(time.perf_counter() - start)
        loaded = workbench.load(root / "b0")
        assert loaded.infer_apply(3) == pipeline.infer_apply(3)
    finally:
        shutil.rmtree(root)
    print(f"save of a {len(pipeline)}-step pipeline from a {args.cells}-cell notebook: "
          f"best {min(save_times):.3f} s, median {statistics.median(save_times):.3f} s (target < {SAVE_TARGET_S} s)")


def _resume(ip) -> None:
    """Re-install tracking hooks on ``ip`` keeping the records made so far."""
    from workbench import tracking

    if tracking.is_active():
        return
    previous = _resume.tracker
    tracking.install(ip)
    if previous is not None:
        current = tracking._TRACKER
        current.executions[:0] = previous.executions
        for name, runs in previous.by_filename.items():
            current.by_filename.setdefault(name, [])[:0] = runs
        for cls, code in previous.class_bodies.items():
            current.class_bodies[cls] = code
    _resume.tracker = tracking._TRACKER


_resume.tracker = None


if __name__ == "__main__":
    main()
