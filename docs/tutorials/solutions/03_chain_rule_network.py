"""Solutions of tutorial 3: the chain rule across a whole network."""


def forward(x, Ws, bs, fs):
    """Return (xs, zs): xs = [x_0, ..., x_n] (n + 1 arrays), zs = [z_0, ..., z_(n-1)]."""
    xs, zs = [x], []
    for W, b, f in zip(Ws, bs, fs, strict=True):
        zs.append(xs[-1] @ W + b)
        xs.append(f(zs[-1]))
    return xs, zs


def backward(xs, zs, Ws, dfs, grad_out):
    """Given grad_out = dL/dx_n, return (dWs, dbs), the gradients of every layer, in the
    order of the layers (layer 0 first)."""
    dWs, dbs = [], []
    dx = grad_out
    for i in reversed(range(len(Ws))):
        delta = dx * dfs[i](zs[i])     # through the activation: f', not f
        dWs.append(xs[i].T @ delta)    # (D_i, N)(N, D_(i+1))
        dbs.append(delta.sum(axis=0))
        dx = delta @ Ws[i].T           # what layer i - 1 receives
    return dWs[::-1], dbs[::-1]
