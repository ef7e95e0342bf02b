"""Why minigan keeps convolution outputs batch-last in memory: NumPy's speed by memory layout.

    python benchmarks/bench_layouts.py

NumPy only (no torch). Prints, in microseconds (fastest of many calls), at the DCGAN's sizes:

1. An add whose target is a strided slice, by the length of its contiguous runs: the cost of
   col2im's scatter-add, which writes k * k such slices. NumPy runs an elementwise op on
   non-contiguous operands through its buffered iterator, several times slower than on
   contiguous memory unless the contiguous runs are thousands of numbers long.
2. col2im of D's second convolution's input gradient (64 channels, 18 x 18 padded, batch 64,
   25 kernel offsets) in (C, H, W, N) memory, the batch-last layout of the other layers, against
   minigan's, (H, W, N, C), where the channel and the batch together make runs of 4,096 numbers.
   minigan's needs its columns by kernel offset, from a batched product
   (minigan.im2col.products_by_offset, then minigan.im2col.col2im): both halves are timed.
3. BatchNorm's per-channel operations (a mean, a broadcast subtraction) on the same
   (64, 64, 14, 14) images stored NCHW, batch-last (C, H, W, N) and (H, W, N, C).

BENCHMARKS.md says what minigan took from it ("The DCGAN step").
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minigan import backend  # noqa: E402
from minigan.im2col import col2im, products_by_offset  # noqa: E402


def fastest_us(fn, calls=200):
    """Fastest of `calls` timed calls of fn(), after one untimed call, in microseconds."""
    fn()
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e6


def strided_adds(rng, total=200_704):
    print(f"1. target[...] += source, {total:,} float32 numbers (64 x 7 x 7 x 64, one col2im add)")
    print(f"   {'contiguous run':>15} {'strided target us':>18} {'copy into it us':>16}")
    for run in (64, 448, 3136, total):
        rows = total // run
        buffer = np.zeros((rows, run + 64), np.float32)
        target = buffer[:, :run]  # rows of `run` contiguous numbers, then a gap
        source = rng.standard_normal((rows, run), dtype=np.float32)
        add = fastest_us(lambda: np.add(target, source, out=target))
        copy = fastest_us(lambda: np.copyto(target, source))
        print(f"   {run:>15,} {add:>18.1f} {copy:>16.1f}")


def col2im_layouts(rng, c_in=64, c_out=128, k=5, s=2, h_out=7, n=64, padded=18):
    print(f"\n2. col2im, D's conv2 input gradient: {c_in} channels, {padded} x {padded} padded, "
          f"batch {n}, k = {k}, stride {s} (ms)")
    dout = rng.standard_normal((c_out, h_out * h_out * n), dtype=np.float32)
    W = rng.standard_normal((c_out, c_in, k, k), dtype=np.float32)

    # the alternative: one product, columns (C_in, k, k) x (i, j, n), adds into (C, Hp, Wp, N)
    def chwn_product():
        return W.reshape(c_out, -1).T @ dout

    cols = chwn_product().reshape(c_in, k, k, h_out, h_out, n)

    def chwn_adds():
        out = np.zeros((c_in, padded, padded, n), np.float32)
        for di in range(k):
            for dj in range(k):
                out[:, di:di + s * h_out:s, dj:dj + s * h_out:s, :] += cols[:, di, dj]
        return out

    # minigan's (minigan/im2col.py): one product per kernel offset, then adds into (Hp, Wp, N, C)
    def hwnc_product():
        return products_by_offset(W, dout.T, h_out, h_out, n)

    blocks = hwnc_product()

    def hwnc_adds():
        return col2im(blocks, (n, c_in, padded, padded), k, s, h_out, h_out)

    same = np.allclose(chwn_adds().transpose(3, 0, 1, 2), hwnc_adds(), rtol=1e-4, atol=1e-3)
    print(f"   {'layout':<28} {'product':>8} {'adds':>8}")
    for name, product, adds in (("(C, H, W, N), one product", chwn_product, chwn_adds),
                                ("(H, W, N, C), minigan's", hwnc_product, hwnc_adds)):
        print(f"   {name:<28} {fastest_us(product, 20) / 1e3:>8.2f} "
              f"{fastest_us(adds, 20) / 1e3:>8.2f}")
    print(f"   (the two give the same gradient: {same})")


def batchnorm_layouts(rng, shape=(64, 64, 14, 14)):
    print(f"\n3. BatchNorm's per-channel work on {shape} float32 images (us)")
    x = rng.standard_normal(shape, dtype=np.float32)
    chwn = np.ascontiguousarray(x.transpose(1, 2, 3, 0))  # memory (C, H, W, N)
    hwnc = np.ascontiguousarray(x.transpose(2, 3, 0, 1))  # memory (H, W, N, C)
    layouts = {  # the same (N, C, H, W) images, three memory orders
        "NCHW": x,
        "batch-last (C, H, W, N)": chwn.transpose(3, 0, 1, 2),
        "(H, W, N, C)": hwnc.transpose(2, 3, 0, 1),
    }
    print(f"   {'memory':<24} {'mean':>7} {'x - mean':>9} {'x * x':>7}")
    for name, a in layouts.items():
        mean = a.mean(axis=(0, 2, 3), keepdims=True)
        print(f"   {name:<24} {fastest_us(lambda: a.mean(axis=(0, 2, 3), keepdims=True)):>7.0f} "
              f"{fastest_us(lambda: a - mean):>9.0f} {fastest_us(lambda: a * a):>7.0f}")


def main(argv=None):
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="It takes no flags: "
                            "python benchmarks/bench_layouts.py prints the three tables "
                            "described in its docstring.").parse_args(argv)
    backend.use("cpu")
    rng = np.random.default_rng(0)
    print(f"NumPy {np.__version__}")
    strided_adds(rng)
    col2im_layouts(rng)
    batchnorm_layouts(rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
