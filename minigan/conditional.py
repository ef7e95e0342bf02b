"""Conditional GANs: G(z, y) draws the digit y asks for, D(x, y) judges an image with its label.

    python train_mnist.py --conditional concat        # Mirza & Osindero 2014
    python train_mnist.py --conditional projection    # Miyato & Koyama 2018
    python train_mnist.py --conditional acgan         # Odena et al. 2017

A label y is a one-hot row of NUM_CLASSES numbers (for interpolation, a mixture of two one-hot
rows). In all three variants G is conditioned the same way: y is concatenated to z, so G's first
layer takes latent_dim + 10 inputs, ``G(z, y) = net([z, y])``. The variants differ in D:

- concat: ``D(x, y) = net([x, y])``, the one-hot label joins x at D's input. For the DCGAN it
  joins as 10 constant channels of 28 x 28 beside the image, (N, 11, 28, 28), so that the label
  meets the image in every convolution. Joined after the convolutions, it would reach only the
  final Dense, and a linear ``w . phi(x) + v . y`` adds a class bias that cannot depend on x:
  D could not tell whether x is the digit y asks for.
- projection: ``D(x, y) = psi(phi(x)) + e_y . phi(x)``, with a learned class embedding e_y.
- acgan: ``D(x)`` has two heads on one trunk, an adversarial logit and 10 class logits, kept as
  one Dense of 1 + 10 outputs (column 0: the logit; columns 1..10: the class logits). D does not
  see y; the losses do (minigan/gan.py, conditional_discriminator_step).

--recipe improved's tricks of D (minigan/tricks.py) meet the label as follows (the MLP; the
DCGAN's conditional D takes instance noise only, as its unconditional D does):

- minibatch std: a layer of D's body, after the label has joined (concat: in net, on rows that
  carry [x, y]; projection: in phi, so the std is one of the features h that both psi and e_y
  read; AC-GAN: before the Dense of both heads);
- packing m samples into one input of D: each sample's label travels with it. concat packs the
  rows [x_i, onehot(y_i)]; projection packs x in phi and gives each position of a pack its own
  class table (ProjectionDiscriminator); AC-GAN's class head gives each member of the pack its
  own 10 logits, (N / m, 1 + m * 10);
- instance noise: on the image only, never on the label (concat adds it before the join);
- dropout: after each hidden layer of D's body, as unconditionally.

Every network here keeps the layer contract of minigan/layers.py (params, grads, buffers,
forward, backward with param_grads and input_grad), so optimizers, checkpoints, the EMA and
frozen_running_stats work on them unchanged. The conditional steps are in minigan/gan.py.
"""

import math

from minigan import backend, spectral
from minigan.layers import Layer

NUM_CLASSES = 10  # MNIST's digits


def one_hot(labels, num_classes=NUM_CLASSES, dtype="float32"):
    """labels: (N,) integers in [0, num_classes) -> (N, num_classes) rows of 0 with one 1,
    an array of the current device: ``out[i, c] = (labels[i] == c)``."""
    xp = backend.xp
    return (labels[:, None] == xp.arange(num_classes)[None, :]).astype(dtype)


def sample_labels(rng, n, num_classes=NUM_CLASSES):
    """n labels drawn uniformly from [0, num_classes) by the run's generator (checkpointed with
    it, so a resumed run draws the same labels), (n,) int64 on the device."""
    return rng.integers(0, num_classes, size=n)


def balanced_labels(n, num_classes=NUM_CLASSES):
    """(n,) labels 0, 1, ..., 9, 0, 1, ...: every digit equally often (up to n % 10)."""
    return backend.xp.arange(n) % num_classes


def digit_rows(rng, latent_dim, dtype="float32", per_digit=NUM_CLASSES, num_classes=NUM_CLASSES):
    """The inputs of a digit-per-row grid of per_digit columns: (z (C * per_digit, latent_dim),
    y (C * per_digit, C), per_digit images a row). Row d asks for digit d; column j has the same
    noise vector in every row, so a column shows one "style" written as each digit. The
    per_digit noise vectors are drawn from rng. train_mnist.py's epoch grids are 10 x 10;
    minigan/sample.py draws any multiple of 10."""
    xp = backend.xp
    z = rng.standard_normal((per_digit, latent_dim), dtype=dtype)  # (per_digit, latent_dim)
    z = xp.concatenate([z] * num_classes)  # (C * per_digit, latent_dim): every row reuses it
    rows = xp.arange(num_classes * per_digit) // per_digit  # 0 x per_digit, 1 x per_digit, ...
    return z, one_hot(rows, num_classes, dtype), per_digit


