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
    grad = (softmax(x) - onehot(y)) / N
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
