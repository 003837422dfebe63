"""transform() on every kind of object, and what the wrapped objects keep."""

import copy
import dataclasses
import pickle

import cloudpickle
import pytest
import torch

from workbench import FunctionTransform, Transform, batch, same, step_name, transform, unbatch
from workbench.transform import ModuleProxy

nn = transform(torch.nn)


def test_function_decorator_and_call():
    @transform
    def square(x):
        """Squares."""
        return x * x

    assert isinstance(square, FunctionTransform)
    assert square(4) == 16
    assert square.__name__ == "square" and square.__doc__ == "Squares."
    assert square._wb_title() == "square"


def test_lambda_title_shows_its_source():
    t = transform(lambda x: x + 1)
    assert t(1) == 2
    assert t._wb_title() == "lambda x: x + 1"


def test_builtin_classes_and_functions_are_functions():
    assert transform(int)("12") == 12
    assert transform(str)(12) == "12"
    assert torch.equal(transform(torch.tensor)([1, 2]), torch.tensor([1, 2]))


def test_callable_class_decorator_makes_instances_transforms():
    @transform
    class Scale:
        factor_default = 3

        def __init__(self, factor=None):
            self.factor = factor or self.factor_default

        def __call__(self, x):
            return x * self.factor

    s = Scale(2)
    assert isinstance(s, Transform) and isinstance(s, Scale)
    assert s(5) == 10 and Scale()(5) == 15
    assert Scale.__name__ == "Scale" and Scale.__qualname__.endswith("Scale")
    assert (s >> s)(1) == 4
    assert s._wb_title() == "Scale"


def test_class_without_call_is_a_constructor_step():
    @dataclasses.dataclass
    class Point:
        x: int

    t = transform(Point)
    assert isinstance(t, FunctionTransform) and t(3) == Point(3)


def test_torch_module_class_and_instance_stay_modules():
    layer = nn.Linear(3, 2)
    assert isinstance(layer, torch.nn.Linear) and isinstance(layer, Transform)
    assert set(layer.state_dict()) == {"weight", "bias"}
    assert layer.in_features == 3

    plain = torch.nn.Linear(3, 2)
    weight = plain.weight
    wrapped = transform(plain)
    assert wrapped is plain and wrapped.weight is weight
    assert isinstance(wrapped, Transform) and type(wrapped).__name__ == "Linear"
    out = (wrapped >> transform(torch.relu))(torch.ones(1, 3))
    assert torch.equal(out, torch.relu(plain(torch.ones(1, 3))))


def test_user_module_class_decorated():
    @transform
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x)

    net = Net()
    assert isinstance(net, torch.nn.Module) and isinstance(net, Transform)
    assert list(dict(net.named_parameters())) == ["fc.weight", "fc.bias"]
    assert net.infer_apply(torch.zeros(1, 4)).shape == (1, 2)


def test_whole_module_proxy():
    assert isinstance(nn, ModuleProxy)
    assert isinstance(nn.ReLU(), Transform)
    functional = transform(torch.nn.functional)
    assert isinstance(functional.relu, FunctionTransform)
    assert torch.equal(functional.relu(torch.tensor([-1.0, 2.0])), torch.tensor([0.0, 2.0]))
    assert nn.Linear is nn.Linear  # cached: one wrapped class per original
    with pytest.raises(AttributeError):
        nn.NoSuchLayer


def test_multi_argument_functions_unpack_tuples():
    add = transform(lambda a, b: a + b)
    pl = (transform(lambda x: x * 10) + transform(lambda x: x)) >> add
    assert pl.infer_apply(2) == 22

    class Bilinear(torch.nn.Module):
        def forward(self, a, b):
            return a * b

    mul = transform(Bilinear())
    assert torch.equal((transform(torch.ones) + transform(torch.ones) >> mul).infer_apply(2), torch.ones(2))


def test_transform_rejects_non_callables():
    with pytest.raises(TypeError, match="transform\\(\\) needs a function"):
        transform(3)


def test_transform_is_idempotent():
    t = transform(abs)
    assert transform(t) is t


def test_same_records_attribute_call_and_index():
    assert same.lower().infer_apply("ABC") == "abc"
    assert same.split(",").infer_apply("a,b") == ["a", "b"]
    assert torch.equal(same[:, 0].infer_apply(torch.arange(6).reshape(3, 2)), torch.tensor([0, 2, 4]))
    assert same.shape.infer_apply(torch.zeros(2, 5)) == (2, 5)
    assert same.strip().upper()._wb_title() == "same.strip().upper()"
    assert same[1:, ::2]._wb_title() == "same[1:, ::2]"
    with pytest.raises(AttributeError):
        same._private


def test_copy_and_named_copy_of_layers_share_weights():
    layer = nn.Linear(2, 2)
    named = layer - "head"
    assert step_name(named) == "head" and step_name(layer) is None
    assert named.weight is layer.weight


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps])
def test_pickling_round_trips(dumps):
    pl = transform(torch.tensor) >> batch >> nn.Linear(2, 3) >> unbatch >> (same.sum() - "total")
    back = pickle.loads(dumps(pl))
    x = [1.0, 2.0]
    assert torch.equal(back.infer_apply(x), pl.infer_apply(x))
    assert step_name(back["total"]) == "total"
    assert isinstance(back[2], torch.nn.Linear) and isinstance(back[2], Transform)


def test_lambdas_pickle_with_cloudpickle():
    t = transform(lambda x: x * 3) - "triple"
    back = pickle.loads(cloudpickle.dumps(t))
    assert back(2) == 6 and step_name(back) == "triple"


def test_deepcopy_gives_independent_weights():
    layer = nn.Linear(2, 2)
    clone = copy.deepcopy(layer)
    assert isinstance(clone, Transform)
    with torch.no_grad():
        clone.weight.zero_()
    assert not torch.equal(clone.weight, layer.weight)
