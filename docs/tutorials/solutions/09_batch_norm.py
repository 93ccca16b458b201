"""Solutions of tutorial 9: batch normalisation, staged and closed form."""

import numpy as np


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Batch norm of x (N, D) in training mode: (out, cache)."""
    mu = x.mean(axis=0)                 # 1
    xmu = x - mu                        # 2
    var = (xmu ** 2).mean(axis=0)       # 3 and 4
    std = np.sqrt(var + eps)            # 5
    inv = 1 / std                       # 6
    xhat = xmu * inv                    # 7
    out = gamma * xhat + beta           # 8
    return out, {"xmu": xmu, "std": std, "inv": inv, "xhat": xhat, "gamma": gamma}


def batchnorm_backward_staged(dout, cache):
    """(dx, dgamma, dbeta), through the eight nodes one at a time."""
    xmu, std, inv, xhat, gamma = (cache[k] for k in ("xmu", "std", "inv", "xhat", "gamma"))
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)                        # 8
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    dinv = (dxhat * xmu).sum(axis=0)                # 7
    dxmu = dxhat * inv
    dstd = -dinv / std ** 2                         # 6
    dvar = dstd / (2 * std)                         # 5
    dsq = np.full_like(xmu, 1 / n) * dvar           # 4
    dxmu = dxmu + 2 * xmu * dsq                     # 3: the second route into xmu
    dmu = -dxmu.sum(axis=0)                         # 2
    dx = dxmu + np.full_like(xmu, 1 / n) * dmu      # 1: the second route into x
    return dx, dgamma, dbeta


def batchnorm_backward_closed(dout, cache):
    """(dx, dgamma, dbeta), in the closed form."""
    xhat, inv, gamma = cache["xhat"], cache["inv"], cache["gamma"]
    n = dout.shape[0]
    h = dout * gamma
    dx = (inv / n) * (n * h - h.sum(axis=0) - xhat * (h * xhat).sum(axis=0))
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
