"""The parameters and attributes both estimators document (their docstrings join these)."""

SHARED_PARAMETERS = """
    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
        Widths of the hidden layers of the default network (a multi-layer perceptron);
        ``()`` for none (logistic regression). Ignored when ``model`` is given.
    model : dict, str, path, Sequential or callable, optional
        The network instead of the perceptron: a description as
        :meth:`numnet.Sequential.get_config` or an architecture JSON file gives (any
        registered layers: convolutions, pooling, normalisation...), the path of such a
        file (read at fit time; ``save`` stores the description), a ``Sequential``
        used as a template (its architecture, freshly initialised), or a function
        ``(n_features, n_outputs) -> Sequential or list of layers`` (``n_features`` is the
        per-sample shape for ``X`` of more than two axes). The estimator builds it with its
        own loss, ``dtype`` and seed; its last layer must give logits (no softmax), one per
        output.
    activation : {"relu", "tanh", "sigmoid", "logistic", "leaky_relu", "identity"}, \
default="relu"
        Activation after each hidden layer of the perceptron.
    dropout : float in [0, 1), default=0.0
        Dropout after each hidden activation of the perceptron (0: none).
    batch_norm : bool, default=False
        BatchNorm1d between each hidden Dense layer of the perceptron and its activation.
    optimizer : {"adam", "adamw", "sgd", "momentum", "nesterov", "rmsprop"}, default="adam"
        numnet's optimisers (``"momentum"``/``"nesterov"``: SGD with momentum 0.9).
    lr : float, default=1e-3
        Learning rate (scikit-learn's ``learning_rate_init``).
    weight_decay : float, default=0.0
        The optimiser's weight decay: an L2 penalty on the weights (decoupled for
        ``"adamw"``).
    momentum : float in [0, 1), optional
        Momentum of ``"sgd"``, ``"momentum"``, ``"nesterov"`` and ``"rmsprop"`` (None: the
        optimiser's default); ignored by ``"adam"`` and ``"adamw"`` (their ``betas``).
    optimizer_kwargs : dict, optional
        Other arguments of the optimiser, e.g. ``{"betas": (0.9, 0.99)}``.
    epochs : int, default=100
        Passes over the training data in ``fit`` (``partial_fit`` makes one).
    batch_size : int, default=32
        Samples per gradient step.
    shuffle : bool, default=True
        Reshuffle the training data every epoch.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified for classifiers) and stop
        when the validation loss has not improved for ``patience`` epochs, keeping the best
        epoch's weights. Not used by ``partial_fit``.
    validation_fraction : float in (0, 1), default=0.1
    patience : int, default=10
    clip_norm : float, optional
        Clip the global gradient norm to this before each step.
    warm_start : bool, default=False
        ``fit`` continues training the fitted network (and its optimiser) instead of
        starting afresh; the classes, features and outputs must be those of the first fit.
    random_state : int, RandomState or None, default=None
        Decides the initial weights, the shuffling, the dropout masks and the
        early-stopping split: an int makes ``fit`` reproducible bit for bit.
    verbose : int, default=0
        0 silent, 1 a progress bar per epoch, 2 a line per epoch (on standard error).
    dtype : {"float32", "float64"}, default="float32"
        Precision of the network. Predictions come in the input's float dtype where it is
        more precise: float64 inputs are predicted by a float64 copy of the network (the
        same weights; a sample's prediction then does not depend on the rows predicted
        with it, which float32 rounding would make it do by about 1e-7); pass float32
        inputs for float32 speed.
    n_threads : int, optional
        At most this many BLAS/OpenMP threads while fitting and predicting. None: one
        inside a worker process (a parallel search's ``n_jobs`` workers, Dask's worker
        processes), BLAS's own choice otherwise; see :mod:`numnet.sklearn._threads`.
    health : bool, default=True
        numnet's training health warnings (:mod:`numnet.health`: unscaled inputs, a loss
        stuck at chance level or rising...). ``False`` silences them, in the worker
        processes of a search too, where warning filters set here do not reach.
"""

SHARED_ATTRIBUTES = """
    model_ : numnet.Sequential
        The fitted network.
    optimizer_ : numnet.optim.Optimizer
        Its optimiser, with its state (``warm_start`` and ``partial_fit`` continue it).
    history_ : numnet.History
        Per-epoch logs of every epoch trained (``fit`` afresh restarts it): ``loss``, the
        metrics, ``val_loss`` with early stopping, ``lr``, ``seconds``.
    loss_ : float
        The training loss of the last epoch (``loss_curve_[-1]``).
    loss_curve_ : list of float
        The training loss per epoch (``history_["loss"]``).
    best_loss_ : float
        The lowest training loss.
    best_validation_loss_ : float or None
        The lowest validation loss (with ``early_stopping``; its weights are kept).
    n_iter_ : int
        Epochs trained.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        The column names of a pandas DataFrame ``X`` (absent otherwise).
    n_threads_ : int
        The BLAS threads the last ``fit`` ran with.
"""
