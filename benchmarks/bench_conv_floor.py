"""Can an im2col convolution on NumPy match PyTorch's CPU convolution? Time the floor.

    python benchmarks/bench_conv_floor.py             # the DCGAN's two big layers, batch 64

For the two layers that take three quarters of the DCGAN step (D's Conv2D 64 -> 128 and G's
ConvTranspose2D 128 -> 64, both 5 x 5, stride 2, 7 <-> 14 pixels), this times, side by side in
one process and interleaved:

- torch: the layer's forward and backward (input and weight gradients), as the twin runs it;
- minigan: the same layer's forward and backward (minigan/conv.py);
- the matmuls only: the three matrix products of an im2col convolution with the same shapes
  (forward, weight gradient, input gradient) on NumPy, with no im2col and no col2im at all.

The third is a floor for every im2col design on NumPy: if it is slower than torch's whole layer,
no arrangement of the copies around the products can reach torch. Medians of --rounds rounds.
"""

import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from minigan import settings  # noqa: E402


def timed(fn, repeats):
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def layers(n):
    """(name, minigan layer, torch layer, input shape, im2col GEMM shapes (M, K, P))."""
    import torch

    from minigan import backend
    from minigan.conv import Conv2D, ConvTranspose2D

    rng = backend.default_rng(0)
    conv = Conv2D(64, 128, 5, stride=2, padding=2, rng=rng)
    tconv = ConvTranspose2D(128, 64, 5, stride=2, padding=2, output_padding=1, rng=rng)
    t_conv = torch.nn.Conv2d(64, 128, 5, stride=2, padding=2)
    t_tconv = torch.nn.ConvTranspose2d(128, 64, 5, stride=2, padding=2, output_padding=1)
    # D's conv: W (128, 64*25) @ cols (64*25, 7*7*N). G's transposed conv is the adjoint of a
    # 64 -> 128 conv on 14 x 14: the same three products with the roles swapped.
    return [("D Conv2D 64->128, 14->7", conv, t_conv, (n, 64, 14, 14), (128, 1600, 49 * n)),
            ("G ConvTranspose2D 128->64, 7->14", tconv, t_tconv, (n, 128, 7, 7),
             (128, 1600, 49 * n))]


def main(argv=None):
    p = settings.Parser(description=__doc__.split("\n\n")[0])
    rules = {"batch_size": (settings.RULES["batch_size"], 64), "rounds": (settings.integer(1), 7),
             "repeats": (settings.integer(1), 5)}
    p.add_argument("--batch-size", type=settings.typed(int, "batch_size", *rules["batch_size"]),
                   default=64, help="(default: %(default)s)")
    p.add_argument("--rounds", type=settings.typed(int, "rounds", *rules["rounds"]), default=7,
                   help="rounds; the median counts (default: %(default)s)")
    p.add_argument("--repeats", type=settings.typed(int, "repeats", *rules["repeats"]), default=5,
                   help="calls timed together per round (default: %(default)s)")
    args = p.parse_args(argv)
    try:  # every flag checked before anything is timed
        for name, (rule, default) in rules.items():
            settings.check(name, getattr(args, name), rule, default)
    except settings.ConfigError as e:
        p.error(str(e))
    try:
        import torch
    except ImportError as e:
        print(f"bench_conv_floor.py: error: it times PyTorch's convolution, and PyTorch is not "
              f"installed ({e}); install it with pip install -e '.[reference]'", file=sys.stderr)
        return 2

    n = args.batch_size
    print(f"batch {n}, float32, torch {torch.__version__} with {torch.get_num_threads()} "
          f"threads; NumPy {np.__version__}; median of {args.rounds} rounds of "
          f"{args.repeats} calls (ms)")
    print(f"{'layer':34s} {'torch':>8s} {'minigan':>8s} {'matmuls':>8s} "
          f"{'minigan/torch':>14s} {'matmuls/torch':>14s}")
    for name, ours, theirs, shape, (m, k, cols) in layers(n):
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        out_shape = ours.forward(x).shape
        dout = np.random.default_rng(2).standard_normal(out_shape).astype(np.float32)
        xt = torch.from_numpy(x).requires_grad_(True)
        doutt = torch.from_numpy(dout)
        W = np.random.default_rng(3).standard_normal((m, k)).astype(np.float32)
        A = np.random.default_rng(4).standard_normal((k, cols)).astype(np.float32)
        O = np.random.default_rng(5).standard_normal((m, cols)).astype(np.float32)

        def run_ours():
            ours.zero_grad()
            ours.forward(x)
            ours.backward(dout)

        def run_theirs():
            theirs.zero_grad()
            xt.grad = None
            theirs(xt).backward(doutt)

        def run_matmuls():
            W @ A  # forward: (M, K) @ (K, cols)
            O @ A.T  # weight gradient: (M, cols) @ (cols, K)
            W.T @ O  # input gradient (before col2im): (K, M) @ (M, cols)

        fns = {"torch": run_theirs, "minigan": run_ours, "matmuls": run_matmuls}
        for fn in fns.values():  # warm-up
            fn()
        times = {k: [] for k in fns}
        for _ in range(args.rounds):  # interleaved, so a change of load hits all three
            for key, fn in fns.items():
                times[key].append(timed(fn, args.repeats))
        med = {k: 1000 * statistics.median(v) for k, v in times.items()}
        print(f"{name:34s} {med['torch']:8.2f} {med['minigan']:8.2f} {med['matmuls']:8.2f} "
              f"{med['minigan'] / med['torch']:14.2f} {med['matmuls'] / med['torch']:14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
