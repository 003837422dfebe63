"""How real code defines pipelines: one script per scenario (plus local modules next to some).

Each script builds ``pl`` and a list ``INPUTS``; the harness appends the lines that save the bundle
and record the live outputs. Scripts are plain files run as ``__main__``.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field


@dataclass
class Scenario:
    name: str
    script: str
    files: dict[str, str] = field(default_factory=dict)
    batch_size: int = 2


def _s(name: str, script: str, files: dict[str, str] | None = None, **kw) -> Scenario:
    return Scenario(name, textwrap.dedent(script).lstrip("\n"),
                    {k: textwrap.dedent(v).lstrip("\n") for k, v in (files or {}).items()}, **kw)


SCENARIOS = [
    _s("constant_redefined_after_use", """
        import torch
        from workbench import transform
        SCALE = 2.0
        def scale(x):
            return torch.tensor(x) * SCALE
        pl = transform(scale) >> transform(lambda t: t + OFFSET)
        OFFSET = 1.0
        SCALE = 3.0          # the pipeline sees 3.0 now: the bundle must too
        OFFSET = 0.5
        INPUTS = [1.0, 2.5, -4.0]
    """),
    _s("function_redefined_after_build", """
        from workbench import transform
        def f(x):
            return x + 1
        step = transform(f)
        def g(x):
            return f(x) * 10     # calls whatever `f` is now
        pl = step >> transform(g)
        def f(x):                # redefined: the pipeline still holds the first f
            return x - 1000
        INPUTS = [1, 2, 3]
    """),
    _s("mutated_dict_and_list", """
        from workbench import transform
        VOCAB = {"a": 0, "b": 1}
        STOP = ["the"]
        def encode(words):
            return [VOCAB.get(w, -1) for w in words if w not in STOP]
        pl = transform(str.split) >> transform(encode)
        VOCAB["c"] = 2
        VOCAB["a"] = 7
        STOP.append("x")
        INPUTS = ["a b c the x", "c c a", "d"]
    """),
    _s("inplace_tensor_update", """
        import torch
        from workbench import transform
        W = torch.ones(3)
        B = torch.zeros(3, requires_grad=False)
        def affine(x):
            return x * W + B
        pl = transform(torch.tensor) >> transform(affine)
        W.mul_(2.5)
        B[1] = -1.0
        INPUTS = [[1.0, 2.0, 3.0], [0.5, 0.25, 0.125]]
    """),
    _s("closures_and_factories", """
        from workbench import transform
        def make_scaler(k):
            def scale(x):
                return x * k
            return scale
        def make_counter_free(offset):
            extra = offset * 2
            return lambda x: x + offset + extra
        pl = transform(make_scaler(3)) >> transform(make_scaler(0.5)) >> transform(make_counter_free(4))
        INPUTS = [1, 2.0, -3]
    """),
    _s("functools_partial", """
        import functools
        from workbench import transform
        def clip(x, lo, hi=10):
            return max(lo, min(hi, x))
        def power(x, *, exponent):
            return x ** exponent
        pl = transform(functools.partial(clip, lo=-2, hi=5)) >> transform(functools.partial(power, exponent=3))
        INPUTS = [-10, 0, 3, 99]
    """),
    _s("dataclass_config", """
        from dataclasses import dataclass, field
        import torch
        from workbench import transform
        @dataclass
        class Config:
            scale: float = 1.0
            names: list = field(default_factory=list)
        cfg = Config(scale=2.0, names=["a"])
        def apply(x):
            return torch.tensor([x * cfg.scale, float(len(cfg.names))])
        pl = transform(apply)
        cfg.scale = 4.0
        cfg.names.append("b")
        INPUTS = [1.0, 3.0]
    """),
    _s("import_aliases", """
        import numpy as np
        import torch
        import torch.nn.functional as F
        from math import sqrt as root
        from workbench import transform
        def feat(x):
            arr = np.asarray(x, dtype=np.float32)
            return torch.from_numpy(arr) * root(4.0)
        def act(t):
            return F.softplus(t)
        pl = transform(feat) >> transform(act)
        INPUTS = [[1.0, -2.0], [0.0, 3.0]]
    """),
    _s("helper_function_chain", """
        from workbench import transform
        BASE = 3
        def _inner(x):
            return x * BASE
        def _middle(x):
            return _inner(x) + _inner(1)
        def outer(x):
            return [_middle(v) for v in x]
        pl = transform(outer)
        BASE = 5
        INPUTS = [[1, 2], [3]]
    """),
    _s("recursion", """
        from workbench import transform
        def fact(n):
            return 1 if n <= 1 else n * fact(n - 1)
        def is_even(n):
            return n == 0 or is_odd(n - 1)
        def is_odd(n):
            return n != 0 and is_even(n - 1)
        pl = transform(fact) + transform(is_even)
        INPUTS = [0, 5, 7]
    """),
    _s("class_attributes_static_methods", """
        from workbench import transform
        class Normalizer:
            mean = 1.0
            std = 2.0
            @staticmethod
            def clip(v):
                return max(-3.0, min(3.0, v))
            @classmethod
            def describe(cls):
                return cls.mean
            def __call__(self, x):
                return self.clip((x - self.mean) / self.std) + self.describe() * 0
        pl = transform(Normalizer)()
        Normalizer.mean = 5.0      # changed after the class was defined
        INPUTS = [1.0, 10.0, 5.0]
    """),
    _s("trained_weights", """
        import torch
        from workbench import transform, batch, unbatch
        torch.manual_seed(1)
        nn = transform(torch.nn)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        xs, ys = torch.randn(32, 4), torch.randint(0, 2, (32,))
        for _ in range(20):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xs), ys).backward()
            opt.step()
        pl = transform(torch.tensor) >> batch >> model >> unbatch
        INPUTS = [[0.1, 0.2, 0.3, 0.4], [1.0, -1.0, 0.5, 2.0], [0.0, 0.0, 0.0, 0.0]]
    """),
    _s("numpy_lookup_table", """
        import numpy as np
        from workbench import transform
        rng = np.random.default_rng(0)
        TABLE = rng.normal(size=(50_000,)).astype(np.float64)
        IDS = np.arange(10, dtype=np.int64)
        def lookup(i):
            return float(TABLE[i] + TABLE[IDS[i % 10]])
        pl = transform(lookup)
        TABLE[3] = 42.0
        INPUTS = [0, 3, 49_999]
    """),
    _s("dataframe_lookup", """
        import pandas as pd
        from workbench import transform
        PRICES = pd.DataFrame({"item": ["apple", "pear", "fig"], "price": [1.5, 2.25, 9.0], "stock": [3, 0, 12]})
        PRICES = PRICES.set_index("item")
        def price(name):
            row = PRICES.loc[name]
            return float(row["price"]) * int(row["stock"])
        RANKS = pd.Series([3, 1, 2], index=["apple", "pear", "fig"], name="rank")
        pl = transform(price) + transform(lambda n: int(RANKS[n]))
        INPUTS = ["apple", "fig"]
    """),
    _s("nested_sub_pipelines", """
        from workbench import transform
        clean = transform(str.strip) >> transform(str.lower)
        count = transform(len) - "count"
        words = (clean >> transform(str.split)) - "words"
        pl = (clean - "cleaned") >> (words + count) >> transform(lambda t: (len(t[0]), t[1]))
        INPUTS = ["  Hello World ", "A b C d"]
    """),
    _s("rollout_parallel_map", """
        from workbench import transform
        double = transform(lambda x: 2 * x)
        neg = transform(lambda x: -x)
        pl = (double + neg) >> (neg / double) >> transform(list) >> ~transform(lambda v: v + 1)
        INPUTS = [1, 5]
    """),
    _s("lambdas_on_one_line", """
        from workbench import transform
        K = 3
        a, b = transform(lambda x: x + K), transform(lambda x: x * K)
        pl = a >> b >> transform(lambda x: (lambda y: y - 1)(x))
        K = 4
        INPUTS = [0, 1, 2]
    """),
    _s("wrapped_module_in_variable", """
        import torch
        from workbench import transform, batch, unbatch
        class Net(torch.nn.Module):
            def __init__(self, vocab):
                super().__init__()
                self.vocab = dict(vocab)
                self.emb = torch.nn.Embedding(len(vocab) + 1, 3)
                self.register_buffer("shift", torch.arange(3.0))
                self.temperature = 2.0
            def forward(self, ids):
                return self.emb(ids).sum(1) / self.temperature + self.shift
        torch.manual_seed(0)
        net = Net({"a": 1, "b": 2})
        tnet = transform(net)
        net.temperature = 4.0
        def encode(s):
            return torch.tensor([net.vocab.get(c, 0) for c in s])
        pl = transform(encode) >> batch >> tnet >> unbatch
        INPUTS = ["ab", "ba", "zz"]
    """),
    _s("transform_torch_nn", """
        import torch
        from workbench import transform, batch, unbatch
        nn = transform(torch.nn)
        torch.manual_seed(3)
        pl = transform(torch.tensor) >> batch >> nn.Linear(2, 4) >> nn.Tanh() >> nn.Linear(4, 1) >> unbatch
        INPUTS = [[1.0, 2.0], [-1.0, 0.5]]
    """),
    _s("dropout_in_eval_mode", """
        import torch
        from workbench import transform, batch, unbatch
        nn = transform(torch.nn)
        torch.manual_seed(5)
        pl = transform(torch.tensor) >> batch >> nn.Linear(3, 3) >> nn.Dropout(0.5) >> nn.Linear(3, 2) >> unbatch
        INPUTS = [[1.0, 2.0, 3.0], [0.0, -1.0, 1.0]]
    """),
    _s("local_module_next_to_script", """
        import torch
        import textutil_local as tu
        from textutil_local import tokenize
        from workbench import transform
        def featurize(tokens):
            return torch.tensor([tu.weight(t) for t in tokens]) * tu.FACTOR
        pl = transform(tokenize) >> transform(featurize)
        tu.FACTOR = 3.0     # mutated after import: value at save time
        INPUTS = ["a bb ccc", "dddd"]
    """, files={"textutil_local.py": """
        FACTOR = 2.0
        LENGTHS = {1: 0.5}
        def tokenize(s):
            return s.split()
        def weight(token):
            return LENGTHS.get(len(token), float(len(token)))
    """}),
    _s("same_expressions", """
        import torch
        from workbench import transform, same
        pl = same.strip().lower().split(",") >> transform(lambda p: torch.tensor([[float(len(w)) for w in p]])) \\
            >> same[:, 0] >> same.sum().item()
        INPUTS = [" A,bb ", "ccc,d,ee"]
    """),
    _s("iftrain_and_try", """
        from workbench import transform, IfTrain, Try
        augment = IfTrain(transform(lambda x: x * 100))
        safe_int = Try(transform(int), transform(lambda s: -1), ValueError)
        pl = safe_int >> augment >> transform(lambda x: x + 1)
        INPUTS = ["12", "twelve", "-3"]
    """),
    _s("large_literals", """
        from workbench import transform
        BIG = {f"w{i}": i * 0.5 for i in range(3000)}
        SEQ = list(range(5000))
        def look(i):
            return BIG[f"w{i}"] + SEQ[-i]
        pl = transform(look)
        INPUTS = [1, 2999]
    """),
    _s("decorated_callable_class", """
        import torch
        from workbench import transform
        @transform
        class Affine:
            def __init__(self, a, b):
                self.a = a
                self.b = torch.tensor(b)
            def __call__(self, x):
                return self.a * x + self.b
        step = Affine(2.0, [1.0, -1.0])
        step.a = 3.0
        pl = transform(torch.tensor) >> step
        INPUTS = [[1.0, 2.0]]
    """),
    _s("name_clash_across_modules", """
        from workbench import transform
        from clash_local import helper as other_helper, apply_other
        def helper(x):
            return x + 1
        def combine(x):
            return helper(x) * 10 + apply_other(x)
        pl = transform(combine) >> transform(other_helper)
        INPUTS = [1, 2]
    """, files={"clash_local.py": """
        def helper(x):
            return x * 1000
        def apply_other(x):
            return helper(x)
    """}),
    _s("defaults_bound_to_old_globals", """
        from workbench import transform
        LIMIT = 5
        def cap(x, limit=LIMIT, *, floor=-LIMIT):
            return max(floor, min(limit, x))
        LIMIT = 100
        pl = transform(cap)
        INPUTS = [-50, 3, 50]
    """),
    _s("batchnorm_running_stats_and_tied_weights", """
        import torch
        from workbench import transform, batch, unbatch
        torch.manual_seed(2)
        class Tied(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.a = torch.nn.Linear(3, 3, bias=False)
                self.b = torch.nn.Linear(3, 3, bias=False)
                self.b.weight = self.a.weight
                self.bn = torch.nn.BatchNorm1d(3)
            def forward(self, x):
                return self.b(self.bn(self.a(x)))
        m = transform(Tied())
        m.train()
        for _ in range(3):
            m(torch.randn(8, 3))
        pl = transform(torch.tensor) >> batch >> m >> unbatch
        INPUTS = [[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]]
    """),
    _s("bound_method_step", """
        from workbench import transform
        class Vocab:
            def __init__(self, words):
                self.index = {w: i for i, w in enumerate(words)}
            def encode(self, s):
                return [self.index.get(w, -1) for w in s.split()]
        v = Vocab(["x", "y"])
        pl = transform(v.encode)
        v.index["z"] = 9
        INPUTS = ["x y z", "q"]
    """),
    _s("large_layers_bit_exact", """
        import torch
        from workbench import transform, batch, unbatch
        torch.manual_seed(4)
        nn = transform(torch.nn)
        # big enough for BLAS to take vectorised paths that depend on memory alignment
        model = nn.Sequential(nn.Linear(512, 768), nn.GELU(), nn.Linear(768, 256), nn.LayerNorm(256))
        pl = transform(torch.as_tensor) >> batch >> model >> unbatch >> transform(torch.sum)
        g = torch.Generator().manual_seed(0)
        INPUTS_T = [torch.randn(512, generator=g) for _ in range(3)]
        INPUTS = [t.tolist() for t in INPUTS_T]
    """, batch_size=3),
    _s("enums_namedtuples_slots_and_library_objects", """
        import collections, enum
        import numpy as np
        import pkg_local_fid.sub
        from sklearn.preprocessing import StandardScaler
        from workbench import transform
        class Color(enum.Enum):
            RED = 1
            BLUE = 2
        Point = collections.namedtuple("Point", "x y")
        ORIGIN = Point(1, 2)
        calls = 3
        def count(x):
            global calls
            calls += 1
            return x
        class Model:
            __slots__ = ("k",)
            def __init__(self, k):
                self.k = k
            def __call__(self, x):
                return x * self.k + Color.BLUE.value + ORIGIN.y
        scaler = StandardScaler().fit(np.array([[1.0], [2.0], [4.0]]))
        def scale(x):
            return float(scaler.transform(np.array([[x]]))[0, 0])
        pl = transform(pkg_local_fid.sub.f) >> transform(count) >> transform(Model(2)) >> transform(scale)
        INPUTS = [1.0, 2.0, 5.0]
    """, files={"pkg_local_fid/__init__.py": "", "pkg_local_fid/sub.py": """
        RATE = 3
        def f(x):
            return x * RATE
    """}),
    _s("decorated_functions", """
        import functools
        import torch
        from workbench import transform
        @torch.no_grad()
        def double(x):
            return torch.as_tensor(x) * 2
        @functools.lru_cache(maxsize=None)
        def bump(n):
            return n + 1
        def total(t):
            return bump(int(t.sum()))
        pl = transform(double) >> transform(total)
        INPUTS = [[1.0, 2.0], [3.0, 4.5]]
    """),
    _s("recursive_transforms", """
        from workbench import transform
        @transform
        def fact(n):
            return 1 if n <= 1 else n * fact(n - 1)
        @transform
        def is_even(n):
            return True if n == 0 else is_odd(n - 1)
        @transform
        def is_odd(n):
            return False if n == 0 else is_even(n - 1)
        @transform
        def double(x):
            return 2 * x
        @transform
        def quad(x):
            return double(double(x))
        pl = fact + is_even + (quad >> is_odd)
        INPUTS = [0, 1, 5, 6]
    """),
    _s("named_outputs_default_names_and_new_markers", """
        import torch
        from workbench import transform, same
        from workbench.pipeline import Batch, Unbatch
        nn = transform(torch.nn)
        to_tensor = transform(lambda x: torch.tensor(x, dtype=torch.float32))
        torch.manual_seed(0)
        model = nn.Linear(2, 3)
        label = same.argmax().item()
        pl = (to_tensor >> Batch() >> model >> Unbatch()
              >> (label + transform(lambda t: round(float(t.max()), 4)) + (same.sum() - "total")))
        assert pl([1.0, 2.0])._fields == ("label", "out_1", "total")
        INPUTS = [[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]]
    """),
    # --- real-world objects held in notebooks (SPEC 14) ---------------------------------------------------
    _s("sklearn_pipeline_and_dataset_names", """
        import re
        import numpy as np
        from sklearn.datasets import load_wine
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from workbench import transform
        wine = load_wine()
        clf = make_pipeline(StandardScaler(), PCA(n_components=5, random_state=0),
                            LogisticRegression(max_iter=1000)).fit(wine.data, wine.target)
        scaler = StandardScaler().fit(wine.data[:, :3])
        NAME = re.compile(r"class_(\\d)", re.IGNORECASE)
        def features(x):
            return np.asarray(x, dtype=np.float64)[None]
        def predict(v):
            return clf.predict_proba(v)[0], scaler.transform(v[:, :3])[0]
        def describe(out):
            p, scaled = out
            name = wine.target_names[int(p.argmax())]
            return int(NAME.match(name).group(1)), float(p.max()), scaled.round(6).tolist()
        pl = transform(features) >> transform(predict) >> transform(describe)
        INPUTS = [list(map(float, wine.data[i])) for i in (0, 70, 150)]
    """),
    _s("tiny_bert_from_a_local_vocabulary", """
        import os
        os.environ["HF_HUB_OFFLINE"] = "1"  # nothing is downloaded: the vocabulary and weights are made here
        import torch
        from transformers import BertConfig, BertModel, BertTokenizerFast
        from workbench import transform
        here = os.path.dirname(os.path.abspath(__file__))
        torch.manual_seed(0)
        tok = BertTokenizerFast(vocab_file=os.path.join(here, "vocab.txt"))
        bert = BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)).eval()
        head = torch.nn.Linear(16, 3)
        def encode(s):
            return torch.tensor(tok(s)["input_ids"])
        def classify(ids):
            with torch.no_grad():
                return head(bert(input_ids=ids[None]).last_hidden_state[0, 0]).softmax(-1)
        pl = transform(encode) >> transform(classify)
        INPUTS = ["the striker scored", "Rates rose", "the bank goal unknownword"]
    """, files={"vocab.txt": "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "striker", "scored",
                                        "rates", "rose", "goal", "bank"]) + "\n"}, batch_size=1),
]
