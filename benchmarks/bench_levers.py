"""What each CPU optimisation in minigan buys: the plain version against the one in the library.

    python benchmarks/bench_levers.py

Each row times the straightforward form of one piece of the training step (what a first version
would write) against the form minigan uses, in the same process, alternating, and prints the
medians. Default recipe sizes, float32, batch 64 unless said.
"""

import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minigan import backend, optim  # noqa: E402
from minigan.gan import (  # noqa: E402
    discriminator_step, make_discriminator, make_generator)
from minigan.layers import LeakyReLU  # noqa: E402
from minigan.losses import bce_with_logits  # noqa: E402
from bench_step import step_times  # noqa: E402  (beside this script)

N = 64


def median_ms(fn, repeats=40, warmup=5):
    return 1e3 * statistics.median(step_times(fn, lambda: None, repeats, warmup))


def compare(name, plain, fast, repeats=40):
    """Alternate the two in rounds so that load changes hit both; report both medians."""
    a, b = [], []
    for _ in range(4):
        a.append(median_ms(plain, repeats // 4))
        b.append(median_ms(fast, repeats // 4))
    pa, pb = statistics.median(a), statistics.median(b)
    print(f"{name:52s} {pa:9.3f} {pb:9.3f} {pa / pb:6.2f}x")


def two_pass_discriminator_step(G, D, opt_D, real, z, real_target=1.0):
    """The first version of the D step: D over the real batch, then over the fake batch."""
    fake = G.forward(z)
    D.zero_grad()
    logits_real = D.forward(real)
    loss_real, dlogits = bce_with_logits(logits_real, real_target)
    D.backward(dlogits, input_grad=False)
    logits_fake = D.forward(fake)
    loss_fake, dlogits = bce_with_logits(logits_fake, 0.0)
    D.backward(dlogits, input_grad=False)
    opt_D.step()
    return loss_real + loss_fake


def main():
    backend.use("cpu")
    rng = backend.default_rng(0)
    G, D = make_generator(rng=rng), make_discriminator(rng=rng)
    opt_D = optim.Adam(D.parameters(), lr=0.0)  # lr 0: the networks stay as they are
    real = rng.standard_normal((N, 784), dtype="float32")
    z = rng.standard_normal((N, 100), dtype="float32")
    print(f"{'piece of the step':52s} {'plain ms':>9} {'minigan':>9} {'gain':>7}")

    compare("D step: two passes of N vs one pass of 2N stacked",
            lambda: two_pass_discriminator_step(G, D, opt_D, real, z),
            lambda: discriminator_step(G, D, opt_D, real, z))

    x = rng.standard_normal((2 * N, 1024), dtype="float32")
    layer = LeakyReLU(0.2)
    compare("LeakyReLU forward (2N, 1024): xp.where vs slope mask",
            lambda: np.where(x > 0, x, 0.2 * x), lambda: layer.forward(x))
    layer.forward(x)
    compare("LeakyReLU backward (2N, 1024): xp.where vs slope mask",
            lambda: np.where(x > 0, x, 0.2 * x), lambda: layer.backward(x))

    W, b = G.params["6.W"], G.params["6.b"]
    h = rng.standard_normal((N, 1024), dtype="float32")

    def bias_in_place():
        out = h @ W
        out += b
        return out

    compare("Dense forward (N,1024)@(1024,784): x @ W + b vs += b",
            lambda: h @ W + b, bias_in_place)

    params = G.parameters() + [p._replace(name="D" + p.name) for p in D.parameters()]
    for p in params:
        p.grad[...] = rng.standard_normal(p.grad.shape, dtype="float32")
    threaded = optim.Adam(params, lr=1e-6)
    one_thread = optim.Adam(params, lr=1e-6)
    one_thread.blocks, one_thread.pool = one_thread.slots, None  # whole parameters, no threads
    compare(f"Adam step, G and D ({sum(p.data.size for p in params) / 1e6:.1f}M params): "
            "1 thread vs blocks", one_thread.step, threaded.step)


if __name__ == "__main__":
    main()
