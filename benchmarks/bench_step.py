"""Time minigan's GAN training step against the PyTorch twin, side by side in one process.

    python benchmarks/bench_step.py                  # CPU, batch 64 and 256, plus one epoch each
    python benchmarks/bench_step.py --device gpu     # CuPy against PyTorch on CUDA
    python benchmarks/bench_step.py --no-epoch       # the step only
    python benchmarks/bench_step.py --model dcgan --batch-sizes 64 --epoch-limit 6400
                                                     # the DCGAN (minigan/conv.py) vs its twin

Both sides run the default recipe of train_mnist.py (float32, G 100-256-512-1024-784,
D 784-1024-512-256-1, Adam, k = 1, non-saturating loss) from the same initial weights on the
same real batches, each drawing its own noise. After a warm-up the two are timed interleaved,
in alternating blocks of 10 steps (minigan, torch, minigan, torch, ...; see time_interleaved for
why blocks), so that a change in the machine's load hits both, and the median step of each is
reported. The floor is the step's matrix-multiply FLOPs divided by the peak
float32 matmul rate measured here: no implementation of this step can beat it (MLP only; for
the DCGAN the columns floor and matmuls are left out).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from anywhere: train_mnist.py and reference/ live there

from minigan import backend, settings  # noqa: E402
from minigan.rules import message  # noqa: E402

DEFAULTS = dict(batch_sizes=(64, 256), warmup=10, rounds=8, seed=0)
# --batch-sizes: build() reuses 16 real batches, and MNIST has 60,000 images
MAX_BATCH = 60_000 // 16
BATCH_SIZES = ((lambda v: all(1 <= n <= MAX_BATCH for n in v)),
               f"comma-separated batch sizes, each an integer from 1 to {MAX_BATCH}, like 64,256")


def matmul_flops_per_step(g_sizes, d_sizes, n):
    """Multiply-add FLOPs (2 per MAC) that one D step + one G step cannot avoid.

    g_sizes/d_sizes: layer widths, e.g. [100, 256, 512, 1024, 784]. A matmul of (n, a) by
    (a, b) costs 2*n*a*b. Needed: forward passes; weight gradients of the network being
    updated; input gradients of every layer whose input gradient someone uses.
    """
    def layer_flops(sizes):
        return [2 * n * a * b for a, b in zip(sizes[:-1], sizes[1:])]

    g, d = layer_flops(g_sizes), layer_flops(d_sizes)
    d_step = sum(g) + 2 * sum(d) + 2 * sum(d) + 2 * sum(d[1:])  # G fwd; D fwd, dW, dx on 2n
    g_step = sum(g) + sum(d) + sum(d) + sum(g) + sum(g[1:])  # G fwd; D fwd, dx; G dW, dx
    return d_step + g_step


def step_times(step, sync, steps, warmup=0):
    """Seconds of each of `steps` calls of step(), synchronised, after `warmup` untimed calls."""
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    return times


def peak_matmul_gflops(xp, sync, size=2048, repeats=10):
    """Best observed float32 GFLOP/s of one large square matmul."""
    a = xp.ones((size, size), dtype=xp.float32)
    b = xp.ones((size, size), dtype=xp.float32)
    a @ b
    sync()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


def matmul_only_step(xp, sync, g_sizes, d_sizes, n, repeats=30):
    """Median seconds of just the matrix products of one step (the shapes minigan runs), with
    nothing else: what the array library's BLAS alone needs."""
    g_w = [xp.zeros((a, b), dtype=xp.float32) for a, b in zip(g_sizes[:-1], g_sizes[1:])]
    d_w = [xp.zeros((a, b), dtype=xp.float32) for a, b in zip(d_sizes[:-1], d_sizes[1:])]

    def forward(ws, x):
        xs = [x]
        for w in ws:
            xs.append(xs[-1] @ w)
        return xs

    def backward(ws, xs, d, weights, first_dx):
        for i in reversed(range(len(ws))):
            if weights:
                xs[i].T @ d
            if i > 0 or first_dx:
                d = d @ ws[i].T
        return d

    def step():
        z = xp.ones((n, g_sizes[0]), dtype=xp.float32)
        x = xp.concatenate([xp.ones((n, d_sizes[0]), dtype=xp.float32), forward(g_w, z)[-1]])
        xs = forward(d_w, x)  # D step on 2n stacked rows
        backward(d_w, xs, xs[-1], weights=True, first_dx=False)
        gs = forward(g_w, z)  # G step
        xs = forward(d_w, gs[-1])
        backward(g_w, gs, backward(d_w, xs, xs[-1], weights=False, first_dx=True),
                 weights=True, first_dx=False)

    return statistics.median(step_times(step, sync, repeats, warmup=5))


