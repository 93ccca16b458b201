"""A loss of one's own in a model file: saved under its own type name and read back as
itself, never silently as the built-in loss it derives from."""

from __future__ import annotations

import numpy as np
import pytest

from numnet import CrossEntropy, Dense, Sequential
from numnet.losses import Loss, MeanSquaredError, get_loss


class SmoothedCrossEntropy(CrossEntropy):
    """Cross-entropy against labels smoothed towards the uniform distribution (the maths is
    CrossEntropy's on smoothed probability rows)."""

    def __init__(self, smoothing: float = 0.1) -> None:
        super().__init__()
        self.smoothing = float(smoothing)

    def forward(self, prediction, target, sample_weight=None):
        classes = prediction.shape[1]
        rows = np.eye(classes)[target] if target.ndim == 1 else target
        rows = (1 - self.smoothing) * rows + self.smoothing / classes
        return super().forward(prediction, rows, sample_weight)

    def get_config(self):
        return {"smoothing": self.smoothing}


class HalfSquaredError(MeanSquaredError):
    """Half the mean squared error."""

    def forward(self, prediction, target, sample_weight=None):
        return 0.5 * super().forward(prediction, target, sample_weight)

    def backward(self):
        return 0.5 * super().backward()


def test_a_subclass_of_a_builtin_loss_is_read_back_as_itself(tmp_path):
    model = Sequential([Dense(4, 3)], loss=SmoothedCrossEntropy(0.2), seed=0)
    assert SmoothedCrossEntropy.type_name == f"{__name__}.SmoothedCrossEntropy"
    assert CrossEntropy.type_name == "cross_entropy"  # numnet's own keep their names
    assert model.get_config()["loss"] == {"type": SmoothedCrossEntropy.type_name,
                                          "config": {"smoothing": 0.2}}
    model.save(tmp_path / "smooth.npz")
    loaded = Sequential.load(tmp_path / "smooth.npz")
    assert type(loaded.loss) is SmoothedCrossEntropy and loaded.loss.smoothing == 0.2
    x, y = np.random.default_rng(0).standard_normal((5, 4)), np.arange(5) % 3
    assert loaded.evaluate(x, y)["loss"] == pytest.approx(model.evaluate(x, y)["loss"])
    plain = Sequential([Dense(4, 3)], loss="cross_entropy", seed=0)
    assert type(Sequential.from_config(plain.get_config()).loss) is CrossEntropy


def test_a_loss_without_a_name_is_registered_by_its_module():
    model = Sequential([Dense(4, 1)], loss=HalfSquaredError(), seed=0)
    rebuilt = Sequential.from_config(model.get_config())
    assert type(rebuilt.loss) is HalfSquaredError
    assert isinstance(get_loss(HalfSquaredError.type_name), HalfSquaredError)


def test_a_loss_that_cannot_be_described_is_refused_when_saved(tmp_path):
    class Local(MeanSquaredError):  # defined in a function: not registered
        pass

    model = Sequential([Dense(4, 1)], loss=Local(), seed=0)
    with pytest.raises(ValueError, match="loss Local.* cannot be described"):
        model.save(tmp_path / "local.npz")
    assert not (tmp_path / "local.npz").exists()


def test_bad_loss_arguments_in_a_description():
    config = Sequential([Dense(4, 3)], loss=SmoothedCrossEntropy(), seed=0).get_config()
    config["loss"]["config"] = {"smoothness": 1}
    with pytest.raises(ValueError, match="SmoothedCrossEntropy.*bad arguments"):
        Sequential.from_config(config)


def test_registry_keys():
    assert Loss.registry[SmoothedCrossEntropy.type_name] is SmoothedCrossEntropy
    assert Loss.registry["cross_entropy"] is CrossEntropy
