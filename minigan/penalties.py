"""Gradient penalties on D, by hand: R1 and WGAN-GP, and the double backpropagation they need.

Both penalties are functions of g_i = dD(x_i)/dx_i, the gradient of D's scalar output for sample
i with respect to that sample (row i of D.backward(ones), the gradient of sum_i D(x_i): each
row depends on its own sample only); each penalty is a mean over the batch:

    R1 (Mescheder et al. 2018), on real x:     P = gamma / 2 * mean_i ||g_i||^2
    WGAN-GP (Gulrajani et al. 2017), on x_hat: P = lam * mean_i (||g_i|| - 1)^2,
        x_hat_i = eps_i * x_i + (1 - eps_i) * G(z)_i,  eps_i ~ U[0, 1), one eps per row

with ||.|| over all the input dimensions of a row. D's step needs dP/dtheta, and g is itself the
output of a computation: D's backward pass. So we backpropagate through the backward pass
(Drucker & LeCun 1992, "double backpropagation"). Write D = f_L o ... o f_1 and delta_k for
the dout that layer k's backward receives (delta_L = ones, N x 1; lesson 14's delta_l). The
backward pass is

    delta_{k-1} = delta_k J_k^T   (J_k = d f_k / d x_{k-1}, the local Jacobian),   g = delta_0.

P depends on g, so its adjoint is delta_bar_0 = dP/dg (R1: gamma / N * g). Backpropagating it
through that chain visits the layers in the *forward* order, k = 1 .. L, carrying
delta_bar_k = dP/d delta_k, and asks of each layer: how does delta_{k-1} depend on delta_k, on
the layer's parameters, and on its input?

- Dense, out = x W + b: its backward is delta_{k-1} = delta_k W^T. Linear in delta_k, with W as
  the matrix, and neither x nor b in it. Entry by entry,
  delta_{k-1}[n, i] = sum_j delta_k[n, j] W[i, j], so
      dP/dW       = delta_bar_{k-1}^T delta_k   (in, out): the same product as dW = x^T dout
      dP/db       = 0                           (b is not in the backward pass)
      delta_bar_k = delta_bar_{k-1} W           (N, out): the forward's product, without the bias
- LeakyReLU, out = s(x) * x with s = 1 where x > 0, slope elsewhere: its backward is
  delta_{k-1} = delta_k * s(x). s is piecewise constant, so ds/dx = 0 everywhere but at x = 0
  (a set of measure zero, the same kink the first derivative has): the second derivative of
  LeakyReLU is zero almost everywhere, and the double backward only multiplies by the same
  slope mask,
      delta_bar_k = delta_bar_{k-1} * s(x).
- SpectralNorm(Dense) (minigan/spectral.py) is a Dense with W_eff = W / sigma, sigma = u^T W^T v
  with its singular vectors u, v held constant (as in its backward):
  dP/dW_eff = delta_bar_{k-1}^T delta_k, delta_bar_k = delta_bar_{k-1} W_eff, then the chain
  rule to W that its backward takes, (G - <G, W_eff> (u v^T)^T) / sigma.
- Dropout (a fixed mask m times 1 / (1 - p) for the pass) is LeakyReLU with s = m / (1 - p);
  InstanceNoise, out = x + std * noise, has the identity Jacobian: delta_bar_k = delta_bar_{k-1}.

None of these backwards reads its input x except through a piecewise-constant slope, so no
adjoint flows back into the forward pass: the whole double backward is one pass of
delta_bar_0 = dP/dg from the first layer to the last through D linearised at x (biases dropped,
each activation replaced by its frozen slope), adding delta_bar_{k-1}^T delta_k into each
Dense's grads["W"] on the way.
That pass is D's forward-mode derivative (a Jacobian-vector product) in the direction dP/dg.
A layer whose local derivative varies with x (tanh, BatchNorm, MinibatchStd) would add a second
backward through the forward pass. Every layer outside the list above is refused; BatchNorm,
MinibatchStd and Pack (linear, but one output per m samples) with their own reason (WHY_NOT),
any other (Tanh among them) as one whose double backward is not derived here.

Calling a penalty runs D.forward and overwrites every layer's cache: run it after D's loss has
been backpropagated (the gradients add up in D's grads), not between a forward and its backward.
In training mode that forward also takes SpectralNorm's power step, as torch's D(x_hat) does.
Tests: tests/test_penalties.py (central differences, autograd with create_graph=True).
"""

