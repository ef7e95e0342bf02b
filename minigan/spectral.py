"""Spectral normalization of D's weights (Miyato et al. 2018): W / sigma(W) in every layer.

A Dense layer x -> xW + b has the Lipschitz constant sigma(W), the largest singular value of
W, so an MLP D of Dense and LeakyReLU layers, each weight divided by its own sigma, is at most
1-Lipschitz. For a Conv2D, sigma is that of the reshaped kernel matrix (out, in * k * k), as
Miyato et al. normalise it; overlapping windows count an input pixel in several windows, so the
convolution's own constant can exceed it (by up to about ceil(k / stride) per spatial axis).
sigma is estimated by the power method, one step per training forward, warm-started from the
last step's vectors u (left, (out,)) and v (right, (in,), (in * k * k,) for a Conv2D), as
torch.nn.utils.parametrizations.spectral_norm does it:

    u <- normalize(W_mat v),   v <- normalize(W_mat^T u),   sigma = u^T W_mat v,
    W_eff = W / sigma,         normalize(a) = a / max(||a||, eps)

W_mat is torch's (out, in * k * k) matrix of the weight: Conv2D's W (C_out, C_in, k, k)
reshaped, and Dense's W (in, out) transposed (minigan's Dense computes x @ W, torch's Linear
x @ weight.T with weight = W.T).

Backward, with u and v held constant, as torch and everyone else computes it (the power step
runs under no_grad). With u, v fixed, sigma = u^T W_mat v = sum_ij u_i W_ij v_j is linear in
W, so d sigma / dW_mat = u v^T. By the quotient rule on W_eff = W / sigma, for an upstream
G = dL/dW_eff:

    dL/dW_mat = G / sigma - <G, W_mat> / sigma^2 * u v^T  =  (G - <G, W_eff> u v^T) / sigma

with <A, B> = sum(A * B). The bias is not normalised: db as the layer computes it.
Tests: tests/test_spectral.py (central differences, torch's spectral_norm to 1e-10).
"""

from minigan import backend
from minigan.conv import Conv2D
from minigan.layers import Dense, Layer, Sequential


def normalize(a, eps):
    """``a / max(||a||, eps)``: torch's F.normalize of a vector."""
    xp = backend.xp
    return a / xp.maximum(xp.sqrt(a @ a), eps)


def as_matrix(W, layer):
    """torch's (out, in * k * k) view of a weight-shaped array: Dense's W.T, Conv2D's reshape.
    A view, so writing into it writes into the array."""
    return W.T if isinstance(layer, Dense) else W.reshape(W.shape[0], -1)


