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


def test_lookup_finds_registered_pipelines_first_then_variables():
    from workbench import batch
    from workbench.errors import PipelineNotFound

    registered, variable = transform(abs), transform(round)
    registry.register("look_a", registered)
    try:
        assert registry.lookup("look_a", {"look_a": variable}) == (registered, "registry")
        assert registry.lookup("look_b", {"look_b": variable}) == (variable, "variable")
        with pytest.raises(PipelineNotFound) as caught:
            registry.lookup("steps", {"steps": 3, "adder": variable, "marker": batch, "_hidden": variable})
        message = str(caught.value)
        assert message.startswith("no pipeline named 'steps' ('steps' is an int, not a pipeline); ")
        assert "look_a" in caught.value.registered and "registered pipelines: " in message
        assert caught.value.variables == ["adder"] and message.endswith("pipeline variables: adder")
        assert isinstance(caught.value, LookupError)
    finally:
        registry.unregister("look_a")
