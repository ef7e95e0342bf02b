"""Layers with hand-written forward and backward passes.

Every layer follows one contract (cs231n's, with micrograd's accumulating gradients):

- ``params`` and ``grads`` are dicts with the same keys (``"W"``, ``"b"``); ``backward`` adds
  into each gradient (``+=``), so call ``zero_grad()`` before each new backward pass.
- ``forward(x)`` returns ``out`` and keeps what ``backward`` needs in ``self.cache`` (the next
  ``forward`` overwrites it); ``backward(dout)`` takes dL/dout and returns ``dx = dL/dx``.
- A layer that owns parameters takes ``backward(dout, param_grads=True, input_grad=True)``:
  ``param_grads=False`` must leave ``grads`` untouched (the generator step backpropagates
  through D without touching D's grads), ``input_grad=False`` may return None.
- ``train()`` and ``eval()`` set ``training`` (BatchNorm and Dropout differ); ``buffers`` holds
  state that is not trained (BatchNorm's running statistics).

Shapes use ``N`` for the batch size. Derivations: lessons/04_backprop_layers.md. BatchNorm,
the DCGAN's, has its own module: minigan/batchnorm.py (lessons/12_convolutions.md).
"""

import inspect
import math
from typing import NamedTuple

from minigan import backend


class Param(NamedTuple):
    """One trainable array and its gradient, as optimizers see them (like torch's ``.grad``)."""

    name: str
    data: object  # the parameter array, updated in place by optimizers
    grad: object  # the gradient array of the same shape, filled by backward


class Layer:
    """Base class: empty ``params``/``grads``, ``zero_grad`` and ``parameters``."""

    uses_batch_statistics = False  # True where one row's output depends on the other rows
    steps_in_forward = False  # True where a training forward takes a step of its own (a power step)

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.buffers = {}  # state that is saved but not trained (BatchNorm's running stats)
        self.cache = None
        self.training = True

    def __call__(self, x):
        return self.forward(x)

    def __repr__(self):
        return f"{type(self).__name__}()"

    def train(self, mode=True):
        """Training mode (the default): BatchNorm uses batch statistics, Dropout drops."""
        self.training = bool(mode)
        return self

    def eval(self):
        """Evaluation mode: BatchNorm uses its running statistics, Dropout passes x through."""
        return self.train(False)

    def parameters(self):
        """The list of ``Param(name, data, grad)`` to hand to an optimizer."""
        return [Param(k, self.params[k], self.grads[k]) for k in self.params]

    def zero_grad(self):
        for g in self.grads.values():
            g.fill(0)

    def _cached(self, dout, out_shape=lambda cache: cache.shape):
        """The cache of the last forward, after checking that there was one and that dout has
        the shape forward returned: ``out_shape(cache)``, by default the cache's own shape."""
        if self.cache is None:
            raise ValueError(f"{self!r}: backward called before forward (nothing cached)")
        expected = tuple(out_shape(self.cache))
        if dout.shape != expected:
            raise ValueError(
                f"{self!r}.backward: expected dout of shape {expected} (the shape forward "
                f"returned), received {dout.shape}"
            )
        return self.cache


class Dense(Layer):
    """Fully connected layer: ``out = x @ W + b``.

    x: (N, in_features) -> out: (N, out_features); W: (in_features, out_features),
    b: (out_features,).
    Backward: ``dx = dout @ W.T``, ``dW = x.T @ dout``, ``db = dout.sum(axis=0)``.
    Initialised like torch.nn.Linear: W and b uniform in +-1/sqrt(in_features), drawn from
    ``rng`` (``backend.default_rng(seed)``; without one the weights are not reproducible).
    """

    def __init__(self, in_features, out_features, rng=None, dtype="float32"):
        super().__init__()
        xp = backend.xp
        rng = backend.default_rng(None) if rng is None else rng
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.params["W"] = rng.uniform(-bound, bound, (in_features, out_features)).astype(dtype)
        self.params["b"] = rng.uniform(-bound, bound, (out_features,)).astype(dtype)
        self.grads["W"] = xp.zeros_like(self.params["W"])
        self.grads["b"] = xp.zeros_like(self.params["b"])

    def __repr__(self):
        return f"{type(self).__name__}({self.in_features}, {self.out_features})"

    def forward(self, x):
        backend.check_array(x, f"{self!r}.forward")
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{self!r}.forward: expected x of shape (N, {self.in_features}), "
                             f"received {x.shape}")
        self.cache = x  # overwritten by the next forward
        return x @ self.params["W"] + self.params["b"]  # (N, out)

    def backward(self, dout, param_grads=True, input_grad=True):
        """dout: (N, out) -> dx: (N, in). Adds into grads["W"], grads["b"].

        Skips work nobody uses: ``param_grads=False`` leaves ``grads`` untouched (D in the
        generator step); ``input_grad=False`` returns None (the first layer of a network).
        """
        x = self._cached(dout, lambda x: (x.shape[0], self.out_features))
        if param_grads:
            self.grads["W"] += x.T @ dout  # (in, out)
            self.grads["b"] += dout.sum(axis=0)  # (out,)
        if input_grad:
            return dout @ self.params["W"].T  # (N, in)
        return None