def build(device, batch_size, seed, model="mlp"):
    """minigan's and the twin's networks, optimizers and step functions, same initial weights."""
    import torch

    from minigan import backend, data, models, settings
    from minigan.gan import train_step
    from reference.torch_gan import TorchGAN

    xp = backend.use(device)
    rng = backend.default_rng(seed)
    cfg = settings.Config(model=model)  # the default recipe, as the twin's
    G, D = models.build(cfg, rng)
    opt_G, opt_D = models.optimizers(cfg, G, D)
    images, _ = data.load_mnist("train")
    host = data.to_model_input(images[: 16 * batch_size])  # 16 real batches, reused in turn
    X = backend.to_device(host)  # host -> device, once

    tdev = "cuda" if device == "gpu" else "cpu"
    twin = TorchGAN.from_minigan(G, D)  # copies minigan's initial weights
    twin.G.to(tdev)  # moves the parameters in place: the optimizers keep them
    twin.D.to(tdev)
    TX = torch.as_tensor(host, device=tdev)
    tgen = torch.Generator(device=tdev).manual_seed(seed)
    batches = [0]

    def minigan_step():
        i = batches[0] = (batches[0] + 1) % 16
        train_step(G, D, opt_G, opt_D, lambda: X[i * batch_size:(i + 1) * batch_size], rng)

    def torch_step():
        i = batches[0] = (batches[0] + 1) % 16
        real = TX[i * batch_size:(i + 1) * batch_size]
        zs = [torch.randn(batch_size, 100, device=tdev, generator=tgen) for _ in range(2)]
        twin.train_step([real], zs)

    if device == "gpu":
        def sync_minigan():
            xp.cuda.Device().synchronize()

        def sync_torch():
            torch.cuda.synchronize()
    else:
        sync_minigan = sync_torch = lambda: None
    return xp, minigan_step, torch_step, sync_minigan, sync_torch


def time_interleaved(step_a, sync_a, step_b, sync_b, warmup, rounds, block=10, pause=0.5):
    """Median seconds per step of a and b, timed in alternating blocks (a-block, b-block, ...).

    Why blocks with a pause between them, not a b a b step by step: NumPy's OpenBLAS and
    PyTorch's OpenMP/MKL each keep their worker threads spinning for a while after a call.
    Strictly alternating steps then makes each library run while the other's threads still
    hold the two cores, which measured PyTorch at twice its standalone step time here. A
    pause lets the spinning threads go to sleep, so each block starts on a quiet machine, and
    alternating blocks still spreads any change of the machine's load over both.
    """
    for _ in range(warmup):
        step_a()
        step_b()
    sync_a()
    sync_b()
    ta, tb = [], []
    for _ in range(rounds):
        for step, sync, times in ((step_a, sync_a, ta), (step_b, sync_b, tb)):
            time.sleep(pause)
            times += step_times(step, sync, block, warmup=1)  # warm-up wakes the threads
    return statistics.median(ta), statistics.median(tb)


def time_separately(step_a, sync_a, step_b, sync_b, warmup, steps=60):
    """Median seconds per step of a, all its steps first, then of b: each library alone."""
    medians = []
    for step, sync in ((step_a, sync_a), (step_b, sync_b)):
        time.sleep(1.0)  # let the other library's threads go to sleep
        medians.append(statistics.median(step_times(step, sync, steps, warmup)))
    return tuple(medians)


def time_epochs(device, model="mlp", limit=0):
    """Wall time of one MNIST epoch (of the first `limit` images; 0: all) of train_mnist.py and
    of the twin's script."""
    import train_mnist
    from reference import torch_gan

    common = ["--epochs", "1", "--model", model, "--limit", str(limit)]
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        train_mnist.main([*common, "--device", device, "--out", f"{tmp}/minigan"])
        t_minigan = time.perf_counter() - t
        t = time.perf_counter()
        torch_gan.main([*common, "--device", "cuda" if device == "gpu" else "cpu",
                        "--out", f"{tmp}/torch"])
        t_torch = time.perf_counter() - t
    return t_minigan, t_torch


def describe_machine(device):
    import platform

    import torch

    lines = [f"python {platform.python_version()}, numpy {np.__version__}, torch "
             f"{torch.__version__}, {os.cpu_count()} CPUs "
             f"({platform.processor() or platform.machine()})",
             f"torch threads {torch.get_num_threads()}"]
    if device == "gpu":
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        lines.append(f"GPU {props['name'].decode()}, cupy {cupy.__version__}")
    return "\n".join(lines)


def device_problem(device):
    """Why the two libraries cannot run on device, or None: the twin needs PyTorch (with CUDA
    for --device gpu), and minigan on the GPU CuPy and a CUDA device, as train_mnist.py says."""
    try:
        import torch
    except ImportError as e:
        return (f"the PyTorch twin needs PyTorch, which is not installed ({e}); install it with "
                "pip install -e '.[reference]'")
    if device == "gpu":
        try:
            backend.use("gpu")
        except backend.DeviceError as e:
            return str(e)
        finally:
            backend.use("cpu")
        if not torch.cuda.is_available():
            return (f"--device gpu: this PyTorch ({torch.__version__}) sees no CUDA device; "
                    "install a CUDA build of PyTorch, or run on the CPU with --device cpu")
    return None


