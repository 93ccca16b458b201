"""Class labels: one-hot rows, and a :class:`LabelEncoder` for labels of any kind.

Models want class indices ``0..K-1``; data files hold labels such as ``5, 7, 9``, ``-1, 1``
or ``setosa, versicolor``. :class:`LabelEncoder` maps them to indices and back, and its
classes go into a model file as JSON (the ``numnet`` command line stores them as the
model's ``classes``). :func:`one_hot` / :func:`from_one_hot` turn indices into one-hot rows
and scores back into indices. Whole arrays at a time: Python loops run over the distinct
labels only, never over the samples.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import numpy.typing as npt

from numnet._checks import first_bad_index
from numnet.data.scaling import NotFittedError

__all__ = ["LabelEncoder", "UnknownLabelError", "from_one_hot", "one_hot"]

#: how many classes an error message lists before it abbreviates
_SHOWN_CLASSES = 20


def _check_labels(labels: np.ndarray, name: str) -> np.ndarray:
    """Integer labels as int64 (1-D); integral floats accepted, anything else refused."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(
            f"{name}: labels must be a 1-D array of class indices, got shape {labels.shape}"
            + (" (use labels.ravel() for a column vector)" if labels.ndim == 2 else "")
        )
    if labels.dtype.kind in "iu":
        return labels.astype(np.int64, copy=False)
    if labels.dtype.kind != "f":
        raise ValueError(f"{name}: labels must be integers, got dtype {labels.dtype}")
    bad = np.flatnonzero(~np.isfinite(labels) | (labels != np.trunc(labels)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{name}: label {labels[i]} at index {i} is not an integer class index"
        )
    return labels.astype(np.int64)


def one_hot(
    labels: np.ndarray, num_classes: int | None = None, dtype: np.dtype | type = np.float32
) -> np.ndarray:
    """Encode class indices as one-hot rows.

    Parameters
    ----------
    labels : array_like of int, shape (N,)
        Class indices in ``[0, num_classes)``. Floats are accepted when integral.
    num_classes : int, optional
        Number of classes; default ``labels.max() + 1``.
    dtype : dtype, default numpy.float32
        dtype of the result.

    Returns
    -------
    numpy.ndarray, shape (N, num_classes)
        ``out[i, labels[i]] == 1``, zeros elsewhere.

    Raises
    ------
    ValueError
        For a label that is negative, not an integer or not below ``num_classes``: the
        message names the offending value and its index.
    """
    labels = _check_labels(labels, "one_hot")
    negative = np.flatnonzero(labels < 0)
    if negative.size:
        i = int(negative[0])
        raise ValueError(f"one_hot: label {labels[i]} at index {i} is negative")
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    elif isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"one_hot: num_classes must be an int, got {num_classes!r}")
    too_big = np.flatnonzero(labels >= num_classes)
    if too_big.size:
        i = int(too_big[0])
        raise ValueError(
            f"one_hot: label {labels[i]} at index {i} is out of range for "
            f"num_classes={num_classes} (expected 0..{num_classes - 1})"
        )
    out = np.zeros((labels.size, num_classes), dtype=dtype)
    out[np.arange(labels.size), labels] = 1
    return out


def from_one_hot(Y: np.ndarray) -> np.ndarray:
    """Class indices from one-hot rows or per-class scores (the row-wise argmax).

    Parameters
    ----------
    Y : array_like, shape (N, C)
        One-hot rows, probabilities or scores.

    Returns
    -------
    numpy.ndarray of int64, shape (N,)

    Raises
    ------
    ValueError
        If ``Y`` is not 2-D, has no columns, or contains NaN (the row is named).
    """
    Y = np.asarray(Y)
    if Y.ndim != 2:
        raise ValueError(f"from_one_hot: expected a 2-D array (N, classes), got shape {Y.shape}")
    if Y.shape[1] == 0:
        raise ValueError("from_one_hot: Y has 0 columns, so there is no class to pick")
    if Y.dtype.kind == "f":
        nan_rows = np.flatnonzero(np.isnan(Y).any(axis=1))
        if nan_rows.size:
            raise ValueError(f"from_one_hot: row {int(nan_rows[0])} contains NaN")
    return np.asarray(Y.argmax(axis=1), dtype=np.int64)


