"""The kernel side of the Pipelines panel, against a real IPython kernel (jupyter_client).

The test plays the panel: it opens a comm to the "workbench.pipelines" target and reads what the
kernel pushes after each cell.
"""

from __future__ import annotations

import queue
import uuid
from typing import Any

import pytest
from jupyter_client.manager import start_new_kernel

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

TARGET = "workbench.pipelines"

IMPORTS = """
import torch, workbench
from workbench import transform, batch, unbatch
nn = transform(torch.nn)
"""

SETUP = """
to_tensor = transform(lambda x: torch.tensor(x, dtype=torch.float32)) - "to_tensor"
clf = to_tensor >> batch >> nn.Linear(4, 3) >> unbatch >> transform(torch.argmax) - "argmax"
"""


@pytest.fixture(scope="module")
def kernel():
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def execute(kc, code: str) -> list[dict[str, Any]]:
    """Run ``code``; return the comm messages of our target published while it ran, failing on errors."""
    msg_id = kc.execute(code)
    comm_msgs = []
    while True:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "error":
            raise AssertionError("\n".join(msg["content"]["traceback"]))
        if kind in ("comm_msg", "comm_open"):
            comm_msgs.append(msg)
        if kind == "status" and msg["content"]["execution_state"] == "idle":
            break
    reply = kc.get_shell_msg(timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    return comm_msgs


def open_comm(kc, data: dict[str, Any] | None = None) -> str:
    comm_id = uuid.uuid4().hex
    msg = kc.session.msg("comm_open", {"comm_id": comm_id, "target_name": TARGET, "data": data or {}})
    kc.shell_channel.send(msg)
    return comm_id


def send(kc, comm_id: str, data: dict[str, Any]) -> None:
    kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data}))


def wait_for(kc, comm_id: str, predicate, timeout: float = 60) -> dict[str, Any]:
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            raise AssertionError("the kernel sent no matching comm message") from None
        if msg["msg_type"] in ("comm_msg", "comm_open") and msg["content"].get("comm_id") == comm_id:
            data = msg["content"]["data"]
            if predicate(data):
                return data


def test_kernel_pushes_pipelines_after_each_cell(kernel):
    execute(kernel, IMPORTS + "\nimport workbench.comm; workbench.comm.install(get_ipython())")
    execute(kernel, SETUP)
    comm_id = open_comm(kernel)
    first = wait_for(kernel, comm_id, lambda d: d.get("type") == "pipelines")
    assert first["pipelines"] == []

    pushed = execute(kernel, "workbench.registry.register('clf', clf)")
    ours = [m["content"]["data"] for m in pushed if m["content"].get("comm_id") == comm_id]
    assert len(ours) == 1, ours
    (entry,) = ours[0]["pipelines"]
    assert entry["name"] == "clf"
    assert entry["steps"] == 3
    assert entry["params"] == 4 * 3 + 3
    assert entry["device"] == "cpu"
    assert entry["stages"] == {"preprocess": ["to_tensor"], "forward": ["Linear(in_features=4, out_features=3, bias=True)"],
                               "postprocess": ["argmax"]}
    assert [c["kind"] for c in entry["root"]["children"]] == ["step", "batch", "step", "unbatch", "step"]

    # Nothing changed: no message.
    pushed = execute(kernel, "x = 1")
    assert [m for m in pushed if m["content"].get("comm_id") == comm_id] == []

    # A change made in place (a new step registered under the same name) is pushed.
    pushed = execute(kernel, "workbench.registry.register('clf', clf >> transform(str) - 'to_text')")
    ours = [m["content"]["data"] for m in pushed if m["content"].get("comm_id") == comm_id]
    assert ours and ours[-1]["pipelines"][0]["stages"]["postprocess"] == ["argmax", "to_text"]

    # Moving the layers changes the device in place: pushed too.
    pushed = execute(kernel, "_ = workbench.registry.get('clf').to('meta')")
    ours = [m["content"]["data"] for m in pushed if m["content"].get("comm_id") == comm_id]
    assert ours and ours[-1]["pipelines"][0]["device"] == "meta"


