"""Wall time of whole ``numnet`` commands with and without the compiled kernels, cold and
warm: what numba's import and compilation cost a short run.

    python bench/compile_cost.py [--repeats 5] [--commands digits,mnist1]

Each command (``python -m numnet ...``) runs in a fresh process, the variants interleaved,
``--repeats`` times:

* ``before`` (with ``--before ROOT``): the same command on another checkout, e.g. main
  before the kernels (``git archive main | tar -x -C /tmp/before``);
* ``numpy``: ``NUMNET_FAST=0``, the NumPy path;
* ``auto``: the default, automatic mode (compiled kernels for models of at least
  ``AUTO_MIN_SIZE`` parameters; warm cache);
* ``numba warm``: ``NUMNET_FAST=1`` (every call compiled), its kernels already in numba's
  on-disk cache;
* ``numba cold``: the same with an empty cache directory (``NUMBA_CACHE_DIR``): every
  kernel the run uses is compiled.

Commands: ``digits`` is the README's main command (``numnet train --out ... --plot off``:
the built-in 8x8 digits, MLP 64-128-10, 20 epochs); ``mnist1`` is one epoch of the
benchmark MLP on MNIST (``--data mnist --model mlp:256,128 --epochs 1 --batch-size 128``).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

VARIANTS = ("before", "numpy", "auto", "numba warm", "numba cold")


def command(name: str, out: Path) -> list[str]:
    if name == "digits":
        return ["train", "--out", str(out), "--plot", "off", "--quiet"]
    mnist = os.environ.get("NUMNET_MNIST_DIR", str(_common.DEFAULT_DATA))
    return ["train", "--data", "mnist", "--data-dir", mnist, "--model", "mlp:256,128",
            "--epochs", "1", "--batch-size", "128", "--out", str(out), "--plot", "off",
            "--quiet"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(variant: str, args: list[str], cache: Path, threads: int,
        before: Path | None) -> tuple[float, float]:
    """``(wall, cpu)`` seconds of one command (cpu: user + system of the child)."""
    root = before if variant == "before" and before is not None else _common.ROOT
    env = {**os.environ, "PYTHONPATH": str(root), "NUMBA_CACHE_DIR": str(cache),
           "NUMNET_FAST": {"numpy": "0", "auto": "auto", "before": "auto"}.get(variant, "1")}
    env.update({var: str(threads) for var in _common.THREAD_VARS})
    cmd = [sys.executable, "-m", "numnet", *args]
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False,
                          cwd=root)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{variant}: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return wall, _children_cpu() - cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--commands", default="digits,mnist1")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--before", type=Path, default=None,
                        help="checkout to run the 'before' variant from (else it is left out)")
    parser.add_argument("--wait-idle", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=_common.DEFAULT_THREADS,
                        help="BLAS/OpenMP threads of the commands (1 makes CPU seconds "
                             "comparable on a busy machine: no spinning workers)")
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v != "before" or args.before]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        warm = root / "warm-cache"
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for name in args.commands.split(","):
            cmd = command(name, root / "model.npz")
            run("numba warm", cmd, warm, args.threads, None)  # fill the warm cache
            for repeat in range(args.repeats):
                for variant in variants:
                    if args.wait_idle:
                        _common.wait_until_idle(args.wait_idle)
                    cache = root / f"cold-{name}-{repeat}" if variant == "numba cold" \
                        else warm
                    times.setdefault((name, variant), []).append(
                        run(variant, cmd, cache, args.threads, args.before))
    info = _common.machine_info()
    print(f"CPU: {info['cpu']} ({info['cpu_count']} CPUs); {args.threads} BLAS thread(s); "
          f"seconds per command, median (min-max) of {args.repeats}, wall and CPU (user + "
          f"system); load {_common.load_avg()}")
    for name in args.commands.split(","):
        print(f"\n{name}: numnet {' '.join(command(name, Path('M.npz')))}")
        reference = "before" if (name, "before") in times else "numpy"
        base = [statistics.median(v) for v in zip(*times[(name, reference)], strict=True)] \
            if (name, reference) in times else None
        for variant in variants:
            cells = []
            for k, values in enumerate(zip(*times[(name, variant)], strict=True)):
                med = statistics.median(values)
                extra = f" ({med - base[k]:+.2f})" if base is not None \
                    and variant != reference else ""
                cells.append(f"{med:5.2f} ({min(values):.2f}-{max(values):.2f}){extra}")
            print(f"  {variant:11s} wall {cells[0]:28s} cpu {cells[1]}")


if __name__ == "__main__":
    main()
