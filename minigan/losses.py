"""Losses, each returning ``(loss, grad)`` like cs231n's: the mean loss over every element and
its gradient with respect to the input, of the input's shape.

The discriminator ends in a logit ``x`` and ``D(x) = sigmoid(x)``; working on logits keeps
every loss finite for any input (even +-1e4). Derivations: lessons/02_losses.md.

``loss`` is a 0-d array of the current device: turning it into a Python float
(``float(loss)``) is a GPU sync, so the training loop does it only at log steps.
"""

import numpy

from minigan import backend
from minigan.layers import sigmoid


def softplus(x):
    """``log(1 + exp(x))`` without overflow: ``max(x, 0) + log1p(exp(-|x|))``."""
    xp = backend.xp
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


def bce(probs, targets):
    """Binary cross-entropy on probabilities, the same value as ``torch.nn.BCELoss()``.

    probs: (N, ...) in [0, 1]; targets: same shape (or a scalar) in [0, 1].
    loss = -mean(t * log(p) + (1 - t) * log(1 - p)), each log clamped at -100 as torch does
    so that p = 0 or 1 gives a finite loss.
    grad = (p - t) / max(p * (1 - p), 1e-12) / n, torch's formula (n = number of elements).
    """
    xp = backend.xp
    n = probs.size
    with numpy.errstate(divide="ignore"):  # log(0) = -inf is expected here: it is clamped next
        log_p = xp.maximum(xp.log(probs), -100)
        log_1mp = xp.maximum(xp.log1p(-probs), -100)
    loss = -xp.mean(targets * log_p + (1 - targets) * log_1mp)
    grad = (probs - targets) / xp.maximum(probs * (1 - probs), 1e-12) / n
    return loss, grad


def bce_with_logits(logits, targets):
    """Binary cross-entropy on logits, the same value as ``torch.nn.BCEWithLogitsLoss()``.

    logits: (N, ...) any real; targets: same shape (or a scalar) in [0, 1].
    loss = mean((1 - t) * x + softplus(-x))   (= -t log sigmoid(x) - (1 - t) log(1 - sigmoid(x)))
    grad = (sigmoid(x) - t) / n
    Written as torch writes it, ``(1 - t) * x - log_sigmoid(x)``, so saturated logits round alike.
    """
    loss = backend.xp.mean((1 - targets) * logits + softplus(-logits))
    grad = (sigmoid(logits) - targets) / logits.size
    return loss, grad


def generator_loss_minimax(fake_logits):
    """The generator's side of the original minimax game: ``mean(log(1 - D(G(z))))``.

    fake_logits: (N, 1), D's logits on generated images. G minimises this, which is the
    same as maximising D's error; it saturates (gradient -> 0) when D confidently rejects
    the fakes, which is why the non-saturating loss is the default.
    loss = mean(-softplus(x)),  grad = -sigmoid(x) / n
    """
    loss = -backend.xp.mean(softplus(fake_logits))
    grad = -sigmoid(fake_logits) / fake_logits.size
    return loss, grad


def generator_loss_nonsaturating(fake_logits):
    """The non-saturating generator loss (Goodfellow et al. 2014): ``mean(-log D(G(z)))``.

    fake_logits: (N, 1). The same as ``bce_with_logits(fake_logits, 1)``: G trains as if its
    samples were real, and the gradient is largest when D rejects them.
    loss = mean(softplus(-x)),  grad = (sigmoid(x) - 1) / n
    """
    loss = backend.xp.mean(softplus(-fake_logits))
    grad = (sigmoid(fake_logits) - 1) / fake_logits.size
    return loss, grad