class SpectralNorm(Layer):
    """A Dense or Conv2D computing with ``W_eff = W / sigma``, sigma = u^T W_mat v.

    x, out: the wrapped layer's shapes. The wrapper takes the layer over:

    - ``params``/``grads``: the trained W and b and their gradients (the layer's own arrays,
      so optimizers and checkpoints see W, never W_eff);
    - ``buffers``: u (out,) and v (in * k * k,), updated in place by every training forward,
      so a Sequential's buffers and a checkpoint's restore reach the same arrays;
    - ``inner``: the layer itself, whose ``params["W"]`` is from now on W_eff (rewritten by
      every forward) and ``grads["W"]`` dL/dW_eff (rewritten by every backward). Keeping
      W_eff in an array of its own leaves the trained W untouched without swapping arrays in
      and out of the layer, and the layer's forward and backward run as they are.

    Training mode runs ``n_power_iterations`` power steps per forward (torch's default 1);
    evaluation mode none: sigma then comes from the stored u, v (torch does the same).
    Initialisation, as torch: u, v ~ N(0, 1) drawn from rng (u first, in float64, then cast to
    W's dtype), normalised, then 15 power steps.
    """

    # Every training forward moves u and v, so one pass of D over real and fake stacked would
    # take one power step where two passes, D(real) then D(fake), take two: discriminator_step
    # sends such a D through two passes (minigan/gan.py), as the PyTorch twin calls it.
    steps_in_forward = True

    def __init__(self, layer, rng, n_power_iterations=1, eps=1e-12):
        super().__init__()
        if not isinstance(layer, (Dense, Conv2D)):
            raise TypeError(f"SpectralNorm wraps a Dense or a Conv2D, not {layer!r}")
        if n_power_iterations < 1:
            raise ValueError(f"SpectralNorm: n_power_iterations must be at least 1, got "
                             f"{n_power_iterations}")
        xp = backend.xp
        self.inner, self.eps, self.n_power_iterations = layer, eps, n_power_iterations
        self.params, self.grads = dict(layer.params), dict(layer.grads)  # the trained W, b
        W = self.params["W"]
        layer.params["W"] = xp.empty_like(W)  # W_eff from now on
        layer.grads["W"] = xp.zeros_like(W)  # dL/dW_eff
        h, w = as_matrix(W, layer).shape  # (out, in * k * k)
        # drawn in float64 and cast: a float32 D starts from the float64 D's u, v, rounded
        u = rng.standard_normal(h, dtype="float64").astype(W.dtype)  # (out,)
        v = rng.standard_normal(w, dtype="float64").astype(W.dtype)  # (in * k * k,)
        self.buffers = {"u": normalize(u, eps), "v": normalize(v, eps)}
        self.power_iteration(15)
        layer.params["W"][...] = W / self.sigma()  # W_eff: the layer is consistent from the start
        self.training = layer.training

    def __repr__(self):
        return f"SpectralNorm({self.inner!r})"

    def train(self, mode=True):
        self.inner.train(mode)
        return super().train(mode)

    def power_iteration(self, steps):
        """``steps`` power steps from the stored u, v, written back into them in place."""
        W_mat = as_matrix(self.params["W"], self.inner)  # (out, in * k * k)
        u, v = self.buffers["u"], self.buffers["v"]
        for _ in range(steps):
            u[...] = normalize(W_mat @ v, self.eps)  # (out,)
            v[...] = normalize(W_mat.T @ u, self.eps)  # (in * k * k,)

    def sigma(self):
        """``u^T W_mat v`` from the stored u, v and the current W: a 0-d array."""
        W_mat = as_matrix(self.params["W"], self.inner)
        return self.buffers["u"] @ (W_mat @ self.buffers["v"])

    def forward(self, x):
        """x -> the wrapped layer's output with ``W_eff = W / sigma`` (after a power step in
        training mode)."""
        if self.training:
            self.power_iteration(self.n_power_iterations)
        sigma = self.sigma()
        self.inner.params["W"][...] = self.params["W"] / sigma  # W_eff, in its own array
        out = self.inner.forward(x)
        # backward also reads u and v, from the buffers: only the next forward changes them,
        # and it overwrites this cache (and the inner layer's) too
        self.cache = sigma  # overwritten by the next forward
        return out

    def backward(self, dout, param_grads=True, input_grad=True):
        """dout -> dx through W_eff; adds dL/dW (u, v fixed) into grads["W"], dL/db into
        grads["b"]. ``param_grads=False`` leaves ``grads`` untouched."""
        self._cached(dout, lambda sigma: dout.shape)  # a forward came first; inner checks dout
        if param_grads:
            self.inner.grads["W"].fill(0)  # the inner backward adds dL/dW_eff here
        dx = self.inner.backward(dout, param_grads=param_grads, input_grad=input_grad)
        if param_grads:  # grads["b"] is the inner layer's own: db is already in
            self.add_weight_grad(self.inner.grads["W"])
        return dx

    def add_weight_grad(self, dW_eff):
        """Add ``dL/dW = (G - <G, W_eff> u v^T) / sigma`` into grads["W"], G = dL/dW_eff of
        W's shape, with the u, v and sigma of the last forward (minigan.penalties uses it too)."""
        sigma, u, v = self.cache, self.buffers["u"], self.buffers["v"]
        W_eff = self.inner.params["W"]
        dsigma = sigma_grad(u, v, self.inner)  # u v^T, laid out as W
        self.grads["W"] += (dW_eff - backend.xp.sum(dW_eff * W_eff) * dsigma) / sigma


def sigma_grad(u, v, layer):
    """d sigma / dW = u v^T (u, v fixed), laid out as the layer's W: torch's (out, in * k * k)
    matrix reshaped for Conv2D, its transpose v u^T for Dense's (in, out). Computing in W's own
    layout, rather than through transposed views of it, makes dL/dW of a 784 x 1024 Dense 4.5x
    faster (benchmarks/bench_levers.py spectral). (For scale: a whole MLP step of hinge +
    spectral norm costs 1.39-1.47x the 2014 game's, benchmarks/bench_games.py.)"""
    if isinstance(layer, Dense):
        return v[:, None] * u[None, :]  # (in, out)
    return (u[:, None] * v[None, :]).reshape(layer.params["W"].shape)  # (out, in, k, k)


def apply(D, rng, n_power_iterations=1, eps=1e-12):
    """A new Sequential: D's layers with every Dense and Conv2D wrapped in SpectralNorm.

    The wrappers draw their u, v from rng in layer order (first layer first, u before v), so
    one seed gives one set of vectors. D's layers are taken over (see SpectralNorm): use the
    returned network, not D.
    """
    if not isinstance(D, Sequential):
        raise TypeError(f"spectral.apply: expected a Sequential, got {D!r}")
    return Sequential(*(SpectralNorm(layer, rng, n_power_iterations, eps)
                        if isinstance(layer, (Dense, Conv2D)) else layer
                        for layer in D.layers))
