"""What each CPU optimisation in minigan buys: the plain version against the trick, A/B.

    python benchmarks/bench_levers.py              # every row
    python benchmarks/bench_levers.py adam conv    # only the rows whose group is named

Each row times the straightforward form of one piece of the training step (what a first version
would write) against the trick, in the same process, one call of each in turn, in several
rounds, and prints the median of each over all rounds and the range of the per-round ratio.
Default recipe sizes, float32, batch 64 unless said. The house rule (BENCHMARKS.md, "What each
optimisation bought"): a trick that buys less than 5% goes back to the plain form; the last column
says which one minigan ships.
"""

import math
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minigan import backend, models, optim, settings  # noqa: E402
from minigan.batchnorm import BatchNorm  # noqa: E402
from minigan.conv import Conv2D, ConvTranspose2D  # noqa: E402
from minigan.gan import discriminator_step, train_step  # noqa: E402
from minigan.im2col import batch_last_copy, col2im, im2col, pad_images, unpad  # noqa: E402
from minigan.layers import Dense, LeakyReLU, Param  # noqa: E402
from minigan.losses import bce_with_logits  # noqa: E402
from minigan.spectral import as_matrix, sigma_grad  # noqa: E402

N = 64
ROUNDS, CALLS = 8, 15  # per round, each form is called CALLS times, alternating with the other


def compare(name, plain, trick, ships, rounds=ROUNDS, calls=CALLS):
    """Alternate plain() and trick() call by call, so that load changes hit both alike."""
    for _ in range(3):  # warm-up
        plain(), trick()
    times = {plain: [], trick: []}
    ratios = []
    for _ in range(rounds):
        this_round = {plain: [], trick: []}
        for _ in range(calls):
            for fn in (plain, trick):
                start = time.perf_counter()
                fn()
                this_round[fn].append(time.perf_counter() - start)
        for fn in (plain, trick):
            times[fn] += this_round[fn]
        ratios.append(statistics.median(this_round[plain]) / statistics.median(this_round[trick]))
    pa, pb = (1e3 * statistics.median(times[fn]) for fn in (plain, trick))
    print(f"{name:58s} {pa:9.3f} {pb:9.3f} {pa / pb:6.2f}x "
          f"({min(ratios):.2f}-{max(ratios):.2f})  {ships}", flush=True)


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