from minigan import backend
from minigan.batchnorm import BatchNorm
from minigan.layers import Dense, Dropout, LeakyReLU
from minigan.spectral import SpectralNorm
from minigan.tricks import InstanceNoise, MinibatchStd, Pack

WHY_NOT = {  # layers the penalties refuse, and why
    BatchNorm: "BatchNorm couples the rows of a batch (each sample's output depends on the "
               "others, so there is no per-sample gradient to penalise; Gulrajani et al. 2017 "
               "drop BatchNorm from the critic for this reason), and its Jacobian varies with x",
    MinibatchStd: "MinibatchStd couples the rows of a batch (each output row depends on every "
                  "input row), and its derivative varies with x",
    Pack: "Pack gives one output per m samples, so a per-sample gradient norm would be a "
          "per-pack one; that penalty is not derived here",
}


def _check_covered(D):
    """D's layers, after checking each has a double backward here; ValueError naming one that
    does not."""
    for i, layer in enumerate(getattr(D, "layers", [D])):
        inner = layer.inner if isinstance(layer, SpectralNorm) else layer
        if not isinstance(inner, (Dense, LeakyReLU, Dropout, InstanceNoise)):
            why = next((text for cls, text in WHY_NOT.items() if isinstance(layer, cls)),
                       "its double backward is not derived here (minigan.penalties covers "
                       "Dense, spectrally normalised or not, LeakyReLU, ReLU, Dropout and "
                       "InstanceNoise: the MLP's D)")
            raise ValueError(f"gradient penalty: cannot differentiate through layer {i}, "
                             f"{layer!r}: {why}")
    return getattr(D, "layers", [D])


def backward_of_ones(D, x):
    """g = dD(x_i)/dx_i for every row: D.forward(x), then D's backward of ones, layer by layer.

    x: (N, ...) -> g: (N, ...), x's shape; and ``douts``, the dout each layer's backward
    received (aligned with D.layers), which the double backward reads. D's grads are untouched.
    D's output must be one number per sample, (N, 1): then row i of g is that number's gradient.
    """
    layers = _check_covered(D)
    out = D.forward(x)
    if out.shape != (x.shape[0], 1):
        raise ValueError(f"gradient penalty: D must give one number per sample, (N, 1) = "
                         f"({x.shape[0]}, 1); {D!r} gave {out.shape}")
    dout = backend.xp.ones_like(out)  # delta_L = dD/dD = 1
    douts = [None] * len(layers)
    for k in reversed(range(len(layers))):
        douts[k] = dout
        layer = layers[k]
        dout = layer.backward(dout, param_grads=False) if layer.params else layer.backward(dout)
    return dout, douts  # dout is now delta_0 = g


