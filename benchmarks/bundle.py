"""Bundle save/load time and size against ``torch.save``/``torch.load`` of the state dict (~50 MB model).

Run: ``python benchmarks/bundle.py``. Prints medians over several runs and the ratios:

- load: ``workbench.load`` (hash checks, source, weights) vs ``torch.load(weights_only=True)`` of the
  state dict, and vs that plus building the model and ``load_state_dict`` (what loading a
  checkpoint really takes); target 1.3x;
- save: ``workbench.save`` vs ``torch.save`` of the state dict;
- size: the bundle directory vs the bytes of the weights; target weights + 1%;
- what the guarantees cost: reading every file once into the process's own memory and verifying
  those bytes (so a loaded pipeline does not change when the file does) vs memory-mapping the
  weights with ``safetensors.torch.load_file`` and verifying the files by separate reads (how
  loading worked before), and fsyncing a freshly written bundle (part of every save).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

import workbench
from workbench import batch, transform, unbatch

REPEATS = 7


class Mlp(torch.nn.Module):
    def __init__(self, width: int = 2048, depth: int = 3):
        super().__init__()
        self.layers = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(depth)])

    def forward(self, x):
        return self.layers(x)


def _median(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def main() -> None:
    torch.manual_seed(0)
    model = Mlp()
    pl = transform(torch.as_tensor) >> batch >> transform(model) >> unbatch
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    work = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    try:
        sd_path = work / "model.pt"
        bundle = work / "model.wb"

        def torch_save():
            torch.save(model.state_dict(), sd_path)

        def wb_save():
            workbench.save(pl, bundle, overwrite=True)

        def torch_load():
            torch.load(sd_path, weights_only=True)

        def torch_load_build():
            m = Mlp()
            m.load_state_dict(torch.load(sd_path, weights_only=True))

        def wb_load():
            workbench.load(bundle)

        torch_save(), wb_save()  # warm up (and the page cache)
        t_save = _median(torch_save)
        w_save = _median(wb_save)
        torch_load(), wb_load()
        t_load = _median(torch_load)
        t_load_build = _median(torch_load_build)
        w_load = _median(wb_load)
        x = torch.randn(2048)
        assert torch.equal(workbench.load(bundle).infer_apply(x), pl.infer_apply(x))
        b_size, sd_size = _size(bundle), _size(sd_path)
        from safetensors.torch import load_file

        from workbench.bundle import manifest, placing, snapshot

        def mapped():  # what loading did before: map the weights, hash the file through separate reads
            load_file(str(bundle / "weights.safetensors"))
            for rel in ("source.py", "requirements.txt"):
                manifest.sha256_file(bundle / rel)
            manifest._chunk_hashes(bundle / "weights.safetensors")

        def read_in():
            snap = snapshot.read(bundle, load=True)
            snap.pending.result()

        mapped(), read_in()
        pairs = []
        for _ in range(2 * REPEATS):  # interleaved: the shared machine's load drifts between runs
            pairs.append((_median(mapped, 1), _median(read_in, 1)))
        t_mapped = statistics.median(p[0] for p in pairs)
        t_read = statistics.median(p[1] for p in pairs)
        syncs = []
        for i in range(REPEATS):  # a fresh copy each time: fsync costs only while the data is not yet on disk
            copy = work / f"copy{i}.wb"
            shutil.copytree(bundle, copy)
            start = time.perf_counter()
            placing.sync_tree(copy)
            syncs.append(time.perf_counter() - start)
            shutil.rmtree(copy)
        t_sync = statistics.median(syncs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"model: {weights / 1e6:.1f} MB of weights ({sum(p.numel() for p in model.parameters()):,} parameters)")
    print(f"save   torch.save {t_save * 1e3:8.1f} ms   workbench.save {w_save * 1e3:8.1f} ms   ratio {w_save / t_save:.2f}x")
    print(f"load   torch.load {t_load * 1e3:8.1f} ms   workbench.load {w_load * 1e3:8.1f} ms   ratio {w_load / t_load:.2f}x")
    print(f"load   torch.load + build + load_state_dict {t_load_build * 1e3:8.1f} ms   "
          f"ratio {w_load / t_load_build:.2f}x (target 1.3x)")
    print(f"cost   read + verify every file into own memory {t_read * 1e3:8.1f} ms   memory-map the weights + "
          f"verify by separate reads {t_mapped * 1e3:8.1f} ms   ratio {t_read / t_mapped:.2f}x")
    print(f"cost   fsync of a freshly written bundle {t_sync * 1e3:8.1f} ms ({t_sync / w_save:.0%} of a save)")
    print(f"size   weights {weights:,} B   state dict file {sd_size:,} B   bundle {b_size:,} B   "
          f"bundle/weights {b_size / weights:.4f} (target <= 1.01)")


if __name__ == "__main__":
    main()
