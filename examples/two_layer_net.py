"""Seed 002's two-layer network, done with numnet: gradient check, then mini-batch SGD.

The seed trained a 256-50-10 ReLU net on 300 16x16 digits and printed train and eval
accuracy each epoch. Here the same shape of network (64-50-10, since the built-in digits
are 8x8) trains on the 1,797 built-in digits, with a held-out test set.

    python examples/two_layer_net.py
"""

import numpy as np

from numnet import SGD, Dense, ReLU, Sequential, gradcheck
from numnet.data import load_digits


def main() -> None:
    x, y = load_digits(flatten=True, scale=True)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:1400], order[1400:]

    model = Sequential([Dense(64, 50), ReLU(), Dense(50, 10)], loss="cross_entropy", seed=0)
    errors = gradcheck.check_model(model, x[train[:3]], y[train[:3]])
    for name, err in errors.items():
        print(f"gradient check {name:>5}: relative error {err:.1e}")

    optimizer = SGD(lr=0.1)
    rng = np.random.default_rng(1)
    for epoch in range(1, 31):
        shuffled = rng.permutation(train)
        for start in range(0, len(shuffled), 32):
            batch = shuffled[start:start + 32]
            model.loss_and_grad(x[batch], y[batch])
            optimizer.step(model)
        if epoch % 5 == 0:
            train_acc = np.mean(model.predict(x[train]) == y[train])
            test_acc = np.mean(model.predict(x[test]) == y[test])
            print(f"epoch {epoch:2d}: train accuracy {train_acc:.3f}, test accuracy {test_acc:.3f}")


if __name__ == "__main__":
    main()
