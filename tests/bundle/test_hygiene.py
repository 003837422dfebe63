"""Bundle hygiene: only what the pipeline reads, a report of what is stored, portable origins.

Every bundle here is checked in a fresh interpreter (``save(..., check=...)``) so storing less never
costs fidelity.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_wine

import workbench
from workbench import transform
from workbench.bundle import CaptureError
from workbench.bundle import LargeDataWarning
from workbench.bundle import capture_report

pytestmark = pytest.mark.slow

WINE = load_wine()


class Holder:
    """Plain data in its instance dict, plus a property (which is not plain data)."""

    def __init__(self) -> None:
        self.names = ["a", "b", "c"]
        self.table = np.arange(100_000, dtype=np.float64)
        self._hidden = {"x": 1}

    @property
    def hidden(self):
        return self._hidden


HOLDER = Holder()
BIG = np.arange(300_000, dtype=np.float64)  # 2.4 MB


def name_of(i):
    return WINE.target_names[i]


def _files(bundle):
    return sorted(p for p in bundle.rglob("*") if p.is_file())


def _manifest(bundle):
    return json.loads((bundle / "manifest.json").read_text())


def test_only_the_attributes_read_are_stored(tmp_path):
    pl = transform(lambda i: WINE.target_names[i]) >> transform(str.upper)
    out = workbench.save(pl, tmp_path / "b", check=[0, 1, 2])
    stored = b"".join(p.read_bytes() for p in _files(out))
    assert b"Wine recognition dataset" not in stored  # the dataset's description ...
    assert not any(p.suffix == ".npy" and p.stat().st_size > 1000 for p in _files(out))  # ... and its data stay out
    assert "scikit-learn" not in (out / "requirements.txt").read_text()  # no sklearn.utils.Bunch to import
    entry = next(e for e in _manifest(out)["globals"] if e["name"] == "WINE")
    assert entry["type"] == "Bunch" and entry["attributes"] == ["target_names"]
    assert "lambda i: WINE.target_names[i]" in entry["read_by"][0]
    assert workbench.load(out).infer_apply(2) == "CLASS_2"


def test_attributes_from_several_functions_share_one_namespace(tmp_path):
    pl = transform(name_of) >> transform(lambda s: (s, WINE.feature_names[0]))
    out = workbench.save(pl, tmp_path / "b", check=[0, 2])
    entry = next(e for e in _manifest(out)["globals"] if e["name"] == "WINE")
    assert entry["attributes"] == ["feature_names", "target_names"]
    assert len(entry["read_by"]) == 2
    assert (out / "source.py").read_text().count("SimpleNamespace()") == 1


def test_an_object_also_used_whole_is_stored_whole_once(tmp_path):
    pl = transform(name_of) >> transform(lambda s: (s, len(WINE)))
    out = workbench.save(pl, tmp_path / "b", check=[1])
    source = (out / "source.py").read_text()
    assert "SimpleNamespace" not in source
    entry = next(e for e in _manifest(out)["globals"] if e["name"] == "WINE")
    assert "attributes" not in entry and entry["data_bytes"] > 10_000


def test_properties_and_attribute_writes_keep_the_object_whole(tmp_path):
    def read_property(i):
        return HOLDER.hidden["x"] + i

    out = workbench.save(transform(read_property), tmp_path / "p", check=[1])
    assert "SimpleNamespace" not in (out / "source.py").read_text()

    def write_attribute(i):
        HOLDER.names = HOLDER.names
        return HOLDER.names[i]

    out = workbench.save(transform(write_attribute), tmp_path / "w", check=[1])
    assert "SimpleNamespace" not in (out / "source.py").read_text()

    def read_plain(i):
        return HOLDER.names[i]

    out = workbench.save(transform(read_plain), tmp_path / "r", check=[1])
    entry = next(e for e in _manifest(out)["globals"] if e["name"] == "HOLDER")
    assert entry["attributes"] == ["names"] and entry["data_bytes"] < 1000  # the 800 kB table is left out


def test_report_lists_sizes_and_readers(tmp_path, capsys):
    def lookup(i):
        return float(BIG[i]) + len(HOLDER.names)

    report = capture_report(transform(lookup) - "lookup")
    by_name = {e.name: e for e in report.entries}
    assert by_name["BIG"].data_bytes >= BIG.nbytes and by_name["BIG"].type == "ndarray"
    assert by_name["BIG"].readers == ["step 'lookup' (function lookup)"]
    assert by_name["HOLDER"].attributes == ["names"]
    assert [e.name for e in report.entries][0] == "BIG"  # largest first
    workbench.save(transform(lookup) - "lookup", tmp_path / "b", report=True)
    printed = capsys.readouterr().out
    assert re.search(r"BIG\s+ndarray\s+2\.4 MB\s+step 'lookup' \(function lookup\)", printed), printed


def test_large_data_warns_and_strict_refuses(tmp_path):
    def lookup(i):
        return float(BIG[i])

    pl = transform(lookup) - "lookup"
    with pytest.warns(LargeDataWarning) as caught:
        workbench.save(pl, tmp_path / "warned", max_data_bytes=1_000_000)
    message = str(caught[0].message)
    assert "'BIG'" in message and "step 'lookup'" in message and "2.4 MB" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        workbench.save(pl, tmp_path / "default")  # under the 10 MB default: no warning
    with pytest.raises(CaptureError, match=r"global 'BIG'.*2\.4 MB.*strict=True"):
        workbench.save(pl, tmp_path / "strict", max_data_bytes=1_000_000, strict=True)
    assert not (tmp_path / "strict").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("pattern", [re.compile(r"\w+"), re.compile(r"[a-z]+(?# words)", re.I | re.M),
                                     re.compile(rb"\d+"), re.compile(r"x . y", re.X | re.S | re.A)])
def test_compiled_regular_expressions_round_trip(tmp_path, pattern):
    def find(s):
        text = s if isinstance(pattern.pattern, str) else s.encode()
        return pattern.findall(text)

    inputs = ["Hello World 42", "x\ny", "abc DEF 7 8"]
    out = workbench.save(transform(find), tmp_path / "b", check=inputs)
    assert "re.compile(" in (out / "source.py").read_text()
    code = ("import re, workbench; pl = workbench.load(%r); "
            "p = pl.fn.__closure__[0].cell_contents; print(p.pattern, p.flags)" % str(out))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{pattern.pattern} {pattern.flags}"


def test_no_home_or_temporary_path_in_any_file(tmp_path):
    home = tmp_path / "home" / "alice"
    project = home / "work" / "textcls"
    lib = home / "lib"
    project.mkdir(parents=True)
    lib.mkdir()
    (lib / "shared_helpers.py").write_text("def clean(s):\n    return s.strip().lower()\n")
    (project / "tokens.py").write_text("import re\nWORD = re.compile(r'\\w+')\ndef split(s):\n    return WORD.findall(s)\n")
    (project / "build.py").write_text(textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[2])
        import shared_helpers, tokens, workbench
        from workbench import transform
        def prepare(s):
            return tokens.split(shared_helpers.clean(s))
        pl = transform(prepare) >> transform(len)
        workbench.save(pl, sys.argv[1], check=["The striker scored"])
    """))
    out = project / "topic.wb"
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(p for p in sys.path if p)}
    proc = subprocess.run([sys.executable, "build.py", str(out), str(lib)], capture_output=True, text=True,
                          cwd=project, env=env)
    assert proc.returncode == 0, proc.stderr
    for path in _files(out):
        text = path.read_bytes()
        assert str(tmp_path).encode() not in text, f"{path.name} holds an absolute path"
    origins = {d["name"]: d.get("origin", {}) for d in _manifest(out)["definitions"]}
    assert origins["prepare"]["path"] == "build.py"
    assert origins["split"]["path"] == "tokens.py"
    assert origins["clean"]["path"] == "~/lib/shared_helpers.py"
    assert "# function clean from ~/lib/shared_helpers.py:1" in (out / "source.py").read_text()


def test_a_home_path_held_as_data_is_stored_but_named_loudly(tmp_path, monkeypatch):
    from workbench.bundle.report import HomePathWarning

    monkeypatch.setenv("HOME", str(tmp_path / "home" / "alice"))
    config = {"vocab_file": str(tmp_path / "home" / "alice" / "vocab.txt"), "lower": True}

    def settings(i):
        return config["lower"] and i

    with pytest.warns(HomePathWarning, match=r"stores the text '.*/home/alice/vocab\.txt', a path in your home "
                                             r"directory, as data \(.*closure variable 'config'"):
        out = workbench.save(transform(settings), tmp_path / "b", check=[1])
    assert "alice/vocab.txt" in (out / "source.py").read_text()  # kept: the code may use it


def test_info_lists_the_stored_globals(tmp_path):
    from workbench.bundle.info import render_info

    out = workbench.save(transform(name_of), tmp_path / "b")
    text, problem, _ = render_info(out, show_source=False)
    assert problem is None
    assert re.search(r"stored globals:\n  global\s+type\s+size\s+read by\n  WINE\.\{target_names\}\s+Bunch", text), text