def double_backward(D, dg, douts):
    """Backpropagate dP/dg through D's backward pass: add dP/dW into every Dense's grads["W"].

    dg: (N, ...) dP/dg, g's shape; douts: from :func:`backward_of_ones` on the same forward.
    The pass runs first layer to last. On entering layer k, delta_bar is delta_bar_{k-1},
    dP/d(the dx layer k's backward returned); the layer turns it into delta_bar_k, dP/d(the
    dout its backward received): lesson 14's delta-bar.
    """
    delta_bar = dg.reshape(dg.shape[0], -1)  # (N, in): a Dense sees rows
    for layer, dout in zip(_check_covered(D), douts):
        if isinstance(layer, Dense):  # backward: dx = dout @ W.T
            layer.grads["W"] += delta_bar.T @ dout  # dP/dW, (in, out); dP/db = 0
            delta_bar = delta_bar @ layer.params["W"]  # (N, out)
        elif isinstance(layer, SpectralNorm):  # a Dense with W_eff: dx = dout @ W_eff.T
            layer.add_weight_grad(delta_bar.T @ dout)  # dP/dW_eff, then to W (its u, v fixed)
            delta_bar = delta_bar @ layer.inner.params["W"]  # (N, out): W_eff
        elif isinstance(layer, LeakyReLU):  # backward: dx = dout * s, s piecewise constant
            delta_bar = delta_bar * layer.cache  # the slope mask s its forward cached
        elif isinstance(layer, Dropout):  # backward: dx = dout * m / (1 - p), m fixed
            scale, _ = layer.cache
            delta_bar = delta_bar if scale is None else delta_bar * scale
        # InstanceNoise: backward dx = dout, so delta_bar passes through unchanged
    # delta_bar is now dP/ddelta_L, the adjoint of the constant ones: nothing to do with it


def r1(D, x, gamma):
    """The R1 penalty (Mescheder et al. 2018) on real samples: ``gamma / 2 * mean_i ||g_i||^2``.

    D: minigan's MLP D (Dense, spectrally normalised or not, LeakyReLU, Dropout,
    InstanceNoise), output (N, 1); x: (N, ...) real samples. Returns the penalty, a 0-d array,
    and adds its gradient with respect to every D parameter into D's grads (zero for the
    biases: see the module docstring).
    dP/dg_i = gamma / N * g_i
    """
    n = x.shape[0]
    g, douts = backward_of_ones(D, x)
    g = g.reshape(n, -1)  # (N, in): a row per sample, the norm over all its dimensions
    penalty = gamma / 2 * backend.xp.mean((g * g).sum(axis=1))
    double_backward(D, gamma / n * g, douts)
    return penalty


def gradient_penalty(D, real, fake, lam, rng):
    """WGAN-GP's penalty (Gulrajani et al. 2017): ``lam * mean_i (||g_i|| - 1)^2`` at x_hat.

    real, fake: (N, ...) the same shape; x_hat = eps * real + (1 - eps) * fake with one
    eps ~ U[0, 1) per row, drawn from rng. Returns the penalty, a 0-d array, and adds its
    gradient with respect to every D parameter into D's grads.

    dP/dg_i = 2 lam / N * (||g_i|| - 1) * g_i / ||g_i||, and at g_i = 0 (a D flat at x_hat_i)
    g_i / ||g_i|| is 0/0: there the norm has a kink, and we take its least subgradient,
    g_i / ||g_i|| = 0 (torch's norm backward does the same). The penalty there is lam / N
    per row, its gradient zero for that row, and nothing divides by zero: the division uses
    the norm where it is positive and 1 elsewhere.
    """
    xp = backend.xp
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real {real.shape} and fake {fake.shape} differ")
    n = real.shape[0]
    eps = rng.random((n,) + (1,) * (real.ndim - 1), dtype=real.dtype)  # (N, 1): one per row
    x_hat = eps * real + (1 - eps) * fake
    g, douts = backward_of_ones(D, x_hat)
    g = g.reshape(n, -1)  # (N, in)
    norm = xp.sqrt((g * g).sum(axis=1, keepdims=True))  # (N, 1): ||g_i|| over all dimensions
    penalty = lam * xp.mean((norm - 1) ** 2)
    positive = norm > 0
    # (||g|| - 1) / ||g||, and 0 where ||g|| = 0
    coef = xp.where(positive, (norm - 1) / xp.where(positive, norm, 1), 0)
    double_backward(D, 2 * lam / n * coef * g, douts)
    return penalty
