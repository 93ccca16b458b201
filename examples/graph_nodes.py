"""The chain rule one node at a time: the apple-price example (seed 002).

Two apples at 100 each, with a 10% tax. Forward gives the price; backward gives how much
the price moves per unit change of each input.

    python examples/graph_nodes.py
"""

from numnet.layers import Add, Mul


def main() -> None:
    apple, count, tax = 100, 2, 1.1
    mul_apple, mul_tax = Mul(), Mul()
    price = mul_tax.forward(mul_apple.forward(apple, count), tax)
    print(f"price: {float(price):.2f}")  # 220.00

    d_apple_price, d_tax = mul_tax.backward(1.0)
    d_apple, d_count = mul_apple.backward(d_apple_price)
    print(f"d price/d apple = {float(d_apple):.2f}, d price/d count = {float(d_count):.2f}, "
          f"d price/d tax = {float(d_tax):.2f}")  # 2.20, 110.00, 200.00

    # add three oranges at 150 each: an Add node joins the two branches
    mul_orange, add = Mul(), Add()
    total = mul_tax.forward(add.forward(mul_apple.forward(apple, count),
                                        mul_orange.forward(150, 3)), tax)
    d_sum, d_tax = mul_tax.backward(1.0)
    d_apples, d_oranges = add.backward(d_sum)
    d_orange, d_orange_count = mul_orange.backward(d_oranges)
    print(f"with oranges: total {float(total):.2f}, d total/d orange = {float(d_orange):.2f}, "
          f"d total/d tax = {float(d_tax):.2f}")  # 715.00, 3.30, 650.00


if __name__ == "__main__":
    main()
