"""The registries of layers, losses and graph nodes: names, clashes, old names, and the
gradient checks every registered class must pass."""

from __future__ import annotations

import json

import numpy as np
import pytest

import numnet
from numnet import gradcheck
from numnet.layers import Dense, Layer, Mul, Node, ReLU
from numnet.layers.base import GradCheckCase
from numnet.losses import Loss, MeanSquaredError
from numnet.model import Sequential


@pytest.fixture
def clean_registries():
    """Put the registries back as they were after a test that registers classes."""
    saved = [(registry, dict(registry))
             for registry in (Layer.registry, Loss.registry, Node.registry)]
    yield
    for registry, content in saved:
        registry.clear()
        registry.update(content)


def _scale(name: str | None = None, module: str = "mypackage.layers") -> type[Layer]:
    """A fresh layer class ``ProbeScale`` as if defined in ``module`` (registered on
    creation); a name no other test module gives a layer, so bare-name lookups here cannot
    meet another module's class."""

    def forward(self, x, training=False):
        return 2 * x

    def backward(self, grad_out):
        return 2 * grad_out

    namespace = {"__module__": module, "__qualname__": "ProbeScale", "forward": forward,
                 "backward": backward}
    kwargs = {} if name is None else {"name": name}
    return type("ProbeScale", (Layer,), namespace, **kwargs)


# -- what every registered class must pass -----------------------------------------------------
def test_every_registered_layer_loss_and_node_passes_its_gradient_checks():
    """Runs on whatever is registered once the test modules are imported, so a layer added
    anywhere (in numnet, or in a test file such as test_swish.py) is checked, and a
    registered layer that gives no gradient-check cases fails here."""
    checks = {"layer": gradcheck.check_layer_class, "loss": gradcheck.check_loss_class,
              "node": gradcheck.check_node_class}
    failures, checked = [], []
    for kind, classes in gradcheck.registered_classes().items():
        for cls in classes:
            try:
                worst = checks[kind](cls)
            except gradcheck.GradientCheckError as exc:
                failures.append(str(exc))
                continue
            checked.append(cls)
            assert max(worst.values()) < 1e-6
    assert not failures, "\n".join(failures)
    assert {Dense, ReLU, MeanSquaredError, Mul} <= set(checked)


def test_every_builtin_layer_is_exported_and_checked_in_both_modes():
    builtins = [cls for name, cls in Layer.registry.items() if name.startswith("numnet.")]
    assert len(builtins) >= 11
    for cls in builtins:
        assert getattr(numnet, cls.__name__) is cls, f"{cls.__name__} is not in numnet"
        assert cls.__name__ in numnet.layers.__all__
        modes = {mode for case in cls.gradcheck_cases() for mode in case.modes}
        assert modes == {True, False}, cls


def test_a_registered_layer_without_cases_fails_the_check(clean_registries):
    scale = _scale()
    assert Layer.registry["mypackage.layers.ProbeScale"] is scale
    with pytest.raises(gradcheck.GradientCheckError,
                       match=r"mypackage\.layers\.ProbeScale .*gives no gradient-check cases"):
        gradcheck.check_layer_class(scale)
    scale.gradcheck_cases = classmethod(  # type: ignore[method-assign]
        lambda cls: [GradCheckCase(cls(), np.ones((2, 3)))])
    assert gradcheck.check_layer_class(scale)["train.input"] < 1e-6


def test_a_wrong_gradient_fails_the_class_check(clean_registries):
    scale = _scale()
    scale.backward = lambda self, grad_out: 3 * grad_out  # type: ignore[method-assign]
    scale.gradcheck_cases = classmethod(  # type: ignore[method-assign]
        lambda cls: [GradCheckCase(cls(), np.ones((2, 3)), modes=(False,))])
    with pytest.raises(gradcheck.GradientCheckError, match="training=False"):
        gradcheck.check_layer_class(scale)


# -- names ------------------------------------------------------------------------------------
def test_builtins_are_registered_under_the_numnet_namespace():
    assert Dense.type_name == "numnet.Dense" and Layer.registry["numnet.Dense"] is Dense
    assert Mul.type_name == "numnet.Mul"
    assert Layer.lookup("numnet.ReLU") is ReLU
    config = Sequential([Dense(2, 3), ReLU()]).get_config()
    assert [entry["type"] for entry in config["layers"]] == ["numnet.Dense", "numnet.ReLU"]
    assert config["type"] == "numnet.Sequential"


