"""Batch normalisation (Ioffe & Szegedy 2015), the DCGAN's layer: per-channel statistics of the
batch in training, running statistics in evaluation, and the freeze the generator step needs.
Derivation: lessons/12_convolutions.md. The layer contract is minigan/layers.py's.
"""

import contextlib

from minigan import backend
from minigan.layers import Layer, walk


@contextlib.contextmanager
def frozen_running_stats(net):
    """Within the block, BatchNorm layers in net keep their running statistics as they are
    (they still normalise with the batch's statistics in training mode). The generator step
    uses it: it reads D and must leave every part of D as it found it."""
    norms = [layer for layer in walk(net) if isinstance(layer, BatchNorm)]
    before = [layer.update_running_stats for layer in norms]
    for layer in norms:
        layer.update_running_stats = False
    try:
        yield net
    finally:
        for layer, flag in zip(norms, before):
            layer.update_running_stats = flag


class BatchNorm(Layer):
    """Batch normalisation over (N, C) or (N, C, H, W) inputs, one mean and variance per channel.

    Training mode: ``x_hat = (x - mean) / sqrt(var + eps)``, ``out = gamma * x_hat + beta``,
    mean and (biased) var over the n values of each channel; the running estimates move as
    torch's (``running_var`` with the unbiased ``var * n / (n - 1)``), and evaluation mode
    normalises with them. Backward, in its compact form (lessons/12_convolutions.md)::

        dx = gamma / (n * sqrt(var + eps)) * (n * dout - sum(dout) - x_hat * sum(dout * x_hat))
        dgamma = sum(dout * x_hat),  dbeta = sum(dout)

    Initialised like torch.nn.BatchNorm2d: gamma = 1, beta = 0, running_mean = 0, running_var = 1.
    """

    uses_batch_statistics = True

    def __init__(self, num_features, momentum=0.1, eps=1e-5, dtype="float32"):
        super().__init__()
        xp = backend.xp
        self.num_features, self.momentum, self.eps = num_features, momentum, eps
        self.params["gamma"] = xp.ones(num_features, dtype=dtype)
        self.params["beta"] = xp.zeros(num_features, dtype=dtype)
        self.grads["gamma"] = xp.zeros_like(self.params["gamma"])
        self.grads["beta"] = xp.zeros_like(self.params["beta"])
        # updated in place, so buffers["running_mean"] and the attribute stay one array
        self.running_mean = self.buffers["running_mean"] = xp.zeros(num_features, dtype=dtype)
        self.running_var = self.buffers["running_var"] = xp.ones(num_features, dtype=dtype)
        self.update_running_stats = True  # False inside frozen_running_stats(...)

    def __repr__(self):
        return f"{type(self).__name__}({self.num_features})"

    def _axes(self, x):
        """The axes of a channel's statistics and the (1, C[, 1, 1]) shape of per-channel arrays."""
        if x.ndim == 2:
            return (0,), (1, self.num_features)
        return (0, 2, 3), (1, self.num_features, 1, 1)

    def forward(self, x):
        backend.check_array(x, f"{self!r}.forward")
        if x.ndim not in (2, 4) or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r}.forward: expected x of shape (N, {self.num_features}) "
                             f"or (N, {self.num_features}, H, W), received {x.shape}")
        xp = backend.xp
        axes, shape = self._axes(x)
        n = x.size // self.num_features  # values per channel
        if self.training:
            if n < 2:
                raise ValueError(f"{self!r}.forward: training mode needs more than one value "
                                 f"per channel, got input {x.shape} (as torch)")
            mean = x.mean(axis=axes, keepdims=True)  # (1, C[, 1, 1])
            centered = x - mean
            var = (centered * centered).mean(axis=axes, keepdims=True)  # biased, for x_hat
            if self.update_running_stats:
                m = self.momentum
                self.running_mean *= 1 - m
                self.running_mean += m * mean.reshape(-1)
                self.running_var *= 1 - m
                self.running_var += (m * n / (n - 1)) * var.reshape(-1)  # the unbiased estimate
        else:
            centered = x - self.running_mean.reshape(shape)
            var = self.running_var.reshape(shape)
        inv_std = 1 / xp.sqrt(var + self.eps)  # (1, C[, 1, 1])
        x_hat = centered  # normalised in place, as `centered` is not needed again: 1.44x over
        x_hat *= inv_std  # a new array (benchmarks/bench_levers.py conv)
        self.cache = (x_hat, inv_std, self.training)  # overwritten by the next forward
        out = x_hat * self.params["gamma"].reshape(shape)
        out += self.params["beta"].reshape(shape)  # in place: 1.39x over `+ beta` (likewise)
        return out

    def backward(self, dout, param_grads=True, input_grad=True):
        """dout: x's shape -> dx: x's shape. Adds into grads["gamma"], grads["beta"]."""
        x_hat, inv_std, training = self._cached(dout, lambda cache: cache[0].shape)
        axes, shape = self._axes(dout)
        sum_dout = dout.sum(axis=axes, keepdims=True)  # (1, C[, 1, 1])
        sum_dout_xhat = (dout * x_hat).sum(axis=axes, keepdims=True)
        if param_grads:
            self.grads["gamma"] += sum_dout_xhat.reshape(-1)  # dgamma = sum(dout * x_hat)
            self.grads["beta"] += sum_dout.reshape(-1)  # dbeta = sum(dout)
        if not input_grad:
            return None
        scale = self.params["gamma"].reshape(shape) * inv_std  # gamma / sqrt(var + eps)
        if not training:  # running statistics are constants: x -> out is affine per channel
            return dout * scale
        n = dout.size // self.num_features
        # the compact form divided through by n: dout minus its mean and minus its component
        # along x_hat. Four passes over the batch where (scale / n) * (n * dout - ...) takes
        # five; with the in-place forward, 2.4 ms off the DCGAN step's BatchNorms (20.8 -> 18.4,
        # benchmarks/profile_dcgan_step.py)
        return scale * (dout - sum_dout / n - x_hat * (sum_dout_xhat / n))