def check_labels(labels, n, who, num_classes=NUM_CLASSES):
    """Raise ValueError unless labels is an (n,) integer array of the device, every label in
    [0, num_classes).

    The range is checked because nothing after it would say: W[-1] is the last class's row,
    one_hot(12) is a row of zeros (a D that sees no label), and CuPy's indexing wraps an index
    past the end around instead of raising. Reading the smallest and largest label is one
    device -> host copy of two numbers per forward (on a GPU it waits for the labels)."""
    backend.check_array(labels, who)
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise ValueError(f"{who}: expected labels of shape ({n},) and an integer dtype, "
                         f"received {labels.shape} {labels.dtype}")
    if n:
        low, high = labels.min().item(), labels.max().item()
        if low < 0 or high >= num_classes:
            raise ValueError(f"{who}: labels must be classes 0 to {num_classes - 1}, "
                             f"received labels from {low} to {high}")


class Embedding(Layer):
    """A learned table, one row per class: ``out = W[labels]``.

    labels: (N,) integers in [0, num_classes) -> out: (N, dim); W: (num_classes, dim), drawn
    uniformly in +-1/sqrt(dim) from rng (the scale of a Dense of dim inputs, so that at the
    start e_y . h is as large as the projection D's psi(h)).

    Backward is a scatter-add: row i of dout adds into row labels[i] of dW, so a class that
    appears twice in the batch gets both rows' gradients:

        dW[c] = sum over i with labels[i] == c of dout[i]  =  (one_hot(labels).T @ dout)[c]

    It is computed as that matrix product, which NumPy and CuPy both have and which sums in a
    fixed order (a GPU scatter with atomic adds sums in whatever order the threads arrive).
    Labels are integers, not trained: backward returns no dx.
    """

    def __init__(self, num_classes, dim, rng=None, dtype="float32"):
        super().__init__()
        rng = backend.default_rng(None) if rng is None else rng
        self.num_classes, self.dim = num_classes, dim
        bound = 1.0 / math.sqrt(dim)
        self.params["W"] = rng.uniform(-bound, bound, (num_classes, dim)).astype(dtype)
        self.grads["W"] = backend.xp.zeros_like(self.params["W"])

    def __repr__(self):
        return f"Embedding({self.num_classes}, {self.dim})"

    def forward(self, labels):
        check_labels(labels, labels.shape[0] if labels.ndim else 0, f"{self!r}.forward",
                     self.num_classes)
        self.cache = labels  # overwritten by the next forward
        return self.params["W"][labels]  # (N, dim)

    def backward(self, dout, param_grads=True, input_grad=True):
        """dout: (N, dim); adds one_hot(labels).T @ dout into grads["W"]. Returns None."""
        labels = self._cached(dout, lambda labels: (labels.shape[0], self.dim))
        if param_grads:
            self.grads["W"] += one_hot(labels, self.num_classes, dout.dtype).T @ dout  # (C, dim)
        return None


class Conditioned(Layer):
    """What the conditional networks share: named parts whose params, grads and buffers are
    gathered under ``"<part>.<name>"`` (``""``: a single part's names as they are), and train /
    eval passed on to every part. ``layers`` lists the parts for minigan.layers.walk (so that
    frozen_running_stats finds D's BatchNorm layers)."""

    def __init__(self, **parts):
        super().__init__()
        self.layers = list(parts.values())
        for prefix, part in parts.items():
            for kind in ("params", "grads", "buffers"):
                for name, a in getattr(part, kind).items():
                    getattr(self, kind)[f"{prefix}.{name}" if prefix else name] = a
        self.uses_batch_statistics = any(getattr(p, "uses_batch_statistics", False)
                                         for p in self.layers)
        self.steps_in_forward = any(getattr(p, "steps_in_forward", False) for p in self.layers)

    def train(self, mode=True):
        super().train(mode)
        for part in self.layers:
            part.train(mode)
        return self


class ConditionalGenerator(Conditioned):
    """G(z, y) = net([z, y]): the label joins the noise at G's input (all three variants).

    net: an unconditional G whose first layer takes latent_dim + num_classes inputs; its params
    keep their names ("0.W", ...). z: (N, latent_dim), y: (N, num_classes) of z's dtype, rows
    one-hot (or mixtures of one-hot rows); out: (N, 784) in [-1, 1]. ``forward(z)`` without y
    asks for the digits 0, 1, ..., 9, 0, ... (balanced_labels), so code written for an
    unconditional G (minigan.evaluate) gets every digit equally often.
    """

    def __init__(self, net, latent_dim, num_classes=NUM_CLASSES):
        super().__init__(**{"": net})
        self.net, self.latent_dim, self.num_classes = net, latent_dim, num_classes

    def __repr__(self):
        return f"ConditionalGenerator({self.net!r})"

    def forward(self, z, y=None):
        xp = backend.xp
        backend.check_array(z, f"{self!r}.forward")
        n = z.shape[0]
        if y is None:
            y = one_hot(balanced_labels(n, self.num_classes), self.num_classes, z.dtype)
        backend.check_array(y, f"{self!r}.forward")
        if y.shape != (n, self.num_classes):
            raise ValueError(f"ConditionalGenerator.forward: expected y of shape "
                             f"({n}, {self.num_classes}) (one-hot rows), received {y.shape}")
        return self.net.forward(xp.concatenate([z, y.astype(z.dtype)], axis=1))  # (N, 784)

    def backward(self, dout, param_grads=True, input_grad=True):
        """dout: (N, 784) -> dz: (N, latent_dim) (the label's columns are dropped), or None."""
        dzy = self.net.backward(dout, param_grads, input_grad)  # (N, latent_dim + num_classes)
        return None if dzy is None else dzy[:, :self.latent_dim]


