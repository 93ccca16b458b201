"""Training: :func:`fit`, :func:`evaluate`, :func:`train_step` and :class:`History`.

* :mod:`numnet.training.loop`: the loop itself, to read top to bottom;
* :mod:`numnet.training.guard`: rollback and messages when training diverges, Ctrl-C;
* :mod:`numnet.training.data`: the data checked once, validation split, batches;
* :mod:`numnet.training.options`: ``fit``'s other arguments, checked once.
* :mod:`numnet.training.parallel` and :mod:`numnet.training.replica`: what differs in a
  data-parallel run over MPI processes (``fit(..., distributed=True)``).
"""

from numnet.training.loop import EVAL_BATCH, History, evaluate, fit, train_step

__all__ = ["EVAL_BATCH", "History", "evaluate", "fit", "train_step"]
