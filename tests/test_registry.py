"""The registry of named pipelines."""

import pytest

from workbench import identity, registry, transform


def test_register_get_names_and_listeners():
    seen = []
    registry.subscribe(seen.append)
    try:
        registry.register("reg_a", identity)
        registry.register("reg_b", transform(abs))
        assert registry.get("reg_a") is identity
        assert registry.names()[-2:] == ["reg_a", "reg_b"]
        registry.unregister("reg_a")
        assert "reg_a" not in registry.names()
        assert seen[0][-1] == "reg_a" and "reg_a" not in seen[-1]
    finally:
        registry.unsubscribe(seen.append)
        registry.unregister("reg_b")


def test_errors_are_clear():
    with pytest.raises(KeyError, match="no pipeline named 'missing'"):
        registry.get("missing")
    with pytest.raises(ValueError, match="must be a Python identifier"):
        registry.register("not a name", identity)
    with pytest.raises(TypeError, match="not a workbench pipeline"):
        registry.register("x", 3)