def test_refresh_source_and_export_requests(kernel, tmp_path):
    execute(kernel, IMPORTS + "\nimport workbench.comm; workbench.comm.install(get_ipython())")
    execute(kernel, SETUP + "\nworkbench.registry.register('clf', clf)")
    comm_id = open_comm(kernel)
    wait_for(kernel, comm_id, lambda d: d.get("type") == "pipelines")

    send(kernel, comm_id, {"type": "refresh"})
    refreshed = wait_for(kernel, comm_id, lambda d: d.get("type") == "pipelines")
    assert [p["name"] for p in refreshed["pipelines"]] == ["clf"]

    send(kernel, comm_id, {"type": "source", "name": "nope", "request_id": "r1"})
    answer = wait_for(kernel, comm_id, lambda d: d.get("request_id") == "r1")
    assert answer["ok"] is False and "nope" in answer["error"] and "clf" in answer["error"]

    send(kernel, comm_id, {"type": "source", "name": "clf", "request_id": "r2"})
    answer = wait_for(kernel, comm_id, lambda d: d.get("request_id") == "r2")
    assert answer["ok"] is True, answer
    assert "to_tensor" in answer["text"]

    target = tmp_path / "clf.wb"
    send(kernel, comm_id, {"type": "export", "name": "clf", "path": str(target), "request_id": "r3"})
    answer = wait_for(kernel, comm_id, lambda d: d.get("request_id") == "r3")
    assert answer["ok"] is True, answer
    assert target.exists()

    # Exporting again onto the same path fails with the bundle's own message, and leaves the bundle alone.
    before = sorted(p.name for p in target.rglob("*"))
    send(kernel, comm_id, {"type": "export", "name": "clf", "path": str(target), "request_id": "r4"})
    answer = wait_for(kernel, comm_id, lambda d: d.get("request_id") == "r4")
    assert answer["ok"] is False and str(target) in answer["error"], answer
    assert 'tick "Replace an existing bundle"' in answer["error"] and "overwrite=True" not in answer["error"]
    assert sorted(p.name for p in target.rglob("*")) == before
    # The dialog's checkbox sends overwrite: the bundle is replaced.
    stamp = (target / "manifest.json").stat().st_mtime_ns
    send(kernel, comm_id, {"type": "export", "name": "clf", "path": str(target), "overwrite": True,
                           "request_id": "r4b"})
    answer = wait_for(kernel, comm_id, lambda d: d.get("request_id") == "r4b")
    assert answer["ok"] is True, answer
    assert (target / "manifest.json").stat().st_mtime_ns != stamp

    send(kernel, comm_id, {"type": "export", "name": "clf", "path": "  ", "request_id": "r5"})
    answer = wait_for(kernel, comm_id, lambda d: d.get("request_id") == "r5")
    assert answer == {"type": "export", "request_id": "r5", "ok": False, "error": "ValueError: export of 'clf': no path given"}

    send(kernel, comm_id, {"type": "bogus", "request_id": "r6"})
    answer = wait_for(kernel, comm_id, lambda d: d.get("request_id") == "r6")
    assert answer["ok"] is False and "unknown request type 'bogus'" in answer["error"]


def test_import_workbench_installs_the_comm_and_announces_it(kernel):
    """`import workbench` in a kernel loads the IPython extension, which opens the comm from the kernel side."""
    pushed = execute(kernel, "import workbench")  # already imported in this kernel: no second announcement
    assert not [m for m in pushed if m["msg_type"] == "comm_open"]
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        pushed = execute(kc, "import workbench")
        opens = [m for m in pushed if m["msg_type"] == "comm_open"]
        assert [m["content"]["target_name"] for m in opens] == [TARGET]
        assert opens[0]["content"]["data"] == {"type": "pipelines", "pipelines": []}
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_stale_definitions_and_a_free_export_path_are_pushed(kernel, tmp_path):
    execute(kernel, IMPORTS + f"\nimport os, workbench.comm; workbench.comm.install(get_ipython()); os.chdir({str(tmp_path)!r})")
    execute(kernel, "def enc(s):\n    return s.split()")
    execute(kernel, "workbench.registry.register('topic', transform(enc) >> transform(len))")
    comm_id = open_comm(kernel)
    first = wait_for(kernel, comm_id, lambda d: d.get("type") == "pipelines")
    topic = next(p for p in first["pipelines"] if p["name"] == "topic")
    assert topic["stale"] == [] and topic["export_path"] == "topic-export.wb"
    pushed = execute(kernel, "def enc(s):\n    return s.lower().split()\n(tmp := __import__('pathlib').Path('topic-export.wb')).mkdir()")
    ours = [m["content"]["data"] for m in pushed if m["content"].get("comm_id") == comm_id]
    topic = next(p for p in ours[-1]["pipelines"] if p["name"] == "topic")
    assert [(s["name"], s["kind"]) for s in topic["stale"]] == [("enc", "function")]
    assert topic["stale"][0]["defined_in"] != topic["stale"][0]["redefined_in"]
    assert "redefined in cell In[" in topic["stale"][0]["message"]
    assert topic["export_path"] == "topic-export-2.wb"  # the default never collides with an existing path