class AdamRowBlocks:
    """The thread split minigan dropped: each large parameter cut into row blocks, one per core,
    each block updated by its own Adam (views of the parameter's rows, so the same arithmetic),
    the blocks stepped on one thread per core. NumPy releases the GIL inside each pass."""

    def __init__(self, params, cores=os.cpu_count() or 1, split_above=1 << 16, **kwargs):
        blocks = []
        for p in params:
            rows = p.data.shape[0]
            if p.data.size < split_above or rows < cores:
                blocks.append(p)
                continue
            edges = [rows * i // cores for i in range(cores + 1)]
            blocks += [Param(f"{p.name}[{lo}:{hi}]", p.data[lo:hi], p.grad[lo:hi])
                       for lo, hi in zip(edges[:-1], edges[1:])]
        self.optimizers = [optim.Adam([block], **kwargs) for block in blocks]
        self.pool = ThreadPoolExecutor(cores)

    def step(self):
        for _ in self.pool.map(lambda opt: opt.step(), self.optimizers):
            pass


class AdamFourWorkspaces(optim.Adam):
    """Adam's rule with a workspace per intermediate, (g - m), g**2, the denominator and the
    step, instead of one array holding each in turn. Same arithmetic, whole parameters."""

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        self.spare = [[np.empty_like(p.data) for _ in range(3)] for p in self.params]

    def step(self):
        self.t += 1
        beta1, beta2, t = *self.betas, self.t
        for p, m, v, m_change, (v_change, denom, update) in zip(
                self.params, self.m, self.v, self.work, self.spare):
            g = p.grad
            np.subtract(g, m, out=m_change)
            m_change *= 1 - beta1
            m += m_change
            np.multiply(g, g, out=v_change)
            v_change *= 1 - beta2
            v *= beta2
            v += v_change
            np.sqrt(v, out=denom)
            denom /= math.sqrt(1 - beta2**t)
            denom += self.eps
            np.divide(m, denom, out=update)
            update *= self.lr / (1 - beta1**t)
            np.subtract(p.data, update, out=p.data)


class AdamPlain(optim.Adam):
    """Adam's rule as the formula reads (what a first version writes, numpy-ml's form): a new
    array for every intermediate, m and v rebound each step, the parameter updated in place (the
    layers hold its array). The same rule in another order of operations: equal to minigan's up
    to rounding."""

    def step(self):
        self.t += 1
        beta1, beta2, t = *self.betas, self.t
        for i, p in enumerate(self.params):
            g = p.grad
            self.m[i] = beta1 * self.m[i] + (1 - beta1) * g
            self.v[i] = beta2 * self.v[i] + (1 - beta2) * g**2
            m_hat = self.m[i] / (1 - beta1**t)
            v_hat = self.v[i] / (1 - beta2**t)
            data = p.data  # p.data -= ... would rebind a NamedTuple's field
            data -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def mlp_rows(rng):
    G, D = models.build(settings.Config(), rng)  # the default recipe's networks
    opt_D = optim.Adam(D.parameters(), lr=0.0)  # lr 0: the networks stay as they are
    real = rng.standard_normal((N, 784), dtype="float32")
    z = rng.standard_normal((N, 100), dtype="float32")
    compare("D step: two passes of N vs one pass of 2N stacked",
            lambda: two_pass_discriminator_step(G, D, opt_D, real, z),
            lambda: discriminator_step(G, D, opt_D, real, z), "trick")

    x = rng.standard_normal((2 * N, 1024), dtype="float32")
    layer = LeakyReLU(0.2)
    compare("LeakyReLU forward (2N, 1024): xp.where vs slope mask",
            lambda: np.where(x > 0, x, 0.2 * x), lambda: layer.forward(x), "trick")
    layer.forward(x)
    compare("LeakyReLU backward (2N, 1024): xp.where vs slope mask",
            lambda: np.where(x > 0, x, 0.2 * x), lambda: layer.backward(x), "trick")

    W, b = G.params["6.W"], G.params["6.b"]
    h = rng.standard_normal((N, 1024), dtype="float32")

    def bias_in_place():
        out = h @ W
        out += b
        return out

    compare("Dense forward (N,1024)@(1024,784): x @ W + b vs += b",
            lambda: h @ W + b, bias_in_place, "plain")


def adam_rows(rng):
    G, D = models.build(settings.Config(), rng)  # the default recipe's networks
    params = G.parameters() + [p._replace(name="D" + p.name) for p in D.parameters()]
    for p in params:
        p.grad[...] = rng.standard_normal(p.grad.shape, dtype="float32")
    size = f"{sum(p.data.size for p in params) / 1e6:.1f}M params"
    whole, split = optim.Adam(params, lr=1e-6), AdamRowBlocks(params, lr=1e-6)
    compare(f"Adam step ({size}): 1 thread vs row blocks on threads", whole.step,
            split.step, "plain")
    four = AdamFourWorkspaces(params, lr=1e-6)
    compare(f"Adam step ({size}): four workspaces vs one", four.step, whole.step, "trick")
    plain = AdamPlain(params, lr=1e-6)
    compare(f"Adam step ({size}): the formula as written vs in place", plain.step, whole.step,
            "trick")

    # the whole MLP step (default recipe), with and without the split, same networks
    G, D = models.build(settings.Config(), rng)  # the default recipe's networks
    real = rng.standard_normal((N, 784), dtype="float32")

    def step_with(make):
        opt_G, opt_D = make(G), make(D)
        return lambda: train_step(G, D, opt_G, opt_D, lambda: real, rng)

    compare("MLP train step: Adam 1 thread vs row blocks on threads",
            step_with(lambda net: optim.Adam(net.parameters(), lr=1e-6)),
            step_with(lambda net: AdamRowBlocks(net.parameters(), lr=1e-6)), "plain")
    compare("MLP train step: Adam as written vs in place",
            step_with(lambda net: AdamPlain(net.parameters(), lr=1e-6)),
            step_with(lambda net: optim.Adam(net.parameters(), lr=1e-6)), "trick")


def conv_rows(rng):
    # D's conv2 layer on 2N images (the DCGAN's D step runs two batches of N, as its D has
    # BatchNorm): 64 -> 128 channels, 14 x 14 -> 7 x 7
    conv = Conv2D(64, 128, 5, stride=2, padding=2, rng=rng)
    x = batch_last_copy(rng.standard_normal((2 * N, 64, 14, 14), dtype="float32"))
    cols = im2col(pad_images(x, 2), 5, 2, 7, 7)
    W_flat, b = conv.params["W"].reshape(128, -1), conv.params["b"].reshape(-1, 1)

    def conv_bias_in_place():
        out = W_flat @ cols
        out += b
        return out

    compare("Conv2D conv2 (2N): W_flat @ cols + b vs += b", lambda: W_flat @ cols + b,
            conv_bias_in_place, "plain")

    # G's first transposed convolution: 128 -> 64 channels, 7 x 7 -> 14 x 14, N images
    convT = ConvTranspose2D(128, 64, 5, stride=2, padding=2, output_padding=1, rng=rng)
    cols = rng.standard_normal((64 * 25, 7 * 7 * N), dtype="float32")
    out_pad = col2im(cols, (N, 64, 18, 18), 5, 2, 7, 7)
    bT = convT.params["b"].reshape(1, -1, 1, 1)

    def convT_bias_in_place():
        out = unpad(out_pad, 2)
        out += bT
        return out

    compare("ConvTranspose2D 1 (N): unpad(out) + b vs += b", lambda: unpad(out_pad, 2) + bT,
            convT_bias_in_place, "trick")

    # BatchNorm forward after D's conv1 (2N, 64, 14, 14), batch-last: its two in-place steps
    norm = BatchNorm(64)
    x = batch_last_copy(rng.standard_normal((2 * N, 64, 14, 14), dtype="float32"))
    axes, shape = norm._axes(x)
    mean = x.mean(axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt((x - mean).var(axis=axes, keepdims=True) + norm.eps)
    gamma, beta = norm.params["gamma"].reshape(shape), norm.params["beta"].reshape(shape)

    def normalise_in_place():
        x_hat = x - mean
        x_hat *= inv_std
        return x_hat

    compare("BatchNorm x_hat (2N,64,14,14): (x - mean) * inv_std vs *=",
            lambda: (x - mean) * inv_std, normalise_in_place, "trick")
    x_hat = normalise_in_place()

    def shift_in_place():
        out = x_hat * gamma
        out += beta
        return out

    compare("BatchNorm out (2N,64,14,14): x_hat * gamma + beta vs +=",
            lambda: x_hat * gamma + beta, shift_in_place, "trick")


def spectral_rows(rng):
    """Spectral norm's dL/dW = (G - <G, W_eff> d sigma/dW) / sigma for D's first Dense (784 x
    1024): in torch's (out, in) layout through transposed views of minigan's (in, out) arrays, as
    the formula reads, vs with d sigma/dW laid out as W (minigan/spectral.py, sigma_grad)."""
    xp = backend.xp
    layer = Dense(784, 1024, rng=rng)
    W_eff, dW_eff = layer.params["W"], rng.standard_normal((784, 1024), dtype="float32")
    u = rng.standard_normal(1024, dtype="float32")  # (out,)
    v = rng.standard_normal(784, dtype="float32")  # (in,)
    sigma, grads = xp.float32(1.7), xp.zeros_like(W_eff)

    def through_views():
        G = as_matrix(dW_eff, layer)  # (out, in), a transposed view
        as_matrix(grads, layer)[...] += (G - xp.sum(dW_eff * W_eff) * xp.outer(u, v)) / sigma

    def in_w_layout():
        grads[...] += (dW_eff - xp.sum(dW_eff * W_eff) * sigma_grad(u, v, layer)) / sigma

    through_views()  # the two forms give the same array, to the last bit
    by_views = grads.copy()
    grads[...] = 0
    in_w_layout()
    assert xp.array_equal(by_views, grads), "the two forms of dL/dW differ"
    compare("spectral norm dL/dW, Dense 784x1024: views vs W's layout", through_views,
            in_w_layout, "trick")


GROUPS = {"mlp": mlp_rows, "adam": adam_rows, "conv": conv_rows, "spectral": spectral_rows}


def main(argv=None):
    p = settings.Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("groups", nargs="*", metavar="GROUP",
                   help=f"the groups of rows to time, of {', '.join(GROUPS)} (default: all)")
    chosen = p.parse_args(argv).groups or list(GROUPS)
    if unknown := [g for g in chosen if g not in GROUPS]:
        p.error(f"GROUP {unknown[0]}: not a group of rows; choose from {', '.join(GROUPS)}, or "
                "name none for all")
    backend.use("cpu")
    rng = backend.default_rng(0)
    print(f"{'piece of the step':58s} {'plain ms':>9} {'trick ms':>9} {'gain':>7} "
          "(per round)  minigan ships")
    for name in chosen:
        GROUPS[name](rng)


if __name__ == "__main__":
    main()
