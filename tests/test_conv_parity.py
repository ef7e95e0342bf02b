"""Parity with PyTorch for the DCGAN's layers and for the whole DCGAN over 20 steps.

Each layer against autograd through its torch twin (reference.torch_gan.twin_of) in float64, to
1e-10: forward, dx and every parameter gradient, and BatchNorm's running statistics. The whole
DCGAN (small channels, batch 8) against TorchGAN, built from the reference's own networks
(reference.torch_gan.make_dcgan_*), over 20 alternating steps from the same weights, batches and
noise, k = 1: every loss, every weight and every running statistic, to 1e-9.
"""

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="the parity tests compare minigan with PyTorch; install the reference extra: "
    "pip install -e '.[reference]'"
)

from minigan import backend, layers, optim  # noqa: E402
from minigan.batchnorm import BatchNorm  # noqa: E402
from minigan.conv import Conv2D, ConvTranspose2D  # noqa: E402
from minigan.data import load_mnist, to_model_input  # noqa: E402
from minigan.gan import (  # noqa: E402
    discriminator_step,
    generator_step,
    make_dcgan_discriminator,
    make_dcgan_generator,
    sample_noise,
)
from reference import torch_gan  # noqa: E402
from reference.torch_gan import TorchGAN, load_minigan_weights, twin_of  # noqa: E402

TOL64 = 1e-10


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def host(a):
    return a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def assert_parity(name, ours, theirs, tol=TOL64, floor=0.0):
    """max|ours - theirs| / max(max|theirs|, floor) < tol (tests/test_parity.py's measure)."""
    ours, theirs = host(ours), host(theirs)
    assert ours.shape == theirs.shape, f"{name}: shape {ours.shape}, PyTorch has {theirs.shape}"
    assert np.isfinite(ours).all(), f"{name}: minigan produced inf or NaN"
    scale = max(float(np.abs(theirs).max()), floor)
    err = float(np.abs(ours - theirs).max()) / (scale if scale > 0 else 1.0)
    assert err < tol, f"{name}: relative error {err:.2e} against PyTorch, tolerance {tol:.0e}"
    return err


def torch_grad(module, name):
    """The torch gradient that minigan's grads[name] holds (Dense's W is transposed)."""
    if isinstance(module, torch.nn.Linear) and name == "W":
        return module.weight.grad.T
    return {"W": module.weight, "gamma": module.weight, "b": module.bias,
            "beta": module.bias}[name].grad


def check_layer_parity(layer, x, dout, input_ndim):
    """forward, dx, every parameter gradient and every buffer of a minigan layer (or
    Sequential) against autograd through its torch twin, float64, < 1e-10."""
    seq = layer if isinstance(layer, layers.Sequential) else layers.Sequential(layer)
    twin = twin_of(seq, input_ndim=input_ndim)  # same layers, same weights, same mode
    seq.zero_grad()
    out = seq.forward(x)
    dx = seq.backward(dout)
    x_t = torch.tensor(x, requires_grad=True)
    out_t = twin(x_t)
    out_t.backward(torch.from_numpy(dout))
    assert_parity("out", out, out_t)
    assert_parity("dx", dx, x_t.grad)
    for key, grad in seq.grads.items():  # "0.W", "2.gamma", ...
        i, name = key.split(".")
        # floor 1: the bias of a layer that feeds a BatchNorm has a gradient of exactly 0 in
        # exact arithmetic (BatchNorm subtracts every per-channel constant): both sides hold
        # the rounding of a sum of ~1000 terms of order 1 that cancel (~1e-13) there
        assert_parity(f"grad {key}", grad, torch_grad(twin[int(i)], name), floor=1.0)
    for key, buffer in seq.buffers.items():  # "2.running_mean", ...
        i, name = key.split(".")
        assert_parity(key, buffer, getattr(twin[int(i)], name))


def normal(shape, seed, scale=1.0, shift=0.0):
    return scale * np.random.default_rng(seed).standard_normal(shape) + shift


def rng(seed=0):
    return backend.default_rng(seed)


