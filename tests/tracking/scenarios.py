"""Bundle fidelity scenarios written as notebook cells: every definition, redefinition and mutation
in a cell of its own, after which the live pipeline and the loaded bundle must agree exactly.

Each scenario is ``(name, cells)``; its cells register ``CASES[name] = (pipeline, inputs)`` right
after the pipeline is built, and later cells keep changing the notebook state. All scenarios share
one kernel, so every scenario uses names of its own.
"""

from __future__ import annotations

SETUP = """\
import functools, json, os, pickle
import numpy as np
import pandas as pd
import torch
import workbench
from workbench import transform, batch, unbatch
CASES = {}
"""

SCENARIOS: list[tuple[str, list[str]]] = [
    ("constant_redefined", [
        "K1 = 3",
        "@transform\ndef mul1(x):\n    return x * K1",
        "pl_const = mul1 >> transform(lambda x: x + K1)\nCASES['constant_redefined'] = (pl_const, [1, 2.5])",
        "K1 = 100",
    ]),
    ("function_redefined", [
        "def helper2(x):\n    return x + 1",
        "@transform\ndef step2(x):\n    return helper2(x) * 2",
        "pl_fnredef = step2 >> transform(abs)\nCASES['function_redefined'] = (pl_fnredef, [3, -7])",
        "def helper2(x):\n    return x - 1",
        "@transform\ndef step2(x):\n    return 0",
    ]),
    ("mutated_containers", [
        "TABLE3 = {'a': 1}\nLIST3 = [1]",
        "@transform\ndef look3(x):\n    return TABLE3[x] + len(LIST3)",
        "CASES['mutated_containers'] = (look3, ['a', 'b'])",
        "TABLE3['b'] = 2\nLIST3.append(5)",
    ]),
    ("inplace_tensor", [
        "W4 = torch.ones(3)",
        "@transform\ndef scale4(x):\n    return x * W4",
        "CASES['inplace_tensor'] = (scale4, [torch.arange(3.0)])",
        "W4.mul_(2.5)\nW4[0] = -1.0",
    ]),
    ("closure_factory", [
        "def make_adder5(n):\n    def add(x):\n        return x + n\n    return transform(add)",
        "pl_closure = make_adder5(2) >> make_adder5(10)\nCASES['closure_factory'] = (pl_closure, [1, 5])",
        "def make_adder5(n):\n    return transform(lambda x: x)",
    ]),
    ("partial", [
        "def power6(x, p):\n    return x ** p",
        "pl_partial = transform(functools.partial(power6, p=3))\nCASES['partial'] = (pl_partial, [2, 3])",
        "def power6(x, p):\n    return -1",
    ]),
    ("dataclass_configs", [
        "from dataclasses import dataclass",
        "@dataclass\nclass Cfg7:\n    scale: float = 2.0\n    shift: float = 1.0",
        "cfg7 = Cfg7(scale=3.0)",
        "@dataclass\nclass Centre7:\n    mean: float\n    def __call__(self, x):\n        return x - self.mean",
        "@transform\ndef apply7(x):\n    return x * cfg7.scale + cfg7.shift",
        "pl_dc = apply7 >> transform(Centre7)(0.5)\nCASES['dataclass_configs'] = (pl_dc, [1.0, 4.0])",
        "cfg7.shift = -4.0",
        "@dataclass\nclass Cfg7:\n    scale: float = 50.0\n    shift: float = 60.0",
    ]),
    ("import_aliases", [
        "import torch.nn.functional as F8\nfrom math import sqrt as root8\nimport numpy as npx8",
        "@transform\ndef act8(x):\n    return F8.relu(x) * root8(4.0) + float(npx8.tanh(1.0))",
        "CASES['import_aliases'] = (act8, [torch.tensor([-1.0, 2.0])])",
    ]),
    ("helper_chain", [
        "def h9a(x):\n    return x + 1",
        "def h9b(x):\n    return h9a(x) * 2",
        "def h9c(x):\n    return h9b(x) - 3",
        "CASES['helper_chain'] = (transform(h9c), [0, 10])",
    ]),
    ("recursion", [
        "def fact10(n):\n    return 1 if n <= 1 else n * fact10(n - 1)",
        "CASES['recursion'] = (transform(fact10), [1, 6])",
    ]),
    ("class_attributes_static", [
        "class Scaler11:\n    factor = 3\n    @staticmethod\n    def base(x):\n        return x + 1\n"
        "    def __call__(self, x):\n        return self.base(x) * self.factor",
        "pl_cls = transform(Scaler11)()\nCASES['class_attributes_static'] = (pl_cls, [1, 2])",
        "Scaler11.factor = 5",
    ]),
    ("trained_weights", [
        "torch.manual_seed(0)\nlin12 = transform(torch.nn.Linear(4, 2))",
        "pl_trained = transform(lambda x: x.float()) >> batch >> lin12 >> unbatch",
        "opt12 = torch.optim.SGD(lin12.parameters(), lr=0.1)\n"
        "for _ in range(5):\n    opt12.zero_grad()\n"
        "    loss = lin12(torch.randn(8, 4)).pow(2).mean()\n    loss.backward()\n    opt12.step()",
        "CASES['trained_weights'] = (pl_trained, [torch.arange(4), torch.ones(4)])",
    ]),
    ("lookup_tables", [
        "EMB13 = np.random.RandomState(0).rand(5, 3)\n"
        "DF13 = pd.DataFrame({'k': ['a', 'b'], 'v': [1.5, 2.5]}).set_index('k')",
        "@transform\ndef look13(x):\n    return float(DF13.loc[x, 'v']) + float(EMB13[1].sum())",
        "CASES['lookup_tables'] = (look13, ['a', 'b'])",
        "EMB13[1] = 0.0",
    ]),
    ("nested_subpipelines", [
        "inner14 = transform(lambda x: x + 1) >> transform(lambda x: x * 3)",
        "pl_nested = inner14 >> (inner14 - 'again') >> transform(str)",
        "CASES['nested_subpipelines'] = (pl_nested, [0, 2])",
    ]),
    ("rollout_parallel_map", [
        "inc15 = transform(lambda x: x + 1)\ndbl15 = transform(lambda x: x * 2)",
        "pl_rpm = (inc15 + dbl15) >> (dbl15 / inc15) >> transform(list) >> ~transform(lambda v: v * 10)",
        "CASES['rollout_parallel_map'] = (pl_rpm, [1, 4])",
        "inc15 = transform(lambda x: x - 1000)",
    ]),
    ("lambda_globals", [
        "OFFSET16 = 7",
        "pl_lambda = transform(lambda x: x + OFFSET16)\nCASES['lambda_globals'] = (pl_lambda, [1])",
        "OFFSET16 = -7",
    ]),
    ("wrapped_module_instance", [
        "class Net17(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.l = torch.nn.Linear(3, 3)\n    def forward(self, x):\n        return torch.relu(self.l(x))",
        "torch.manual_seed(1)\nnet17 = transform(Net17())",
        "pl_net = transform(torch.as_tensor) >> batch >> net17 >> unbatch",
        "CASES['wrapped_module_instance'] = (pl_net, [torch.ones(3), torch.tensor([1.0, -2.0, 3.0])])",
        "with torch.no_grad():\n    net17.l.bias.add_(0.25)",
    ]),
    ("transform_torch_nn", [
        "nn18 = transform(torch.nn)",
        "torch.manual_seed(2)\npl_nn = transform(lambda x: x.float()) >> batch >> nn18.Linear(3, 4) >> nn18.Tanh() >> unbatch",
        "CASES['transform_torch_nn'] = (pl_nn, [torch.arange(3)])",
    ]),
    ("dropout", [
        "torch.manual_seed(3)\npl_drop = batch >> transform(torch.nn).Dropout(0.5) >> transform(torch.nn.Linear(3, 2)) >> unbatch",
        "CASES['dropout'] = (pl_drop, [torch.ones(3), torch.arange(3.0)])",
    ]),
    ("pipeline_magic", [
        "%%pipeline pl_magic\nMAGIC19 = 4\n@transform\ndef times19(x):\n    return x * MAGIC19\n"
        "times19 >> transform(lambda x: x - 1)",
        "CASES['pipeline_magic'] = (pl_magic, [1, 3])",
        "MAGIC19 = 9",
    ]),
    ("import_in_same_cell", [
        # IPython compiles each statement of a cell on its own, so `math.sqrt` compiles as it does
        # without the import in view; the bundle must still recognise the live function's source.
        "import math as math22\n@transform\ndef root22(x):\n    return math22.sqrt(x)\n"
        "pl_imp = root22 >> transform(lambda x: math22.floor(x))\nCASES['import_in_same_cell'] = (pl_imp, [2.0, 10.0])",
    ]),
]