def softmax_cross_entropy(logits, labels):
    """Cross-entropy of class logits against integer labels, the same value as
    ``torch.nn.CrossEntropyLoss()`` (the MNIST classifier of minigan/classifier.py trains on it).

    logits: (N, C) any real; labels: (N,) integers in [0, C). Unlike the losses above, the mean
    is over the N rows, not over the N * C elements.
    loss = mean(logsumexp(x) - x[y]), in the stable log-softmax form: the row maximum is
    subtracted before exp, so exp never sees a positive number and never overflows.
    grad = (softmax(x) - onehot(y)) / N, since for one row d/dx_j logsumexp(x) = e^x_j / sum_k
    e^x_k = softmax(x)_j and d/dx_j x_y = [j == y]. AC-GAN's class loss (minigan/gan.py).
    """
    xp = backend.xp
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C), every entry <= 0
    log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))  # log softmax
    rows = xp.arange(n)
    loss = -xp.mean(log_probs[rows, labels])
    grad = xp.exp(log_probs)  # softmax(x), (N, C)
    grad[rows, labels] -= 1
    grad /= n
    return loss, grad


GENERATOR_LOSSES = {
    "nonsaturating": generator_loss_nonsaturating,
    "minimax": generator_loss_minimax,
}


# --- Beyond Jensen-Shannon: losses on D's raw output (a score, not a logit; lesson 14) ---------
# Each D loss is a sum of two (loss, grad) pairs, one on D(x) for real x and one on D(G(z)), so a
# D step with BatchNorm can run the two batches apart, as for BCE. Every mean is over the batch.


def least_squares(out, target):
    """Least squares (LSGAN, Mao et al. 2017), the loss on one side: ``0.5 * mean((out - t)**2)``.

    out: (N, 1) D's raw output; target: a scalar or out's shape. D minimises
    ``least_squares(D(x), 1) + least_squares(D(G(z)), 0)``, G minimises
    :func:`generator_loss_least_squares`. The same value as ``0.5 * torch.nn.MSELoss()``.
    grad = (out - t) / n
    """
    diff = out - target
    return 0.5 * backend.xp.mean(diff * diff), diff / out.size


def generator_loss_least_squares(fake_out):
    """LSGAN's generator loss: ``0.5 * mean((D(G(z)) - 1)**2)``; grad = (out - 1) / n."""
    return least_squares(fake_out, 1.0)


def hinge_real(real_out):
    """The hinge loss on D(x) (Lim & Ye 2017; Miyato et al. 2018): ``mean(relu(1 - out))``.

    D minimises ``hinge_real(D(x)) + hinge_fake(D(G(z)))``: a real sample scored above 1 adds
    nothing. grad = -(out < 1) / n  (0 at out = 1 exactly, as torch's relu).
    """
    xp = backend.xp
    loss = xp.mean(xp.maximum(1 - real_out, 0))
    grad = -(real_out < 1).astype(real_out.dtype) / real_out.size
    return loss, grad


def hinge_fake(fake_out):
    """The hinge loss on D(G(z)): ``mean(relu(1 + out))``; grad = (out > -1) / n."""
    xp = backend.xp
    loss = xp.mean(xp.maximum(1 + fake_out, 0))
    grad = (fake_out > -1).astype(fake_out.dtype) / fake_out.size
    return loss, grad


def wasserstein_real(real_out):
    """The critic's loss on D(x) (WGAN, Arjovsky et al. 2017): ``-mean(out)``; grad = -1 / n.

    The critic minimises ``wasserstein_real(D(x)) + wasserstein_fake(D(G(z)))`` =
    E D(G(z)) - E D(x), an estimate of -W1 when D is 1-Lipschitz (a gradient penalty,
    minigan/penalties.py, or clipping keeps it so).
    """
    return -backend.xp.mean(real_out), backend.xp.full_like(real_out, -1 / real_out.size)


def wasserstein_fake(fake_out):
    """The critic's loss on D(G(z)): ``mean(out)``; grad = 1 / n."""
    return backend.xp.mean(fake_out), backend.xp.full_like(fake_out, 1 / fake_out.size)


def generator_loss_wasserstein(fake_out):
    """G's loss in WGAN and in the hinge game: ``-mean(D(G(z)))``; grad = -1 / n."""
    return wasserstein_real(fake_out)
