"""Solutions of tutorial 10: dropout, L2 and early stopping."""


def dropout_forward(x, p, rng):
    """Training-mode dropout: (out, mask), mask holding 0 or 1 / (1 - p)."""
    mask = (rng.random(x.shape) >= p) / (1 - p)  # kept with probability 1 - p, rescaled
    return x * mask, mask


def dropout_backward(dout, mask):
    """dL/dx of dropout with this mask."""
    return dout * mask


def l2_penalty_and_grads(weights, lam):
    """For a list of weight arrays: (lam / 2 * sum of all squares, [lam * W, ...])."""
    penalty = lam / 2 * sum(float((W * W).sum()) for W in weights)
    return penalty, [lam * W for W in weights]


def early_stopping(val_losses, patience):
    """(stop, best) for these validation losses."""
    best, best_loss, waited = 0, float("inf"), 0
    for epoch, loss in enumerate(val_losses):
        if loss < best_loss:
            best, best_loss, waited = epoch, loss, 0
            continue
        waited += 1
        if waited >= patience:
            return epoch, best
    return len(val_losses) - 1, best
