"""Solutions of tutorial 1: the chain rule on graph nodes."""


class MulNode:
    """z = x * y"""

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, dout):
        # each input's derivative is the other input: the node swaps them
        return dout * self.y, dout * self.x


class AddNode:
    """z = x + y"""

    def forward(self, x, y):
        return x + y

    def backward(self, dout):
        return dout, dout


def apple_orange_gradients(apple=100.0, apple_count=2.0, orange=150.0, orange_count=3.0,
                           tax=1.1):
    """Return a dict with "total", "d_apple", "d_apple_count", "d_orange",
    "d_orange_count" and "d_tax"."""
    mul_apple, mul_orange, add, mul_tax = MulNode(), MulNode(), AddNode(), MulNode()
    apple_price = mul_apple.forward(apple, apple_count)
    orange_price = mul_orange.forward(orange, orange_count)
    subtotal = add.forward(apple_price, orange_price)
    total = mul_tax.forward(subtotal, tax)
    # backward, in the reverse order of the forward pass
    d_subtotal, d_tax = mul_tax.backward(1.0)
    d_apple_price, d_orange_price = add.backward(d_subtotal)
    d_apple, d_apple_count = mul_apple.backward(d_apple_price)
    d_orange, d_orange_count = mul_orange.backward(d_orange_price)
    return {"total": total, "d_apple": d_apple, "d_apple_count": d_apple_count,
            "d_orange": d_orange, "d_orange_count": d_orange_count, "d_tax": d_tax}
