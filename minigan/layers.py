"""Layers with hand-written forward and backward passes.

Every layer follows one contract (cs231n's, with micrograd's accumulating gradients):

- ``params`` and ``grads`` are dicts with the same keys (``"W"``, ``"b"``); each gradient
  array is allocated once, has its parameter's shape, and ``backward`` adds into it (``+=``),
  so call ``zero_grad()`` before each new backward pass.
- ``forward(x)`` returns ``out`` and keeps what ``backward`` needs in ``self.cache``; the next
  ``forward`` overwrites it.
- ``backward(dout)`` takes the upstream gradient dL/dout and returns ``dx = dL/dx``.

Shapes use ``N`` for the batch size: Dense maps ``(N, D_in) -> (N, D_out)``; activations keep
any shape. Derivations: lessons/04_backprop_layers.md.
"""

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

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.cache = None

    def __call__(self, x):
        return self.forward(x)

    def parameters(self):
        """The list of ``Param(name, data, grad)`` to hand to an optimizer."""
        return [Param(k, self.params[k], self.grads[k]) for k in self.params]

    def zero_grad(self):
        for g in self.grads.values():
            g.fill(0)

    def _cached(self, dout):
        """The cache of the last forward, after checking backward's input against it."""
        if self.cache is None:
            raise ValueError(f"{self!r}: backward called before forward (nothing cached)")
        expected = self.cache.shape
        if dout.shape != expected:
            raise ValueError(
                f"{self!r}.backward: expected dout of shape {expected} (the shape forward "
                f"returned), received {dout.shape}"
            )
        return self.cache


class Dense(Layer):
    """Fully connected layer: ``out = x @ W + b``.

    x: (N, in_features) -> out: (N, out_features); W: (in_features, out_features), b: (out_features,).
    Backward: ``dx = dout @ W.T``, ``dW = x.T @ dout``, ``db = dout.sum(axis=0)``.

    Initialised like torch.nn.Linear: W and b uniform in +-1/sqrt(in_features), drawn from
    ``rng`` (an explicit generator from ``backend.default_rng(seed)``; without one, a fresh
    unseeded generator is used and the weights are not reproducible).
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
            raise ValueError(
                f"{self!r}.forward: expected x of shape (N, {self.in_features}), "
                f"received {x.shape}"
            )
        self.cache = x  # overwritten by the next forward
        out = x @ self.params["W"]  # (N, out)
        out += self.params["b"]  # in place: one (N, out) array per call, not two
        return out

    def backward(self, dout, param_grads=True, input_grad=True):
        """dout: (N, out) -> dx: (N, in). Adds into grads["W"], grads["b"].

        Skip work nobody uses: ``param_grads=False`` leaves ``grads`` untouched (the
        discriminator during the generator step); ``input_grad=False`` returns None instead
        of dx (the first layer of a network).
        """
        x = self.cache
        if x is None:
            raise ValueError(f"{self!r}: backward called before forward (nothing cached)")
        if dout.shape != (x.shape[0], self.out_features):
            raise ValueError(
                f"{self!r}.backward: expected dout of shape ({x.shape[0]}, "
                f"{self.out_features}), received {dout.shape}"
            )
        if param_grads:
            self.grads["W"] += x.T @ dout  # (in, out)
            self.grads["b"] += dout.sum(axis=0)  # (out,)
        if input_grad:
            return dout @ self.params["W"].T  # (N, in)
        return None


class LeakyReLU(Layer):
    """``out = x if x > 0 else negative_slope * x``; ``dx = dout * (1 if x > 0 else slope)``.

    Any shape. At exactly x = 0 the slope branch is used, as in PyTorch.
    """

    def __init__(self, negative_slope=0.2):
        super().__init__()
        self.negative_slope = negative_slope

    def __repr__(self):
        return f"{type(self).__name__}({self.negative_slope})"

    def forward(self, x):
        backend.check_array(x, f"{self!r}.forward")
        # The local slope d(out)/dx: 1 where x > 0, negative_slope elsewhere. Built from the
        # boolean mask with arithmetic rather than xp.where, which runs about 8x slower on
        # NumPy for random signs (benchmarks/bench_step.py); the products are exactly x and
        # slope * x, the same numbers xp.where(x > 0, x, slope * x) gives.
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

    def __repr__(self):
        return "Tanh()"

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
    e = xp.exp(-xp.abs(x))  # in (0, 1]: never overflows
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Layer):
    """``out = sigmoid(x)`` (the stable two-branch form); ``dx = dout * out * (1 - out)``."""

    def __repr__(self):
        return "Sigmoid()"

    def forward(self, x):
        backend.check_array(x, f"{self!r}.forward")
        out = sigmoid(x)
        self.cache = out  # overwritten by the next forward
        return out

    def backward(self, dout):
        out = self._cached(dout)
        return dout * out * (1 - out)


class Sequential(Layer):
    """Layers applied in order; backward runs them in reverse.

    ``params`` and ``grads`` hold every layer's arrays under keys ``"<index>.<name>"``
    (``"0.W"``, ``"0.b"``, ``"2.W"``, ...), the same arrays the layers own, so optimizers,
    checkpoints and the layers all see one copy.
    """

    def __init__(self, *layers):
        super().__init__()
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            for k in layer.params:
                self.params[f"{i}.{k}"] = layer.params[k]
                self.grads[f"{i}.{k}"] = layer.grads[k]

    def __repr__(self):
        return "Sequential(" + ", ".join(repr(layer) for layer in self.layers) + ")"

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout, param_grads=True, input_grad=True):
        """Backpropagate dout through every layer, last to first; returns dx (or None).

        ``param_grads=False``: compute only dx, leaving every ``grads`` array untouched.
        ``input_grad=False``: skip the first layer's dx, which nobody uses, and return None.
        """
        for i in reversed(range(len(self.layers))):
            layer = self.layers[i]
            if isinstance(layer, (Dense, Sequential)):  # the layers with params (maybe nested)
                dout = layer.backward(
                    dout, param_grads=param_grads, input_grad=input_grad or i > 0
                )
            else:
                dout = layer.backward(dout)
        return dout if input_grad else None  # None even when the first layer is an activation
