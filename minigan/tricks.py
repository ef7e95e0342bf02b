"""Tricks against mode collapse and noise: ``--recipe improved`` turns on the combination in
``IMPROVED`` (packing, minibatch std, label smoothing, EMA); instance noise has a flag of its own.

Each one is off by default (the default recipe is the paper's and the PyTorch twin's) and each
has its own flag; lessons/13_better_recipe.md says what each does to the game and its gradient,
and benchmarks/ablate_recipe.py measures them.

- :class:`MinibatchStd` (Karras et al. 2018, "Progressive growing of GANs"): D sees, beside each
  sample's features, how much the features vary across the batch. A collapsed G makes batches
  with little variation, which D can then spot, so G is pushed to spread out.
- :class:`Pack` (Lin et al. 2018, "PacGAN"): D judges m samples at once, concatenated; m
  samples from a collapsed G look alike in a way m real images do not.
- :class:`EMA` (Yazici et al. 2019, "The unusual effectiveness of averaging in GAN training"): an
  exponential moving average of G's weights, used only to draw samples; it smooths out the
  oscillation of the game around its equilibrium.
- :class:`InstanceNoise` (Sonderby et al. 2017; Arjovsky and Bottou 2017): Gaussian noise
  added to every image D sees, real and fake, annealed to 0; the two distributions then overlap
  and D's gradient stays informative early on.

Dropout in D (Goodfellow et al. 2014 trained their MLP D with it) is :class:`minigan.layers.
Dropout`; one-sided label smoothing (Salimans et al. 2016) is ``real_target`` in
:func:`minigan.gan.train_step`; separate learning rates (TTUR, Heusel et al. 2017) are
``--lr-d`` and ``--lr-g``.
"""

import copy

from minigan import backend
from minigan.layers import Layer, walk

# --recipe improved (train_mnist.py and python -m minigan.toy): the combination that
# benchmarks/ablate_recipe.py measured best (docs/ablation/ablation.md; lessons/13_better_recipe.md,
# section 6). Flags given on the command line override these.
IMPROVED = {"pack": 2, "minibatch_std": 1, "label_smoothing": 0.2, "ema": 0.999}


class MinibatchStd(Layer):
    """(N, F) -> (N, F + 1): append the batch's mean feature standard deviation to every row.

    Forward, with per-feature statistics over the N rows (biased variance, as Karras et al.)::

        mu_j = mean_i x_ij,   sigma_j = sqrt(mean_i (x_ij - mu_j)^2 + eps)
        s = mean_j sigma_j                      # one number for the whole batch
        out = [x, s * ones(N, 1)]

    Backward: the first F columns pass dout through; s reached every row, so its gradient is
    the sum of the last column, ``ds = sum_i dout_i,F``, and with d sigma_j / d x_ij =
    (x_ij - mu_j) / (N sigma_j) (the mean's own derivative cancels, as the centred values sum
    to 0)::

        dx = dout[:, :F] + ds / F * (x - mu) / (N * sigma)

    One row's output depends on every row, so ``uses_batch_statistics`` is True: the D step
    runs real and fake as two batches (minigan.gan.discriminator_step), as it does for
    BatchNorm. Test: tests/test_tricks.py::test_minibatch_std_gradcheck.
    """

    uses_batch_statistics = True

    def __init__(self, eps=1e-8):
        super().__init__()
        self.eps = eps

    def __repr__(self):
        return "MinibatchStd()"

    def forward(self, x):
        backend.check_array(x, f"{self!r}.forward")
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"{self!r}.forward: expected x of shape (N, F) with N >= 2 (a "
                             f"standard deviation needs two rows), received {x.shape}")
        xp = backend.xp
        centered = x - x.mean(axis=0, keepdims=True)  # (N, F)
        sigma = xp.sqrt((centered * centered).mean(axis=0) + self.eps)  # (F,)
        s = sigma.mean()  # 0-d
        self.cache = (centered, sigma)  # overwritten by the next forward
        column = s * xp.ones((x.shape[0], 1), dtype=x.dtype)  # s in every row, (N, 1)
        return xp.concatenate([x, column], axis=1)

    def backward(self, dout):
        centered, sigma = self._cached(dout, lambda cache: (len(cache[0]), len(cache[1]) + 1))
        n, f = centered.shape  # dout: (N, F + 1)
        ds = dout[:, f].sum()  # s was copied into every row
        return dout[:, :f] + (ds / (f * n)) * centered / sigma