# ------------------------------------------------------------------------ label encoder


class UnknownLabelError(ValueError):
    """A label that is not one of a :class:`LabelEncoder`'s classes.

    Attributes
    ----------
    label : object
        The first unknown label (in sorted order), as a Python value.
    classes : list
        The known classes, in index order.
    """

    def __init__(self, label: Any, classes: list[Any], where: str = "LabelEncoder") -> None:
        self.label, self.classes, self.where = label, classes, where
        shown: Any = classes
        if len(classes) > _SHOWN_CLASSES:
            listed = ", ".join(map(repr, classes[:_SHOWN_CLASSES]))
            shown = f"[{listed}, ...] ({len(classes)} classes)"
        super().__init__(f"{where}: label {label!r} is not one of the known classes {shown}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable with its attributes
        return type(self), (self.label, self.classes, self.where)


class LabelEncoder:
    """Map class labels of any kind to indices ``0..K-1`` and back (as scikit-learn's).

    ``fit`` takes the sorted distinct labels as :attr:`classes_`: numbers in increasing
    order (negative and sparse ones too: ``-1, 3, 10`` become ``0, 1, 2``), text in
    alphabetical (code point) order. Labels may be

    * integers, or floats that are whole numbers (``5.0`` is the class ``5``: labels read
      from a numeric CSV column); a float that is not whole, NaN or infinite is refused,
      as a class label it is almost always a regression target by mistake;
    * strings (``str`` or ``numpy.str_``);
    * booleans, or other hashable values of one type that sort (``datetime.date``, ...).

    It takes no parameters: fit it with :meth:`fit`, or rebuild a fitted encoder with
    :meth:`from_config`.

    Attributes
    ----------
    classes_ : numpy.ndarray, shape (K,)
        The classes in index order: int64 for numbers, str for text, else their own dtype.

    Examples
    --------
    >>> encoder = LabelEncoder().fit(["virginica", "setosa", "versicolor", "setosa"])
    >>> encoder.classes_.tolist()
    ['setosa', 'versicolor', 'virginica']
    >>> encoder.transform(["setosa", "virginica"]).tolist()
    [0, 2]
    >>> encoder.inverse_transform([1, 0]).tolist()
    ['versicolor', 'setosa']
    >>> LabelEncoder.from_config(encoder.get_config()).transform(["versicolor"]).tolist()
    [1]
    """

    def __init__(self) -> None:
        self.classes_: np.ndarray | None = None
        self._index: dict[Any, int] = {}

    # -- fitting ----------------------------------------------------------------------
    def fit(self, y: npt.ArrayLike) -> LabelEncoder:
        """Take the sorted distinct labels of ``y`` as the classes.

        Parameters
        ----------
        y : array_like
            Labels, usually shape ``(N,)`` (any shape is read as a flat list).

        Returns
        -------
        LabelEncoder
            ``self``.

        Raises
        ------
        ValueError
            For a float label that is not a whole number, labels that cannot be compared
            (e.g. numbers mixed with text), or unhashable labels; the message names them.
        """
        labels = _label_array(y, "LabelEncoder.fit")
        self._set_classes(_sorted_unique(labels, "LabelEncoder.fit")[0], "LabelEncoder.fit")
        return self

    def fit_transform(self, y: npt.ArrayLike) -> np.ndarray:
        """:meth:`fit` to ``y``, then :meth:`transform` it (in one sort).

        Returns
        -------
        numpy.ndarray of int64, shape of ``y``
        """
        shape = np.shape(y)
        labels = _label_array(y, "LabelEncoder.fit_transform")
        classes, inverse = _sorted_unique(labels, "LabelEncoder.fit_transform")
        self._set_classes(classes, "LabelEncoder.fit_transform")
        return inverse.astype(np.int64).reshape(shape)

    # -- encoding and decoding ----------------------------------------------------------
    def transform(self, y: npt.ArrayLike) -> np.ndarray:
        """Class indices of the labels ``y``.

        Parameters
        ----------
        y : array_like
            Labels of the kinds the encoder was fitted on (a whole-number float matches
            the integer class, ``5.0`` is ``5``).

        Returns
        -------
        numpy.ndarray of int64, shape of ``y``

        Raises
        ------
        UnknownLabelError
            (a ValueError) for a label that is not one of :attr:`classes_`, naming it and
            the known classes.
        NotFittedError
            Before :meth:`fit`.
        """
        self._fitted("transform")
        shape = np.shape(y)
        labels = _label_array(y, "LabelEncoder.transform")
        distinct, inverse = _sorted_unique(labels, "LabelEncoder.transform")
        codes = np.empty(distinct.size, dtype=np.int64)
        for i, label in enumerate(distinct.tolist()):  # the distinct labels, not the samples
            index = self._index.get(label)
            if index is None:
                raise UnknownLabelError(label, self._class_list(), "LabelEncoder.transform")
            codes[i] = index
        encoded: np.ndarray = codes[inverse].reshape(shape)
        return encoded

    def inverse_transform(self, indices: npt.ArrayLike) -> np.ndarray:
        """The labels of class indices (the inverse of :meth:`transform`).

        Parameters
        ----------
        indices : array_like of int
            Values in ``0..K-1``, any shape (e.g. ``model.predict(X)``); integral floats
            are accepted.

        Returns
        -------
        numpy.ndarray
            ``classes_[indices]``, same shape as ``indices``.

        Raises
        ------
        ValueError
            For an index that is not an integer or is out of range (named with its position).
        """
        classes = self._fitted("inverse_transform")
        where = "LabelEncoder.inverse_transform"
        idx = np.asarray(indices)
        if idx.dtype.kind == "f":
            bad = ~np.isfinite(idx) | (idx != np.trunc(idx))
            if bad.any():
                raise ValueError(f"{where}: index {idx[bad][0]} at position "
                                 f"{_position(bad)} is not an integer class index")
            idx = idx.astype(np.int64)
        elif idx.dtype.kind not in "iu":
            raise ValueError(f"{where}: class indices must be integers, got dtype {idx.dtype}")
        outside = (idx < 0) | (idx >= classes.size)
        if outside.any():
            raise ValueError(f"{where}: index {idx[outside][0]} at position "
                             f"{_position(outside)} is out of range for {classes.size} "
                             f"classes (expected 0..{classes.size - 1})")
        labels: np.ndarray = classes[idx]
        return labels

    # -- serialisation ----------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """``{"classes": [...]}``, the classes as Python values (``int``, ``str``, ...) in
        index order: JSON-serialisable for numeric and text labels.

        :meth:`from_config` rebuilds an encoder that maps labels exactly as this one.
        """
        return {"classes": self._class_list()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LabelEncoder:
        """A fitted encoder from :meth:`get_config`'s dict.

        The classes keep their order (index ``i`` is ``config["classes"][i]``), so an
        encoder can also be given classes in an order of one's own.

        Raises
        ------
        ValueError
            If ``config`` has no list of classes, or a class appears twice.
        """
        where = "LabelEncoder.from_config"
        classes = config.get("classes") if isinstance(config, dict) else None
        if not isinstance(classes, (list, tuple)):
            raise ValueError(f"{where}: expected a dict with a list of 'classes', got "
                             f"{config!r}")
        encoder = cls()
        encoder._set_classes(_label_array(list(classes), where), where)
        return encoder

    def __repr__(self) -> str:
        if self.classes_ is None:
            return "LabelEncoder()"
        return f"LabelEncoder(classes_={self._class_list()!r})"

    # -- internals --------------------------------------------------------------------
    def _set_classes(self, classes: np.ndarray, where: str) -> None:
        """Adopt ``classes`` (in index order) and the lookup from label to index."""
        index: dict[Any, int] = {}
        for i, label in enumerate(classes.tolist()):
            try:
                if label in index:
                    raise ValueError(f"{where}: the class {label!r} is given twice")
            except TypeError:  # a list or a dict among object labels
                raise ValueError(f"{where}: labels must be hashable, got {label!r}") from None
            index[label] = i
        self.classes_, self._index = classes, index

    def _class_list(self) -> list[Any]:
        return list(self._fitted("get_config").tolist())

    def _fitted(self, method: str) -> np.ndarray:
        if self.classes_ is None:
            raise NotFittedError(f"LabelEncoder.{method}: this LabelEncoder is not fitted yet; "
                                 "call fit(y) first")
        return self.classes_


def _label_array(y: Any, where: str) -> np.ndarray:
    """The labels as a flat array of one kind: int64 for integers and whole-number floats,
    else str, bool or the values' own dtype."""
    if isinstance(y, np.ndarray):
        array = y
    else:
        try:
            array = np.asarray(y)
        except ValueError:  # ragged nested lists
            array = np.empty(0, dtype=object)
        if array.dtype.kind in "USO":  # NumPy would turn [1, "a"] into ["1", "a"]
            array = np.asarray(y, dtype=object)
    flat = array.reshape(-1)
    if flat.dtype == object:
        flat = _narrow(flat, where)
    kind = flat.dtype.kind
    if kind in "iu":
        if kind == "u" and flat.size and flat.max() > np.iinfo(np.int64).max:
            raise ValueError(f"{where}: label {flat.max()} does not fit in int64")
        return flat.astype(np.int64, copy=False)
    if kind == "f":
        return _whole_numbers(flat, where)
    if kind == "c":
        raise ValueError(f"{where}: labels must be integers, whole-number floats or "
                         f"strings, got dtype {flat.dtype}")
    return flat


def _narrow(values: np.ndarray, where: str) -> np.ndarray:
    """An object array of one kind of Python value as an array of that kind."""
    items = values.tolist()
    if not items:
        return np.empty(0, dtype=np.int64)
    types = {type(item) for item in items}
    if all(issubclass(t, (bool, np.bool_)) for t in types):
        return np.array(items, dtype=bool)
    if all(issubclass(t, (str, np.str_)) for t in types):
        return np.array(items, dtype=str)
    if all(issubclass(t, numbers.Real) and not issubclass(t, (bool, np.bool_)) for t in types):
        integral = all(issubclass(t, numbers.Integral) for t in types)
        try:
            return np.array(items, dtype=np.int64 if integral else np.float64)
        except OverflowError:
            raise ValueError(f"{where}: a label does not fit in int64 "
                             f"(largest: {max(items)})") from None
    return values


def _whole_numbers(y: np.ndarray, where: str) -> np.ndarray:
    """Float labels as int64: each must be a whole number within int64's range."""
    bad = ~np.isfinite(y) | (y != np.round(y))
    if bad.any():
        raise ValueError(f"{where}: labels must be whole numbers (class labels), found "
                         f"{y[bad][:1]}")
    huge = np.abs(y) >= 2.0 ** 63
    if huge.any():
        raise ValueError(f"{where}: label {y[huge][0]:g} does not fit in int64")
    return y.astype(np.int64)


def _sorted_unique(labels: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct labels and, for each label, the index of its value among them."""
    try:
        distinct, inverse = np.unique(labels, return_inverse=True)
    except TypeError:  # e.g. numbers and text in one object array
        kinds = sorted({type(label).__name__ for label in labels.tolist()})
        raise ValueError(f"{where}: labels of types {', '.join(kinds)} cannot be sorted "
                         "into classes; give labels of one type") from None
    return distinct, inverse.reshape(-1)


def _position(mask: np.ndarray) -> tuple[int, ...] | int:
    """Where the first True of ``mask`` is: an int for 1-D arrays, else a tuple."""
    index = first_bad_index(mask)
    return index[0] if len(index) == 1 else index