class LeakyReLU(Layer):
    """``out = x if x > 0 else slope * x``; ``dx = dout * (1 if x > 0 else slope)``. Any shape;
    at exactly x = 0 the slope branch is used, as in PyTorch. The default slope, 0.2, is the
    DCGAN paper's (Radford et al. 2015); torch's ``nn.LeakyReLU()`` defaults to 0.01."""

    def __init__(self, negative_slope=0.2):
        super().__init__()
        self.negative_slope = negative_slope

    def __repr__(self):
        return f"{type(self).__name__}({self.negative_slope})"

    def forward(self, x):
        backend.check_array(x, f"{self!r}.forward")
        # The local slope d(out)/dx: 1 where x > 0, negative_slope elsewhere, from the mask by
        # arithmetic: the same numbers as xp.where(x > 0, x, slope * x), 8.7x faster on NumPy
        # (benchmarks/bench_levers.py)
        slope = (x > 0).astype(x.dtype)
        slope *= 1 - self.negative_slope
        slope += self.negative_slope
        self.cache = slope  # backward only needs the local slope; overwritten by the next forward
        return x * slope

    def backward(self, dout):
        slope = self._cached(dout)
        return dout * slope  # dx = dout * (1 if x > 0 else negative_slope)


class ReLU(LeakyReLU):
    """``out = max(x, 0)``; ``dx = dout * (x > 0)``. A LeakyReLU with slope 0."""

    def __init__(self):
        super().__init__(negative_slope=0.0)

    def __repr__(self):
        return "ReLU()"


class Tanh(Layer):
    """``out = tanh(x)``; ``dx = dout * (1 - out**2)``. Any shape."""

    def forward(self, x):
        backend.check_array(x, f"{self!r}.forward")
        out = backend.xp.tanh(x)
        self.cache = out  # backward only needs the output; overwritten by the next forward
        return out

    def backward(self, dout):
        out = self._cached(dout)
        return dout * (1 - out * out)


def sigmoid(x):
    """Numerically stable logistic function, for any finite or infinite input.

    The naive ``1 / (1 + exp(-x))`` overflows ``exp`` for large negative x; here ``exp`` only
    ever sees ``-|x| <= 0``:  x >= 0: 1 / (1 + e),  x < 0: e / (1 + e),  with e = exp(-|x|).
    """
    xp = backend.xp
    e = xp.exp(-xp.abs(x))  # in [0, 1] (0 once |x| > ~104 in float32): never overflows
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Layer):
    """``out = sigmoid(x)`` (the stable two-branch form); ``dx = dout * out * (1 - out)``."""

    def forward(self, x):
        backend.check_array(x, f"{self!r}.forward")
        out = sigmoid(x)
        self.cache = out  # overwritten by the next forward
        return out

    def backward(self, dout):
        out = self._cached(dout)
        return dout * out * (1 - out)


def takes_param_grads(layer):
    """True when ``layer.backward`` accepts the ``param_grads`` keyword (see the contract above)."""
    try:
        names = inspect.signature(layer.backward).parameters
    except (TypeError, ValueError):  # a builtin or something without a signature
        return False
    return "param_grads" in names


class Sequential(Layer):
    """Layers applied in order; backward runs them in reverse.

    ``params`` and ``grads`` hold every layer's arrays under keys ``"<index>.<name>"``
    (``"0.W"``, ``"2.W"``, ...), the same arrays the layers own: optimizers, checkpoints and the
    layers all see one copy; ``buffers`` likewise (``"2.running_mean"``). Raises TypeError for a
    layer with parameters whose ``backward`` has no ``param_grads`` keyword.
    """

    def __init__(self, *layers):
        super().__init__()
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            if layer.params and not takes_param_grads(layer):
                raise TypeError(
                    f"Sequential: layer {i}, {layer!r}, owns parameters {sorted(layer.params)} "
                    "but its backward takes no param_grads keyword, so the generator step's "
                    "D.backward(dout, param_grads=False) would change D's grads. Write it as "
                    "backward(self, dout, param_grads=True, input_grad=True), adding into "
                    "grads only when param_grads is true (input_grad=False may return None).")
            for k in layer.params:
                self.params[f"{i}.{k}"] = layer.params[k]
                self.grads[f"{i}.{k}"] = layer.grads[k]
            for k, a in getattr(layer, "buffers", {}).items():
                self.buffers[f"{i}.{k}"] = a
        self.uses_batch_statistics = any(getattr(layer, "uses_batch_statistics", False)
                                         for layer in self.layers)
        self.steps_in_forward = any(getattr(layer, "steps_in_forward", False)
                                    for layer in self.layers)

    def __repr__(self):
        return "Sequential(" + ", ".join(repr(layer) for layer in self.layers) + ")"

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def train(self, mode=True):
        """Set every layer (nested ones too) to training mode, or to evaluation mode."""
        super().train(mode)
        for layer in self.layers:
            if hasattr(layer, "train"):  # a learner's activation need not have one
                layer.train(mode)
        return self

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout, param_grads=True, input_grad=True):
        """Backpropagate dout through every layer, last to first; returns dx (or None).

        ``param_grads=False``: only dx, every ``grads`` array untouched. ``input_grad=False``:
        skip the first layer's dx, which nobody uses, and return None. Layers without
        parameters are called as ``backward(dout)``.
        """
        for i in reversed(range(len(self.layers))):
            layer = self.layers[i]
            if layer.params:
                # dx is needed if the caller wants it or a layer before this one has params
                # (D's first Conv2D follows a Reshape: its dx, a col2im, would go unused)
                needed = input_grad or any(earlier.params for earlier in self.layers[:i])
                dout = layer.backward(dout, param_grads=param_grads, input_grad=needed)
                if not needed:
                    return None
            else:
                dout = layer.backward(dout)
        return dout if input_grad else None  # None even when the first layer is an activation