def test_a_user_layer_is_named_by_its_module_and_qualified_name(clean_registries):
    assert _scale().type_name == "mypackage.layers.ProbeScale"
    assert _scale(name="mine.Scale", module="__main__").type_name == "mine.Scale"


def test_a_user_class_named_dense_never_replaces_numnet_dense(clean_registries):
    namespace = {"__module__": "__main__", "__qualname__": "Dense"}
    user = type("Dense", (Layer,), namespace)
    assert user.type_name == "__main__.Dense"
    assert Layer.registry["numnet.Dense"] is Dense
    assert Layer.lookup("Dense") is Dense  # a bare name in an old file means numnet's


@pytest.mark.parametrize("name, message", [
    ("numnet.Dense", "the 'numnet.' namespace is numnet's own"),
    ("Scale", "must be namespaced"),
    (".Scale", "must be namespaced"),
])
def test_bad_or_reserved_names_are_refused(clean_registries, name, message):
    with pytest.raises(ValueError, match=message):
        _scale(name=name)


def test_a_name_taken_by_another_class_is_an_error(clean_registries):
    _scale(name="mine.Scale", module="one")
    with pytest.raises(ValueError, match=r"layer type name 'mine\.Scale' is already taken by "
                                         r"one\.ProbeScale; give two\.ProbeScale a name of its "
                                         r"own"):
        _scale(name="mine.Scale", module="two")


def test_defining_the_same_class_again_replaces_it(clean_registries):
    """A notebook cell run twice, or a module reloaded, defines the class anew."""
    first, second = _scale(), _scale()
    assert first is not second and Layer.registry["mypackage.layers.ProbeScale"] is second


def test_private_local_and_opted_out_classes_are_not_registered(clean_registries):
    class Local(Layer):
        pass

    class Kept(Layer, register=False):
        pass

    assert Local.type_name is None and Kept.type_name is None
    assert Local not in Layer.registry.values() and Kept not in Layer.registry.values()
    with pytest.raises(ValueError, match=r"layer 1 .*Kept\(\) cannot be described: its class "
                                         "is not registered"):
        Sequential([Dense(2, 2), Kept()]).get_config()


def test_bare_names_of_old_files_still_load(clean_registries):
    old = {"format": 1, "layers": [{"type": "Dense", "config": {"in_features": 2,
                                                                "out_features": 3}},
                                   {"type": "ReLU"}, {"type": "ProbeScale"}]}
    scale = _scale()  # a user's layer, saved by its bare class name before namespaces
    model = Sequential.from_config(json.loads(json.dumps(old)))
    assert [type(layer) for layer in model.layers] == [Dense, ReLU, scale]
    _scale(module="otherpackage")
    with pytest.raises(ValueError, match=r"layer type 'ProbeScale' is ambiguous: it could be any "
                                         r"of \['mypackage\.layers\.ProbeScale', "
                                         r"'otherpackage\.ProbeScale'\]"):
        Sequential.from_config(old)
    with pytest.raises(ValueError, match=r"layer 0: unknown layer type 'numnet\.Conv9d'"):
        Sequential.from_config({"layers": [{"type": "numnet.Conv9d"}]})


def test_loss_and_node_names_clash_too(clean_registries):
    with pytest.raises(ValueError, match="loss name 'mse' is already taken by "
                                         "numnet.losses.MeanSquaredError"):
        type("MyMSE", (Loss,), {"name": "mse", "__module__": "mine"})
    with pytest.raises(ValueError, match="graph node type name 'numnet.Mul' is already taken"):
        type("Mul", (Node,), {"__module__": "numnet.mine", "__qualname__": "Mul"})
    custom = type("Hinge", (Loss,), {"name": "hinge", "__module__": "mine"})
    assert isinstance(numnet.losses.get_loss("hinge"), custom)


def test_an_unknown_layer_of_ones_own_says_to_import_its_module():
    """A model file names a user's layer by module: loading it where that module was not
    imported says which module to import (numnet never imports modules a file names)."""
    with pytest.raises(ValueError, match=r"unknown layer type 'mylayers\.Linear'.*"
                                         r"import mylayers"):
        Sequential.from_config({"layers": [{"type": "mylayers.Linear"}]})
    with pytest.raises(ValueError, match=r"'__main__\.Cube'; it was defined in a script"):
        Sequential.from_config({"layers": [{"type": "__main__.Cube"}]})
    with pytest.raises(ValueError) as info:
        Sequential.from_config({"layers": [{"type": "numnet.Conv9d"}]})
    assert "import" not in str(info.value)