class Pack(Layer):
    """(N, F) -> (N / m, m * F): m consecutive samples side by side, one input of D (PacGAN).

    A reshape, so backward reshapes back. N must be a multiple of m. One output row depends on
    m input rows, so ``uses_batch_statistics`` is True: the D step then runs real and fake as
    two batches (minigan.gan.discriminator_step), and packs real with real, fake with fake.
    """

    uses_batch_statistics = True

    def __init__(self, m):
        super().__init__()
        if m < 1:
            raise ValueError(f"Pack: m must be at least 1, got {m}")
        self.m = m

    def __repr__(self):
        return f"Pack({self.m})"

    def forward(self, x):
        backend.check_array(x, f"{self!r}.forward")
        if x.ndim != 2 or x.shape[0] % self.m:
            raise ValueError(f"{self!r}.forward: expected x of shape (N, F) with N a multiple "
                             f"of {self.m}, received {x.shape}: use a batch size divisible by "
                             f"the packing degree")
        self.cache = x.shape  # overwritten by the next forward
        return x.reshape(x.shape[0] // self.m, self.m * x.shape[1])

    def backward(self, dout):
        n, f = self._cached(dout, lambda x_shape: (x_shape[0] // self.m, self.m * x_shape[1]))
        return dout.reshape(n, f)


class EMA:
    """An exponential moving average of a network's weights, kept in a copy of the network.

    After each update of the network, ``update()`` moves every averaged parameter towards it::

        decay_t = min(decay, (1 + t) / (10 + t))      # t: updates so far
        avg = decay_t * avg + (1 - decay_t) * param

    The warm-up ``(1 + t) / (10 + t)`` (TensorFlow's ExponentialMovingAverage with
    num_updates) lets the average forget the random initial weights within a few tens of
    steps (their share is about 1e-5 after 10 updates); without it, 0.999**t would keep 5% of
    them after 3,000 updates and reach 1e-5 only near 11,500.
    Buffers (BatchNorm's running statistics) are copied, not averaged: re-estimating them for
    the averaged weights moved a 20-epoch DCGAN's FD by under a point (benchmarks/bn_modes.py).
    ``net`` is the averaged network: draw samples from it, in evaluation mode; it is never
    trained (no backward runs through it).
    """

    def __init__(self, net, decay=0.999):
        if not 0 < decay < 1:
            raise ValueError(f"EMA: decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.net = copy.deepcopy(net)
        self.net.eval()
        self.source = net
        self.t = 0  # updates so far (saved in checkpoints, with the averaged arrays)

    def update(self):
        d = min(self.decay, (1 + self.t) / (10 + self.t))
        for name, avg in self.net.params.items():
            avg *= d  # in place: the averaged network's own arrays
            avg += (1 - d) * self.source.params[name]
        for name, buf in self.net.buffers.items():
            buf[...] = self.source.buffers[name]
        self.t += 1


class InstanceNoise(Layer):
    """Add Gaussian noise to every input D sees, real and fake: ``out = x + std * eps``.

    ``std`` is set by the training loop before each step (:func:`instance_noise_std` anneals it
    to 0). The noise does not depend on x, so ``dx = dout``: G's gradient flows through it
    unchanged, but is now the gradient at a noisy image. Evaluation mode, or std = 0, passes x
    through. The noise is drawn from ``rng`` (the run's generator, so checkpoints cover it).
    """

    def __init__(self, std=0.0, rng=None):
        super().__init__()
        self.std = std
        self.rng = backend.default_rng(None) if rng is None else rng

    def __repr__(self):
        return f"InstanceNoise(std={self.std:g})"

    def forward(self, x):
        backend.check_array(x, f"{self!r}.forward")
        self.cache = x.shape  # overwritten by the next forward
        if not self.training or self.std == 0:
            return x
        return x + self.std * self.rng.standard_normal(x.shape, dtype=x.dtype)

    def backward(self, dout):
        self._cached(dout, lambda x_shape: x_shape)  # checks dout against the forward's x
        return dout


def instance_noise_std(sigma0, step, total_steps):
    """The instance noise's standard deviation at a step: sigma0, annealed linearly to 0 at
    total_steps (Sonderby et al. 2017 anneal it; the end of training sees the clean data)."""
    if sigma0 == 0 or total_steps <= 0:
        return 0.0
    return sigma0 * max(0.0, 1.0 - step / total_steps)


def set_instance_noise(net, std):
    """Set the std of every InstanceNoise layer in net (none: nothing happens)."""
    for layer in walk(net):
        if isinstance(layer, InstanceNoise):
            layer.std = std
