"""Saving and loading models: one ``.npz`` file, never pickled.

A numnet model file is an ordinary NumPy ``.npz`` archive (a zip of ``.npy`` arrays) with

* ``__numnet__``: a ``uint8`` array holding UTF-8 JSON, the *header*::

      {"kind": "numnet-model", "format": 1, "numnet_version": "0.1.0",
       "model": <Sequential.get_config()>,
       "rng": {"model": <bit-generator state>, "layers": [<state>, ...]},
       "optimizer": <optimizer.get_config()> or null,
       "arrays": {"model": {"0.W": [[64, 128], "float32"], ...}, "optimizer": {...}},
       "metadata": {...}}

* ``model/<layer index>.<name>``: every parameter and buffer (``Sequential.state_dict()``);
* ``optimizer/<name>``: the optimiser's state (``Optimizer.state_dict()``), when saved.

The random generators' states (the model's, used for shuffling, and each layer's, used
for dropout masks) are stored as JSON, so training resumed from a file draws exactly the
random numbers it would have drawn had it never stopped.

Loading never unpickles: it rebuilds the model from the JSON description, then copies
the arrays in. This module does not import the model: the model
class registers itself here (:func:`register_model`) under the name its descriptions
carry in their ``"type"`` field (``"numnet.Sequential"``, also assumed when the field is
absent), and its layers are found in the layer registry
(:meth:`numnet.layers.Layer.lookup`). Anything wrong with the file (not a zip, truncated,
corrupt, written by a newer numnet, an array missing or of the wrong shape or dtype, an
unknown layer type) raises :class:`ModelFileError`, a :class:`ValueError`, whose message
names the file and the problem.

Reading never trusts the file: each array's ``.npy`` header is read first, and an array
that is not numeric, whose declared size differs from its entry in the archive or does
not fit in the memory available is refused before anything is allocated; every array is
then read to its end (so its checksum is checked), weights that are NaN or infinite are
refused naming the array, JSON nested more than 100 levels deep is refused, and every
header field, the model description and numnet's metadata fields are checked for type
and value (a ``classes`` list must have one entry per output of the model).

Metadata: :func:`save` takes any JSON object; these keys are numnet's (``numnet train``
writes them, ``evaluate``, ``predict`` and ``trace`` read them) and are checked when a file
is written and read: ``source`` (the dataset: an object with a ``data`` string),
``preprocessing`` (what :func:`numnet.data.preprocessing_from_config` takes),
``classes`` (distinct integers or strings, one per output), ``image_shape``, ``epochs``,
``command``, ``test`` (``loss`` and ``accuracy``) and ``interrupted``.

Saving goes through numnet's one file writer (:mod:`numnet._files`): it writes to a
temporary file in the destination's directory, flushes and fsyncs it, then renames it
onto the destination with :func:`os.replace`: an interrupted save leaves the previous file
as it was. A save stopped by an exception (``KeyboardInterrupt`` included) also removes
its temporary file; a process killed outright (``SIGKILL``, a power cut) can leave one
behind, named ``.<file name>.<random hex>.tmp`` next to the destination, which is
safe to delete. A device, a FIFO or ``-`` (standard output) is written into, never replaced, and a
directory is refused. A model whose weights are NaN or infinite is not saved.

The package's modules: ``_write`` (save), ``_read`` (load), ``_npz`` (the archive's
arrays), ``_header`` and ``_metadata`` (the checks of the header), ``_arch``
(architecture files), ``_format`` (names, the error, JSON helpers).

The API
-------
``save(model, path, optimizer=None, metadata=None)``
    Write a model (and optionally its optimiser and a JSON ``metadata`` dict); also
    ``model.save(path, ...)``.
``load(path) -> Sequential``
    The model, with its weights, buffers and random-generator states; also
    ``Sequential.load(path)``.
``load_optimizer(path) -> Optimizer | None``
    The optimiser saved alongside, with its state; ``None`` when none was saved.
``load_metadata(path) -> dict``
    The ``metadata`` dict given to :func:`save` (``{}`` when none).
``file_info(path) -> dict``
    The whole JSON header (format, numnet version, descriptions, metadata).
``load_architecture(path) -> Sequential`` / ``save_architecture(model, path)``
    A model description as a plain JSON file (freshly initialised weights).
``to_onnx(model, path)`` / ``from_onnx(path) -> Sequential``
    ONNX files, for ONNX Runtime and other frameworks (see :mod:`numnet.onnx_io`; needs
    the optional ``onnx`` package).

To resume training exactly, save the optimiser too and call ``fit`` without ``seed``
(``fit(seed=s)`` restarts every random stream from ``s``; without it the model's restored
generators continue where they stopped).

Examples
--------
>>> import numnet, numnet.io
>>> model = numnet.Sequential([numnet.Dense(4, 3)], loss="cross_entropy", seed=0)
>>> opt = numnet.optim.Adam()
>>> numnet.io.save(model, "model.npz", optimizer=opt)      # doctest: +SKIP
>>> model = numnet.io.load("model.npz")                    # doctest: +SKIP
>>> opt = numnet.io.load_optimizer("model.npz")            # doctest: +SKIP
>>> model.fit(X, y, epochs=1, optimizer=opt)               # doctest: +SKIP
"""

from __future__ import annotations

from numnet.io._arch import load_architecture
from numnet.io._format import FILE_FORMAT, MODEL_TYPES, ModelFileError, register_model
from numnet.io._read import file_info, load, load_metadata, load_optimizer
from numnet.io._write import save, save_architecture
from numnet.onnx_io import from_onnx, to_onnx  # re-exported: ONNX files (optional onnx)

__all__ = [
    "FILE_FORMAT",
    "MODEL_TYPES",
    "ModelFileError",
    "file_info",
    "from_onnx",
    "load",
    "load_architecture",
    "load_metadata",
    "load_optimizer",
    "register_model",
    "save",
    "save_architecture",
    "to_onnx",
]