class ConcatDiscriminator(Conditioned):
    """D(x, y) = net([x, one_hot(y)]) (Mirza & Osindero 2014).

    x: (N, D), labels: (N,) -> logit (N, 1). spatial: how many times each label's one-hot
    entry is repeated: 1 for the MLP (D + 10 inputs); 784 for the DCGAN, whose net reshapes the
    (N, 784 + 10 * 784) row into (N, 11, 28, 28), the image then 10 constant channels.
    Backward keeps the image's columns of dx, ``dx = d[:, :D]``.

    noise: an InstanceNoise layer (minigan/tricks.py) applied to x before the label joins: the
    noise blurs the image, while the label stays exactly one-hot. net's own tricks see the
    joined rows: with Pack(m) first, a pack is m rows [x_i, onehot(y_i)] side by side, each
    sample with its own label; MinibatchStd, after net's last hidden layer, reads features that
    were computed from x and y together.
    """

    def __init__(self, net, num_classes=NUM_CLASSES, spatial=1, noise=None):
        super().__init__(**{"": net}, **({"noise": noise} if noise else {}))
        self.net, self.num_classes, self.spatial, self.noise = net, num_classes, spatial, noise

    def __repr__(self):
        return f"ConcatDiscriminator({self.net!r}, spatial={self.spatial})"

    def forward(self, x, labels):
        xp = backend.xp
        backend.check_array(x, f"{self!r}.forward")
        check_labels(labels, x.shape[0], f"{self!r}.forward", self.num_classes)
        y = one_hot(labels, self.num_classes, x.dtype)  # (N, C)
        if self.noise is not None:  # on the image, not on the label
            x = self.noise.forward(x)
        if self.spatial > 1:  # each label a constant channel: (N, C, spatial) -> (N, C * spatial)
            y = (y[:, :, None] * xp.ones((1, 1, self.spatial), dtype=x.dtype)).reshape(
                x.shape[0], -1)
        self.cache = x.shape[1]
        return self.net.forward(xp.concatenate([x, y], axis=1))  # (N, 1)

    def backward(self, dout, param_grads=True, input_grad=True):
        if self.cache is None:
            raise ValueError(f"{self!r}: backward called before forward (nothing cached)")
        d = self.net.backward(dout, param_grads, input_grad)
        if d is None:
            return None
        dx = d[:, :self.cache]  # (N, D): the image's columns
        return dx if self.noise is None else self.noise.backward(dx)


