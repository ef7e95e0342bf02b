"""The array backend: device selection, its error messages, and one code path on every module.

The key test runs a network's forward, backward and optimizer steps, and a whole GAN training
step, on the strict stand-in for CuPy (tests/strict_xp.py): any place where the library mixes
a host (NumPy) array into device work raises there, as it would on a GPU.
"""

import sys
import types

import numpy as np
import pytest

import strict_xp
import train_mnist
from minigan import backend, checkpoint, gan, layers, losses, optim

# --- device selection -------------------------------------------------------------------------


def test_use_cpu_selects_numpy():
    assert backend.use("cpu") is np
    assert backend.xp is np and backend.device == "cpu"


def test_unknown_device_is_a_value_error():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        backend.use("tpu")
    assert backend.xp is np  # a failed use() leaves the device as it was


def test_gpu_without_cupy_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` now raises ImportError
    with pytest.raises(backend.DeviceError) as info:
        backend.use("gpu")
    message = str(info.value)
    assert "CuPy, which is not installed" in message
    assert 'pip install -e ".[gpu]"' in message
    assert "--device cpu" in message
    assert backend.xp is np and backend.device == "cpu"


def fake_cupy(get_device_count):
    """A module named cupy whose ``cuda.runtime.getDeviceCount`` is the given function."""
    cupy = types.ModuleType("cupy")
    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    cupy.cuda = types.SimpleNamespace(runtime=runtime)
    return cupy


def test_gpu_with_zero_devices_says_none_is_visible(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(lambda: 0))
    with pytest.raises(backend.DeviceError, match="no CUDA device is visible") as info:
        backend.use("gpu")
    assert "CUDA_VISIBLE_DEVICES" in str(info.value)
    assert "not installed" not in str(info.value)
    assert backend.xp is np


def test_gpu_with_a_failing_driver_says_none_is_visible(monkeypatch):
    def no_driver():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(no_driver))
    with pytest.raises(backend.DeviceError, match="no CUDA device is visible") as info:
        backend.use("gpu")
    assert "cudaErrorNoDevice" in str(info.value)  # the driver's own words are passed on
    assert backend.xp is np


def test_gpu_with_a_device_selects_cupy(monkeypatch):
    cupy = fake_cupy(lambda: 1)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    assert backend.use("gpu") is cupy
    assert backend.xp is cupy and backend.device == "gpu"


def test_check_array_rejects_host_arrays_under_the_strict_module():
    backend.use_module(strict_xp, "strict")
    backend.check_array(strict_xp.zeros(3), "test")  # a device array passes
    with pytest.raises(TypeError, match=r"Dense\(2, 3\)\.forward got a numpy\.ndarray.*to_device"):
        backend.check_array(np.zeros(3), "Dense(2, 3).forward")
    layer = layers.Dense(2, 3, rng=backend.default_rng(0))
    with pytest.raises(TypeError, match=r"Dense\(2, 3\)\.forward got a numpy\.ndarray"):
        layer.forward(np.zeros((4, 2), dtype=np.float32))
    with pytest.raises(TypeError, match=r"Tanh\(\)\.forward got a numpy\.ndarray"):
        layers.Tanh().forward(np.zeros((4, 2), dtype=np.float32))


def test_default_rng_is_numpy_pcg64_on_the_cpu():
    """Seeds mean the same on every machine: seed 42 is NumPy's default_rng(42) stream."""
    ours = backend.default_rng(42).standard_normal(5)
    assert np.array_equal(ours, np.random.Generator(np.random.PCG64(42)).standard_normal(5))


def test_to_device_and_to_host_copy_explicitly():
    backend.use_module(strict_xp, "strict")
    host = np.arange(6.0).reshape(2, 3)
    dev = backend.to_device(host, dtype="float32")
    assert isinstance(dev, strict_xp.ndarray) and dev.dtype == np.float32
    back = backend.to_host(dev)
    assert type(back) is np.ndarray and np.array_equal(back, host)
    host[0, 0] = 100.0  # the device copy is a copy
    assert float(dev[0, 0]) == 0.0


# --- the stand-in itself: it must really refuse to mix --------------------------------------


def test_strict_stand_in_refuses_to_mix_with_numpy_arrays():
    s = strict_xp.ones(3)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        s + np.ones(3)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        np.ones(3) * s
    with pytest.raises(TypeError, match="numpy.ndarray"):
        strict_xp.where(s > 0, np.ones(3), s)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        np.concatenate([s, np.ones(3)])
    with pytest.raises(TypeError, match="out= must be a strict_xp array"):
        np.multiply(s, 2.0, out=np.empty(3))
    with pytest.raises(TypeError, match="implicit conversion to a NumPy array is not allowed"):
        np.asarray(s)
    with pytest.raises(TypeError, match="implicit conversion"):
        np.zeros(3)[...] = s
    with pytest.raises(TypeError, match="numpy.ndarray"):
        s[...] = np.ones(3)  # stricter than CuPy: host data goes through xp.asarray


def test_strict_stand_in_computes_like_numpy():
    host = np.linspace(-2.0, 2.0, 12).reshape(3, 4)
    s = strict_xp.asarray(host)
    # Python scalars, NumPy scalars and 0-d arrays mix freely, as in CuPy.
    out = (2.0 * s + np.float64(1.0)) @ s.T - np.asarray(0.5)
    assert isinstance(out, strict_xp.ndarray)
    assert np.array_equal(strict_xp.asnumpy(out), (2.0 * host + 1.0) @ host.T - 0.5)
    # Reductions give 0-d device arrays; float() is the explicit host read.
    total = strict_xp.sum(s)
    assert isinstance(total, strict_xp.ndarray) and total.ndim == 0
    assert float(total) == float(np.sum(host))
    # ufuncs with out= write into (and return) the device array.
    buf = strict_xp.empty_like(s)
    assert strict_xp.multiply(s, 3.0, out=buf) is buf
    assert np.array_equal(buf.get(), 3.0 * host)
    # Views stay views: writes through reshape(-1) and .T reach the original.
    s.reshape(-1)[5] = 42.0
    s.T[0, 2] = -7.0
    assert float(s[1, 1]) == 42.0 and float(s[2, 0]) == -7.0
    # Same seed, same stream as NumPy.
    a = strict_xp.random.default_rng(3).standard_normal((2, 5), dtype=np.float32)
    b = np.random.default_rng(3).standard_normal((2, 5), dtype=np.float32)
    assert np.array_equal(a.get(), b)


@pytest.mark.parametrize("name", ["normal", "permutation", "shuffle", "permuted", "choice"])
def test_strict_generator_refuses_what_cupys_generator_lacks(name):
    """numpy.random.Generator has these, cupy.random.Generator does not: library code that
    calls one passes on NumPy and fails on a GPU, so it must fail on the stand-in too."""
    rng = strict_xp.random.default_rng(0)
    with pytest.raises(AttributeError, match=rf"Generator\.{name}: CuPy has no such name"):
        getattr(rng, name)
    assert hasattr(np.random.default_rng(0), name)  # NumPy's has it: the test means something


def test_strict_stand_in_refuses_numpy_only_names():
    s = strict_xp.ones(3)
    for name in ["errstate", "insert", "geomspace", "nanpercentile"]:  # NumPy's, not CuPy's
        assert hasattr(np, name)
        with pytest.raises(AttributeError, match=rf"strict_xp\.{name}: CuPy has no such name"):
            getattr(strict_xp, name)
    # A NumPy function on a device array runs the module's own, as in CuPy, or fails.
    with pytest.raises(TypeError, match=r"numpy\.insert on a strict_xp array.*CuPy has no"):
        np.insert(s, 0, 1.0)
    with pytest.raises(TypeError, match=r"numpy\.nanpercentile on a strict_xp array"):
        np.nanpercentile(s, 50)
    with pytest.raises(TypeError, match=r"numpy\.spacing on a strict_xp array"):  # a ufunc
        np.spacing(s)
    assert isinstance(np.mean(s), strict_xp.ndarray)  # cupy.mean exists: it runs
    # Names CuPy has but the stand-in leaves out say so, rather than claiming CuPy lacks them.
    with pytest.raises(AttributeError, match="CuPy has it, but the stand-in does not model it"):
        strict_xp.random.default_rng(0).gamma
    with pytest.raises(AttributeError, match="CuPy has it, but the stand-in does not model it"):
        strict_xp.linspace
    # cupy.random.normal draws from a hidden global state: minigan never does.
    with pytest.raises(AttributeError, match="explicit generator"):
        strict_xp.random.normal
    with pytest.raises(AttributeError, match="writeable"):  # cupy's flags: three, not seven
        s.flags.writeable
    with pytest.raises(TypeError):  # cupy's integers takes int bounds: int(low) of 2 numbers
        strict_xp.random.default_rng(0).integers(strict_xp.asarray([1, 2]), 5)


def test_strict_names_are_all_cupys():
    """Every public name of the stand-in is one CuPy has: NumPy's minus what CuPy lacks, plus
    cupy.asnumpy (and StrictArray, the class, which library code never names)."""
    public = {n for n in dir(strict_xp) if not n.startswith("_")}
    for name in public - {"asnumpy", "StrictArray"}:
        assert hasattr(np, name) and name not in strict_xp._NUMPY_ONLY, name
    rng = strict_xp.random.default_rng(0)
    methods = {n for n in dir(rng) if not n.startswith("_")}
    assert methods - {"bit_generator"} <= strict_xp._CUPY_GENERATOR_METHODS
    assert {"standard_normal", "uniform", "random", "integers"} <= methods


def test_strict_generator_state_cannot_be_saved_as_on_cupy():
    """CuPy's bit_generator.state is a method returning a device pointer, not NumPy's dict: the
    checkpoint keeps no generator state, and resuming reseeds (checkpoint.restore_run)."""
    backend.use_module(strict_xp, "strict")
    assert checkpoint.rng_state(backend.default_rng(0)) is None
    backend.use("cpu")
    assert checkpoint.rng_state(backend.default_rng(0))["bit_generator"] == "PCG64"


def test_size_none_draws_are_0d_device_arrays():
    rng = strict_xp.random.default_rng(0)
    for draw in (rng.random(), rng.standard_normal(), rng.uniform(), rng.integers(3)):
        assert isinstance(draw, strict_xp.ndarray) and draw.shape == ()


# --- the key test: the whole library on the strict module equals the NumPy run ------------------


def small_net(rng, dtype):
    return layers.Sequential(
        layers.Dense(5, 8, rng=rng, dtype=dtype), layers.LeakyReLU(0.2),
        layers.Dense(8, 8, rng=rng, dtype=dtype), layers.ReLU(),
        layers.Dense(8, 6, rng=rng, dtype=dtype), layers.Tanh(),
        layers.Dense(6, 3, rng=rng, dtype=dtype), layers.Sigmoid(),
    )


OPTIMIZERS = {
    "adam": lambda params: optim.Adam(params, lr=1e-2, betas=(0.5, 0.999), weight_decay=1e-3),
    "sgd": lambda params: optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "sgd-plain": lambda params: optim.SGD(params, lr=0.1),
}


def train_small_net(make_opt, host_weights, host_x, host_targets, steps=3):
    """A few forward/backward/step rounds on the current module; everything back on the host."""
    net = small_net(backend.default_rng(0), "float32")
    for k, p in net.params.items():  # both runs start from the same weights
        p[...] = backend.to_device(host_weights[k])
    opt = make_opt(net.parameters())
    x, targets = backend.to_device(host_x), backend.to_device(host_targets)
    for _ in range(steps):
        net.zero_grad()
        out = net.forward(x)
        loss, dout = losses.bce(out, targets)
        dx = net.backward(dout)
        opt.step()
    result = {k: backend.to_host(p) for k, p in net.params.items()}
    result.update(out=backend.to_host(out), dx=backend.to_host(dx), loss=np.float32(float(loss)))
    return result


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_network_trains_on_the_strict_module_like_on_numpy(opt_name):
    rng = np.random.default_rng(1)
    host_weights = {k: backend.to_host(p).copy()
                    for k, p in small_net(backend.default_rng(7), "float32").params.items()}
    host_x = rng.standard_normal((4, 5)).astype(np.float32)
    host_targets = (rng.random((4, 3)) > 0.5).astype(np.float32)

    on_numpy = train_small_net(OPTIMIZERS[opt_name], host_weights, host_x, host_targets)
    backend.use_module(strict_xp, "strict")
    on_strict = train_small_net(OPTIMIZERS[opt_name], host_weights, host_x, host_targets)

    for k in host_weights:
        assert not np.array_equal(on_strict[k], host_weights[k]), f"{k} did not change"
    for k in on_numpy:  # the same NumPy kernels underneath: equal to the bit
        assert type(on_strict[k]) is type(on_numpy[k])
        assert np.array_equal(on_strict[k], on_numpy[k]), k


def run_train_steps(host_G, host_D, host_real, gen_loss, steps=2):
    """Tiny G and D, copied from host weights, through gan.train_step on the current module."""
    G = gan.make_generator(latent_dim=4, hidden=(8,), out_dim=6, rng=backend.default_rng(0))
    D = gan.make_discriminator(in_dim=6, hidden=(8,), rng=backend.default_rng(0))
    for net, host in ((G, host_G), (D, host_D)):
        for k, p in net.params.items():
            p[...] = backend.to_device(host[k])
    opt_G = optim.Adam(G.parameters(), lr=2e-3, betas=(0.5, 0.999))
    opt_D = optim.SGD(D.parameters(), lr=1e-2, momentum=0.5)
    real = backend.to_device(host_real)
    rng = backend.default_rng(5)  # the noise stream: the stand-in draws NumPy's numbers
    for _ in range(steps):
        metrics = gan.train_step(G, D, opt_G, opt_D, lambda: real, rng, k=2,
                                 gen_loss=gen_loss, real_target=0.9, latent_dim=4)
    result = {f"G.{k}": backend.to_host(p) for k, p in G.params.items()}
    result.update({f"D.{k}": backend.to_host(p) for k, p in D.params.items()})
    result.update({name: float(getattr(metrics, name))
                   for name in ("d_loss", "g_loss", "d_real", "d_fake")})
    return result


@pytest.mark.parametrize("gen_loss", ["nonsaturating", "minimax"])
def test_gan_train_step_on_the_strict_module_like_on_numpy(gen_loss):
    host_G = {k: backend.to_host(p).copy() for k, p in gan.make_generator(
        latent_dim=4, hidden=(8,), out_dim=6, rng=backend.default_rng(11)).params.items()}
    host_D = {k: backend.to_host(p).copy() for k, p in gan.make_discriminator(
        in_dim=6, hidden=(8,), rng=backend.default_rng(12)).params.items()}
    host_real = np.random.default_rng(13).uniform(-1, 1, (3, 6)).astype(np.float32)

    on_numpy = run_train_steps(host_G, host_D, host_real, gen_loss)
    backend.use_module(strict_xp, "strict")
    on_strict = run_train_steps(host_G, host_D, host_real, gen_loss)

    for k, w in {**{f"G.{k}": w for k, w in host_G.items()},
                 **{f"D.{k}": w for k, w in host_D.items()}}.items():
        assert not np.array_equal(on_strict[k], w), f"{k} did not change"
        assert on_strict[k].dtype == np.float32
    for k in on_numpy:
        assert np.array_equal(on_strict[k], on_numpy[k]), k
    assert 0 < on_strict["d_real"] < 1 and 0 < on_strict["d_fake"] < 1


SCRIPT = ["--limit", "64", "--batch-size", "32", "--g-hidden", "16", "--d-hidden", "16",
          "--latent-dim", "8", "--log-every", "1", "--epochs", "1"]


@pytest.mark.parametrize("flags", [
    ["--recipe", "improved", "--label-smoothing", "0.1", "--k", "2"],  # every trick, k = 2
    ["--model", "dcgan", "--limit", "32", "--batch-size", "16"],  # convolutions, BatchNorm
], ids=["mlp-improved", "dcgan"])
def test_training_script_on_the_strict_module_like_on_numpy(tmp_path, monkeypatch, flags):
    """train_mnist.py end to end with --device swapped for the stand-in: epoch order, noise,
    dropout, instance noise, the steps, the checkpoint and the samples all run on it, and the
    checkpoint equals the NumPy run's to the bit. Resuming the strict run takes the GPU's path:
    no generator state was saved, so it reseeds."""
    def run(name):
        return train_mnist.main([*SCRIPT, *flags, "--out", str(tmp_path / name)])

    on_numpy = run("numpy")
    monkeypatch.setattr(backend, "use", lambda device: backend.use_module(strict_xp, "strict"))
    on_strict = run("strict")
    numpy_arrays, numpy_meta = checkpoint.load(on_numpy / "checkpoint.npz")
    strict_arrays, strict_meta = checkpoint.load(on_strict / "checkpoint.npz")
    assert numpy_meta["rng"] is not None and strict_meta["rng"] is None
    assert sorted(strict_arrays) == sorted(numpy_arrays)
    for k in numpy_arrays:
        assert np.array_equal(strict_arrays[k], numpy_arrays[k]), k

    train_mnist.main(["--resume", str(on_strict), "--epochs", "2"])
    resumed, meta = checkpoint.load(on_strict / "checkpoint.npz")
    assert meta["global_step"] == 2 * strict_meta["global_step"]
    assert not np.array_equal(resumed["G/0.W"], strict_arrays["G/0.W"])