def batch_sizes(text):
    """--batch-sizes' value: comma-separated integers, as a tuple (an argparse type)."""
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(message(
            "batch_sizes", text, BATCH_SIZES, DEFAULTS["batch_sizes"])) from None


def main(argv=None):
    p = settings.Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--model", choices=["mlp", "dcgan"], default="mlp")
    rules = {"epoch_limit": settings.RULES["limit"], "warmup": settings.integer(0),
             "rounds": settings.integer(1), "seed": settings.SEED}
    p.add_argument("--epoch-limit", type=settings.typed(int, "epoch_limit", rules["epoch_limit"],
                                                        0), default=0,
                   help="time the epoch on the first N images only (0: all 60,000)")
    p.add_argument("--batch-sizes", type=batch_sizes, default=DEFAULTS["batch_sizes"],
                   help=f"{BATCH_SIZES[1]} (default: 64,256)")
    p.add_argument("--warmup", type=settings.typed(int, "warmup", rules["warmup"],
                                                   DEFAULTS["warmup"]), default=DEFAULTS["warmup"],
                   help="untimed steps first (default: %(default)s)")
    p.add_argument("--rounds", type=settings.typed(int, "rounds", rules["rounds"],
                                                   DEFAULTS["rounds"]), default=DEFAULTS["rounds"],
                   help="alternating blocks of 10 timed steps per library")
    p.add_argument("--seed", type=settings.typed(int, "seed", rules["seed"], DEFAULTS["seed"]),
                   default=DEFAULTS["seed"])
    p.add_argument("--no-epoch", action="store_true", help="skip the whole-epoch timing")
    p.add_argument("--separately", action="store_true",
                   help="time each library alone (all minigan steps, then all torch steps) "
                        "instead of in alternating blocks")
    args = p.parse_args(argv)
    try:  # every flag checked before anything is timed
        for name, rule in rules.items():
            settings.check(name, getattr(args, name), rule, DEFAULTS.get(name, 0))
        settings.check("batch_sizes", args.batch_sizes, BATCH_SIZES, DEFAULTS["batch_sizes"])
    except settings.ConfigError as e:
        p.error(str(e))
    if (problem := device_problem(args.device)) is not None:
        print(f"bench_step.py: error: {problem}", file=sys.stderr)
        return 2

    print(describe_machine(args.device))
    g_sizes, d_sizes = [100, 256, 512, 1024, 784], [784, 1024, 512, 256, 1]
    peak = None
    print(f"\nmodel {args.model}\n{'batch':>5} {'minigan ms':>11} {'torch ms':>9} {'ratio':>6} "
          f"{'minigan img/s':>14} {'torch img/s':>12}" + (
              f" {'floor ms':>9} {'minigan/floor':>14} {'matmuls ms':>11}"
              if args.model == "mlp" else ""))
    for n in args.batch_sizes:
        xp, m_step, t_step, m_sync, t_sync = build(args.device, n, args.seed, args.model)
        if peak is None and args.model == "mlp":
            peak = peak_matmul_gflops(xp, m_sync)
        if args.separately:
            tm, tt = time_separately(m_step, m_sync, t_step, t_sync, args.warmup)
        else:
            tm, tt = time_interleaved(m_step, m_sync, t_step, t_sync, args.warmup, args.rounds)
        row = (f"{n:5d} {tm * 1e3:11.2f} {tt * 1e3:9.2f} {tm / tt:6.2f} {n / tm:14.0f} "
               f"{n / tt:12.0f}")
        if args.model == "mlp":
            floor = matmul_flops_per_step(g_sizes, d_sizes, n) / (peak * 1e9)
            matmuls = matmul_only_step(xp, m_sync, g_sizes, d_sizes, n)
            row += f" {floor * 1e3:9.2f} {tm / floor:14.2f} {matmuls * 1e3:11.2f}"
        print(row)
    print("(ratio = minigan / torch, lower is better; img/s counts real images per step" + (
        f"; floor from a measured peak of {peak:.0f} GFLOP/s float32 matmul; matmuls: the "
        f"step's matrix products alone through {xp.__name__})" if args.model == "mlp" else ")"))

    if not args.no_epoch:
        t_minigan, t_torch = time_epochs(args.device, args.model, args.epoch_limit)
        images = f"{args.epoch_limit:,}" if args.epoch_limit else "60,000"
        print(f"\nwhole epoch ({images} images, batch 64, logging, sampling, checkpoint): "
              f"minigan {t_minigan:.1f} s, torch twin {t_torch:.1f} s, ratio "
              f"{t_minigan / t_torch:.2f}")


if __name__ == "__main__":
    sys.exit(main())