CONV_CASES = [  # (C_in, C_out, k, stride, padding, H, W)
    (1, 4, 5, 2, 2, 28, 28), (4, 6, 5, 2, 2, 14, 14), (3, 2, 3, 1, 1, 6, 5), (2, 3, 2, 3, 0, 8, 7),
    (3, 5, 4, 2, 3, 5, 9), (2, 2, 1, 1, 0, 4, 3),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_parity(case):
    c_in, c_out, k, s, p, h, w = case
    layer = Conv2D(c_in, c_out, k, stride=s, padding=p, rng=rng(), dtype="float64")
    x = normal((3, c_in, h, w), 1)
    check_layer_parity(layer, x, normal(layer.output_shape(x.shape), 2), 4)


CONVT_CASES = [  # (C_in, C_out, k, stride, padding, output_padding, H, W)
    (6, 4, 5, 2, 2, 1, 7, 7), (4, 1, 5, 2, 2, 1, 14, 14), (3, 2, 3, 1, 1, 0, 5, 6),
    (2, 3, 2, 3, 0, 2, 4, 3), (3, 2, 4, 2, 3, 1, 5, 4), (2, 2, 3, 3, 1, 1, 3, 5),
]


@pytest.mark.parametrize("case", CONVT_CASES, ids=str)
def test_conv_transpose2d_parity(case):
    c_in, c_out, k, s, p, op, h, w = case
    layer = ConvTranspose2D(c_in, c_out, k, stride=s, padding=p, output_padding=op, rng=rng(),
                            dtype="float64")
    x = normal((3, c_in, h, w), 1)
    check_layer_parity(layer, x, normal(layer.output_shape(x.shape), 2), 4)


def batchnorm(c, seed=0):
    layer = BatchNorm(c, dtype="float64")
    layer.params["gamma"][...] = normal((c,), seed, 0.5, 1.0)
    layer.params["beta"][...] = normal((c,), seed + 1)
    return layer


@pytest.mark.parametrize("ours, theirs", [
    (lambda: Conv2D(8, 16, 5, rng=rng(0)), lambda: torch.nn.Conv2d(8, 16, 5)),
    (lambda: ConvTranspose2D(16, 8, 5, rng=rng(0)), lambda: torch.nn.ConvTranspose2d(16, 8, 5)),
], ids=["Conv2D", "ConvTranspose2D"])
def test_conv_init_bound_is_torchs(ours, theirs):
    """Each side's largest of 3,200 uniform weights lies within 0.2% of its bound
    1/sqrt(fan_in), so the two agree: the same fan_in (torch's ConvTranspose2d takes it from
    W's second axis, C_out * k * k; C_in * k * k would make the bound 1.4 times smaller)."""
    torch.manual_seed(0)
    w, w_t = float(np.abs(ours().params["W"]).max()), float(theirs().weight.detach().abs().max())
    assert w == pytest.approx(w_t, rel=4e-3)


@pytest.mark.parametrize("shape", [(8, 3), (2, 3), (4, 3, 5, 5), (2, 5, 1, 3)], ids=str)
def test_batchnorm_parity_training(shape):
    """Three batches in a row: each one's output and gradients, and the running statistics."""
    layer = batchnorm(shape[1])
    twin = twin_of(layers.Sequential(layer), input_ndim=len(shape))
    for step in range(3):
        x = normal(shape, 10 + step, scale=3.0, shift=step - 1.0)
        dout = normal(shape, 20 + step)
        layer.zero_grad()
        out, dx = layer.forward(x), layer.backward(dout)
        x_t = torch.tensor(x, requires_grad=True)
        twin.zero_grad()
        out_t = twin(x_t)
        out_t.backward(torch.from_numpy(dout))
        assert_parity(f"out {step}", out, out_t)
        assert_parity(f"dx {step}", dx, x_t.grad)
        assert_parity(f"dgamma {step}", layer.grads["gamma"], twin[0].weight.grad)
        assert_parity(f"dbeta {step}", layer.grads["beta"], twin[0].bias.grad)
        assert_parity(f"running_mean {step}", layer.running_mean, twin[0].running_mean)
        assert_parity(f"running_var {step}", layer.running_var, twin[0].running_var)


@pytest.mark.parametrize("shape", [(6, 3), (3, 2, 4, 4)], ids=str)
def test_batchnorm_parity_eval(shape):
    layer = batchnorm(shape[1])
    layer.running_mean[...] = normal((shape[1],), 5)
    layer.running_var[...] = normal((shape[1],), 6) ** 2 + 0.1
    check_layer_parity(layer.eval(), normal(shape, 7, 2.0), normal(shape, 8), len(shape))


def test_dropout_parity_with_torchs_mask():
    """torch draws its mask; minigan is handed the same one (forward(x, mask=...))."""
    x = normal((16, 3, 4, 4), 1)
    dout = normal(x.shape, 2)
    torch.manual_seed(0)
    x_t = torch.tensor(x, requires_grad=True)
    out_t = torch.nn.Dropout(0.3)(x_t)
    out_t.backward(torch.from_numpy(dout))
    mask = host(out_t) != 0  # where torch kept x (x has no exact zeros)
    layer = layers.Dropout(0.3)
    assert_parity("out", layer.forward(x, mask=mask), out_t)
    assert_parity("dx", layer.backward(dout), x_t.grad)


def test_flatten_reshape_parity():
    net = layers.Sequential(layers.Reshape((2, 3, 4)), layers.Flatten())
    check_layer_parity(net, normal((5, 24), 1), normal((5, 24), 2), 2)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_dcgan_networks_parity(train):
    """The DCGAN's G and D at small channels, layer stacks as they are built for training."""
    G = make_dcgan_generator(8, (6, 4), rng=rng(1), dtype="float64").train(train)
    D = make_dcgan_discriminator((4, 6), rng=rng(2), dtype="float64").train(train)
    z = normal((5, 8), 3)
    check_layer_parity(G, z, normal((5, 784), 4), 2)
    check_layer_parity(D, normal((5, 784), 5), normal((5, 1), 6), 2)


def reference_twins(G, D):
    """The reference's own DCGAN (reference/torch_gan.py's builders, written out in torch with
    the same design as minigan's, not built from minigan's layer list) with G's and D's weights:
    twin_of copies minigan's layers, so an accidental change of slope, activation or kernel in
    make_dcgan_* would be copied into the twin and pass. load_minigan_weights refuses networks
    whose layers differ in kind, size, slope or geometry. A design choice the two share (D's
    BatchNorm after its first convolution, where Radford et al. have none) it cannot see."""
    return (load_minigan_weights(torch_gan.make_dcgan_generator(8, (6, 4), "float64"), G),
            load_minigan_weights(torch_gan.make_dcgan_discriminator((4, 6), dtype="float64"), D))


def test_dcgan_is_the_reference_architecture():
    """minigan's DCGAN layer by layer as the reference builds it, and the same outputs."""
    G = make_dcgan_generator(8, (6, 4), rng=rng(1), dtype="float64").train(False)
    D = make_dcgan_discriminator((4, 6), rng=rng(2), dtype="float64").train(False)
    G_t, D_t = reference_twins(G, D)
    z, x = normal((5, 8), 3), normal((5, 784), 5)
    with torch.no_grad():
        assert_parity("G(z)", G.forward(z), G_t.eval()(torch.from_numpy(z)))
        assert_parity("D(x)", D.forward(x), D_t.eval()(torch.from_numpy(x)))


# --- the whole DCGAN --------------------------------------------------------------------------


def test_dcgan_parity_20_steps():
    """20 alternating steps, k = 1, batch 8, float64, from the same weights, MNIST batches and
    noise: every loss and D output on the way, then every weight and every running statistic of
    both networks, to 1e-9 (measured: ~1e-13). D runs real and fake as two batches on both sides;
    the G step keeps D's running statistics on both sides (minigan.gan.generator_step)."""
    n, latent = 8, 8
    G = make_dcgan_generator(latent, (6, 4), rng=rng(0), dtype="float64")
    D = make_dcgan_discriminator((4, 6), rng=rng(0), dtype="float64")
    twin = TorchGAN(*reference_twins(G, D))  # the reference's networks, minigan's weights
    opt_G = optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    images = to_model_input(load_mnist("test")[0][:20 * n], dtype="float64")
    noise = backend.default_rng(1)
    ours, theirs = [], []
    for step in range(20):
        real = images[n * step:n * (step + 1)]
        z = sample_noise(noise, n, latent, "float64")
        ours.append([float(v) for v in discriminator_step(G, D, opt_D, real, z)])
        theirs.append([float(v) for v in twin.d_step(real, z)])
        z = sample_noise(noise, n, latent, "float64")
        ours.append([float(generator_step(G, D, opt_G, z)), 0, 0])
        theirs.append([float(twin.g_step(z)), 0, 0])
    assert_parity("losses and D outputs", np.array(ours), np.array(theirs), 1e-9)
    for name, net, net_t in (("G", G, twin.G), ("D", D, twin.D)):
        for key, value in {**net.params, **net.buffers}.items():
            i, what = key.split(".")
            module = net_t[int(i)]
            theirs_value = {"W": module.weight.T if isinstance(module, torch.nn.Linear)
                            else module.weight, "gamma": module.weight, "b": module.bias,
                            "beta": module.bias}.get(what) if what not in (
                                "running_mean", "running_var") else getattr(module, what)
            assert_parity(f"{name} {key}", value, theirs_value, 1e-9)
    assert float(ours[-2][0]) != float(ours[0][0])  # it trained: the D loss moved
