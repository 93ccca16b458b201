"""Seed 004's 128-16-1 sigmoid network, generalised to mini-batches.

The seed trained on one example with globals everywhere; here the same architecture
learns a binary task on a batch of 1,000 random 128-dimensional inputs, with a gradient
check of the whole model first.

    python examples/sigmoid_net.py
"""

import numpy as np

from numnet import SGD, Dense, Sequential, Sigmoid, gradcheck


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Label 1 when the inputs project positively onto a hidden direction; labels (n,),
    the shape ``predict`` gives them back in."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 128)).astype(np.float32)
    direction = rng.standard_normal(128)
    return x, (x @ direction > 0).astype(np.float32)


def main() -> None:
    x, y = make_data(1000)
    # The final layer gives a logit; BinaryCrossEntropy applies the sigmoid itself, stably.
    model = Sequential([Dense(128, 16), Sigmoid(), Dense(16, 1)],
                       loss="binary_cross_entropy", seed=0)
    errors = gradcheck.check_model(model, x[:4], y[:4])
    print("gradient check, worst relative error:", f"{max(errors.values()):.2e}")

    optimizer = SGD(lr=0.5)
    rng = np.random.default_rng(1)
    for epoch in range(20):
        order = rng.permutation(len(x))
        for start in range(0, len(x), 50):
            batch = order[start:start + 50]
            model.loss_and_grad(x[batch], y[batch])
            optimizer.step(model)
        loss = model.loss(model.forward(x), y)  # the checked call takes (n,) for (n, 1)
        accuracy = np.mean(model.predict(x) == y)
        if epoch % 5 == 4:
            print(f"epoch {epoch + 1:2d}: loss {loss:.4f}, accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
