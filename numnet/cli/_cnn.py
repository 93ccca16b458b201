"""The ``cnn`` preset of ``numnet train``: the issue's convolutional network, for any image size.

``--model cnn`` is conv(1->32, 3x3)-ReLU-maxpool2-conv(32->64, 3x3)-ReLU-maxpool2-Flatten-
Dense(1600, 128)-ReLU-Dense(128, classes) on 28x28 images. ``--model cnn:C1,...,Ck,H``
has one block conv(3x3)-activation-maxpool(2) per ``C`` (its output channels) and then a
hidden Dense layer of ``H`` units: ``cnn`` is ``cnn:32,64,128``, ``cnn:16,32`` one block of
16 channels and a Dense layer of 32, ``cnn:32,64,128,256`` three blocks and 256 units.

The convolutions are unpadded ("valid", as in the issue's network) when the images stay at
least 2x2 after the last block that way; smaller images (the 8x8 digits) get padding
"same", so each block halves the image (8x8 -> 4x4 -> 2x2). The model's input is
``(1, H, W)``: the command line reshapes the flat rows it loads (``mnist``, ``digits``, a
CSV of square images), so a saved model takes ``(N, 1, H, W)`` images in Python.

The recipe (``numnet train``'s ``_cnn_recipe``): the issue's Adam 1e-3 and batch 128,
pixels scaled to [0, 1], numnet's He-normal initialisation before each ReLU, a constant
rate, and an exponential moving average of the weights after every step
(:class:`numnet.WeightAveraging`, decay 0.999, whose warm-up bound ``(1 + t) / (10 + t)``
is the one in force over the 1,407 steps of 3 epochs), which validation scores and the
model keeps. It was chosen on a validation split: 10,000 of the 60,000 training images
held out (a fixed random draw), training on the other 50,000 for 3 epochs, seeds 0-3,
validation accuracy after the last epoch:

=============================================  ==================================
recipe                                         seeds 0, 1, 2, 3 (mean)
=============================================  ==================================
cosine decay per batch (the earlier recipe)    98.65, 98.47, 98.64, 98.58 (98.59)
constant rate, weights averaged (chosen)       98.89, 98.76, 98.91, 98.87 (98.86)
=============================================  ==================================

and, on seeds 0 and 1: the constant rate alone 98.78, 98.50; cosine with the average
98.69, 98.44; constant then a linear decay over the second half, with the average 98.89,
98.62; He-uniform weights with cosine 98.67, 98.64; PyTorch's default initialisation with
cosine 98.42, 98.27. Earlier, on the command line's 6,000-image split: pixels standardised
98.45-98.62%, Glorot-uniform weights 98.50% (both with cosine).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from numnet.cli._common import CLIError
from numnet.layers import Conv2D, Dense, Dropout, Flatten, Layer, MaxPool2D

DEFAULT_WIDTHS = (32, 64, 128)
#: the batch size the preset trains with unless --batch-size says otherwise (the issue's)
BATCH_SIZE = 128
#: the decay of the weight average the preset keeps unless --weight-averaging says otherwise
WEIGHT_AVERAGING = 0.999

HELP = ("'cnn' (the issue's network: conv3x3-maxpool blocks of 32 and 64 channels, then a "
        "hidden Dense layer of 128; batch size 128 and the weights averaged over the steps "
        "unless --batch-size / --weight-averaging say otherwise), 'cnn:16,32,64' (the "
        "channels of each conv block, the last number the hidden Dense width); convolutions "
        "are padded 'same' for images too small to stay 2x2 without padding (8x8 digits)")


def is_cnn(spec: str) -> bool:
    """Whether ``--model`` names the cnn preset."""
    return spec.strip().partition(":")[0].lower() == "cnn"


def widths(spec: str) -> tuple[int, ...]:
    """The numbers of ``cnn:32,64,128`` (the default for plain ``cnn``)."""
    _, colon, rest = spec.strip().partition(":")
    if not colon:
        return DEFAULT_WIDTHS
    try:
        sizes = tuple(int(part) for part in rest.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) < 2 or min(sizes) < 1:
        raise CLIError(f"--model {spec!r}: expected cnn:C1,...,Ck,H with positive integers, "
                       "the channels of each conv block then the hidden Dense width, e.g. "
                       "cnn:32,64,128")
    return sizes


def image_input(spec: str, n_features: int, image_shape: Sequence[int] | None
                ) -> tuple[int, int, int]:
    """The model's input ``(1, H, W)``: the dataset's image shape, or a square for a CSV."""
    if image_shape is not None and math.prod(image_shape) == n_features:
        height, width = (int(d) for d in image_shape)
        return 1, height, width
    side = math.isqrt(n_features)
    if side * side != n_features:
        raise CLIError(f"--model {spec}: the cnn preset needs images, but the data has "
                       f"{n_features} features per sample, not a square number of pixels; "
                       "use an mlp preset or a JSON architecture")
    return 1, side, side


def padding_for(spec: str, height: int, width: int, blocks: int) -> str:
    """'valid' when ``blocks`` unpadded blocks leave at least 2x2, else 'same' (if that
    leaves at least 1x1)."""
    h, w = height, width
    for _ in range(blocks):
        h, w = (h - 2) // 2, (w - 2) // 2
    if min(h, w) >= 2:
        return "valid"
    h, w = height, width
    for _ in range(blocks):
        h, w = h // 2, w // 2
    if min(h, w) < 1:
        most = int(math.log2(min(height, width)))
        raise CLIError(f"--model {spec}: {height}x{width} images are too small for {blocks} "
                       f"conv blocks (each halves the image); use at most {most}")
    return "same"


def layers(spec: str, input_shape: tuple[int, int, int], n_classes: int,
           activation: type[Layer], dropout: float = 0.0) -> list[Layer]:
    """The preset's layers for images of ``input_shape`` (``dropout`` after the hidden Dense)."""
    *channels, hidden = widths(spec)
    c, h, w = input_shape
    padding = padding_for(spec, h, w, len(channels))
    stack: list[Layer] = []
    shape: tuple[int, ...] = input_shape
    for out in channels:
        block = [Conv2D(c, out, 3, padding=padding), activation(), MaxPool2D(2)]
        for layer in block:
            shape = layer.output_shape(shape)
        stack += block
        c = out
    stack += [Flatten(), Dense(math.prod(shape), hidden), activation()]
    if dropout > 0:
        stack.append(Dropout(dropout))
    return [*stack, Dense(hidden, n_classes)]