class ProjectionDiscriminator(Conditioned):
    """D(x, y) = psi(phi(x)) + e_y . phi(x)  (Miyato & Koyama 2018).

    Why this form: the optimal D's logit is the log density ratio of the data and G's
    distribution, log p(x, y) / q(x, y) = log p(y | x) / q(y | x) + log p(x) / q(x). If each
    conditional is a softmax of a linear map of features phi(x), log p(y | x) = v_y . phi(x)
    - log Z_p(x), the class part is (v_y - w_y) . phi(x) = e_y . phi(x), and everything left
    (the log Z terms, log p(x) / q(x)) does not depend on y: one scalar function psi(phi(x)).

    phi: the trunk, x (N, D) -> h (N, H); psi: a Dense(H, 1); embed: an Embedding(C, H).
    params: "phi.<i>.<name>", "psi.W", "psi.b", "embed.W". Backward (from out = psi(h) + e . h):

        dh = psi.backward(dout) + dout * e,    dE[y] += dout * h (the embedding's scatter-add)

    pack=m (PacGAN, phi starting with Pack(m)): phi judges m samples together, h is one row per
    pack, (N / m, H), and the class part must carry the m labels. For m independent pairs the
    optimal logit is a sum over the members, sum_i [psi(phi(x_i)) + e_{y_i} . phi(x_i)]; a
    packed phi can hold each member's features in its own part of h, where e_{y_i} would act on
    them. So each position i of a pack has its own table, embed is an Embedding(m * C, H), and

        e_pack = sum_i E[i * C + y_i],    out = psi(h) + e_pack . h        (N / m, 1)

    (m = 1 is the form above; lessons/16_conditional_gans.md, section 7). One table shared by the
    positions would give (3, 8) and (8, 3) one class vector. Backward: every member's row of the
    table gets its pack's dout * h (the embedding's scatter-add over the N slots).
    """

    def __init__(self, phi, psi, embed, pack=1):
        super().__init__(phi=phi, psi=psi, embed=embed)
        self.phi, self.psi, self.embed, self.pack = phi, psi, embed, pack
        self.num_classes = embed.num_classes // pack

    def __repr__(self):
        return (f"ProjectionDiscriminator({self.phi!r}, {self.psi!r}, {self.embed!r}"
                + (f", pack={self.pack})" if self.pack > 1 else ")"))

    def forward(self, x, labels):
        check_labels(labels, x.shape[0], f"{self!r}.forward", self.num_classes)
        h = self.phi.forward(x)  # (N, H); packed, one row per pack
        e = self.class_vectors(labels)  # (N, H): e_y of each row; packed, e_pack of each pack
        self.cache = (h, e)  # overwritten by the next forward
        return self.psi.forward(h) + (e * h).sum(axis=1, keepdims=True)  # (N, 1)

    def class_vectors(self, labels):
        """labels (N,) -> e_y of each row, (N, H); packed, e_pack = sum_i E[i * C + y_i] of
        each pack of m rows, (N / m, H)."""
        n, m = labels.shape[0], self.pack
        slots = labels + self.num_classes * (backend.xp.arange(n) % m)  # member i: table i
        return self.embed.forward(slots).reshape(n // m, m, -1).sum(axis=1)

    def backward(self, dout, param_grads=True, input_grad=True):
        h, e = self._cached(dout, lambda cache: (cache[0].shape[0], 1))
        dh = self.psi.backward(dout, param_grads=param_grads) + dout * e  # (N / m, H)
        if param_grads:  # d(e_pack . h)/dE[slot] = h for each of the pack's m slots
            dslots = (dout * h)[:, None, :] * backend.xp.ones((1, self.pack, 1), dtype=h.dtype)
            self.embed.backward(dslots.reshape(-1, h.shape[1]))  # (N, H), pack j's m rows
        return self.phi.backward(dh, param_grads, input_grad)


class AuxiliaryClassifierDiscriminator(Conditioned):
    """AC-GAN's D (Odena et al. 2017): x (N, D) -> (N, 1 + C), two heads on one trunk.

    Column 0 is the adversarial logit, columns 1..C the class logits. The two heads are one
    Dense(H, 1 + C) at the end of net: its weight matrix is the two heads' side by side, the same
    map as two Dense layers on the same features. D does not see the label; forward takes it only
    to share the other variants' signature, and the losses use it (gan.conditional_d_loss).

    With net packing m samples (PacGAN), one row judges a pack: (N / m, 1 + m * C), one logit
    for the pack and C class logits for each member in its order, which the class loss reads as
    the (N, C) rows of the N samples (gan.conditional_d_loss). Minibatch std and dropout sit in
    net before the last Dense, so both heads read them.
    """

    def __init__(self, net, num_classes=NUM_CLASSES):
        super().__init__(**{"": net})
        self.net, self.num_classes = net, num_classes

    def __repr__(self):
        return f"AuxiliaryClassifierDiscriminator({self.net!r})"

    def forward(self, x, labels=None):
        """x: (N, D) -> (N, 1 + C). labels, where given, are only checked: D does not see them
        (the class loss reads them, gan.conditional_d_loss)."""
        if labels is not None:
            check_labels(labels, x.shape[0], f"{self!r}.forward", self.num_classes)
        return self.net.forward(x)  # (N, 1 + C)

    def backward(self, dout, param_grads=True, input_grad=True):
        return self.net.backward(dout, param_grads, input_grad)


def with_spectral_norm(D, rng):
    """A conditional D whose layer stacks are under spectral norm (minigan/spectral.py): the
    concat and AC-GAN Ds' nets, the projection D's trunk phi and head psi, wrapped in that
    order, u and v drawn from rng. The projection's class embedding is left as it is
    (Miyato & Koyama's code normalises it too; minigan's SpectralNorm wraps Dense and Conv2D)."""
    if isinstance(D, ProjectionDiscriminator):
        phi = spectral.apply(D.phi, rng)
        return ProjectionDiscriminator(phi, spectral.SpectralNorm(D.psi, rng), D.embed, D.pack)
    if isinstance(D, ConcatDiscriminator):
        return ConcatDiscriminator(spectral.apply(D.net, rng), D.num_classes, D.spatial, D.noise)
    return AuxiliaryClassifierDiscriminator(spectral.apply(D.net, rng), D.num_classes)