def walk(layer):
    """layer and, for a Sequential, every layer inside it (depth first)."""
    yield layer
    for inner in getattr(layer, "layers", ()):
        yield from walk(inner)


class Dropout(Layer):
    """Inverted dropout: in training mode ``out = x * keep / (1 - p)``, keep ~ Bernoulli(1 - p)
    drawn from ``rng``, and ``dx = dout * keep / (1 - p)``; evaluation mode passes x through (the
    1 / (1 - p) keeps the expected output x). ``forward(x, mask=keep)`` takes a given 0/1 mask
    instead of drawing one (the parity tests feed torch's)."""

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p
        self.rng = backend.default_rng(None) if rng is None else rng

    def __repr__(self):
        return f"{type(self).__name__}({self.p})"

    def forward(self, x, mask=None):
        backend.check_array(x, f"{self!r}.forward")
        if not self.training:
            self.cache = (None, x.shape)  # no mask: backward passes dout through
            return x
        if mask is None:
            mask = self.rng.random(x.shape) >= self.p  # keep with probability 1 - p
        elif mask.shape != x.shape:
            raise ValueError(f"{self!r}.forward: mask of shape {mask.shape} for x {x.shape}")
        scale = mask.astype(x.dtype)
        if self.p < 1:  # p = 1 drops everything: the mask is all zeros, nothing to rescale
            scale *= 1 / (1 - self.p)
        self.cache = (scale, x.shape)  # overwritten by the next forward
        return x * scale

    def backward(self, dout):
        scale, _ = self._cached(dout, lambda cache: cache[1])
        return dout if scale is None else dout * scale


class Flatten(Layer):
    """(N, C, H, W) (or any (N, ...)) -> (N, C * H * W); backward reshapes dout back."""

    def forward(self, x):
        backend.check_array(x, f"{self!r}.forward")
        self.cache = x  # its shape and memory order, for backward; overwritten by the next forward
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        x = self._cached(dout, lambda x: (x.shape[0], math.prod(x.shape[1:])))
        if x.flags.c_contiguous:
            return dout.reshape(x.shape)
        # x was batch-last in memory (a convolution's output, minigan/im2col.py): dx gets the
        # same memory order, one copy, since NumPy's elementwise ops on mixed layouts are slow:
        # D's last BatchNorm and LeakyReLU backward took 7.3 ms a step on mixed layouts, 2.2 ms
        # on one, plus 0.8 ms for this copy (benchmarks/profile_dcgan_step.py).
        dx = backend.xp.empty_like(x)  # x's memory order
        dx[...] = dout.reshape(x.shape)
        return dx


class Reshape(Layer):
    """(N, D) -> (N, *shape), with D = prod(shape); backward reshapes dout back.
    ``Reshape((128, 7, 7))`` turns the generator's Dense output (N, 6272) into 128 channels of
    7 x 7 per sample, (N, 128, 7, 7)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def __repr__(self):
        return f"Reshape({self.shape})"

    def forward(self, x):
        backend.check_array(x, f"{self!r}.forward")
        if math.prod(x.shape[1:]) != math.prod(self.shape):
            raise ValueError(f"{self!r}.forward: cannot reshape {x.shape} to "
                             f"(N, {', '.join(map(str, self.shape))})")
        self.cache = x.shape  # overwritten by the next forward
        return x.reshape(x.shape[0], *self.shape)

    def backward(self, dout):
        x_shape = self._cached(dout, lambda x_shape: (x_shape[0], *self.shape))
        return dout.reshape(x_shape)
