"""Shared fixtures: the hypothesis profile, the array-module fixture ``xp``, backend hygiene.

``xp`` runs a test body three times: on NumPy, on the strict CuPy stand-in (tests/strict_xp.py,
whose arrays refuse to mix with NumPy arrays), and on CuPy, which skips with the reason
(``backend.DeviceError``'s message) where CuPy or a CUDA device is missing. So GPU tests are the
same bodies as CPU tests, and the strict run catches host/device mixing without a GPU.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

import strict_xp
from minigan import backend

# Hypothesis: no deadline (first calls pay NumPy's warm-up), few examples so the suite stays fast
# on two cores; on CI (env CI set) the examples are derandomized, so a red build reproduces.
ON_CI = bool(os.environ.get("CI"))
settings.register_profile(
    "minigan",
    deadline=None,
    max_examples=30,
    derandomize=ON_CI,
    **({"database": None} if ON_CI else {}),  # CI: the same examples every run, none replayed
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "minigan"))


@pytest.fixture(autouse=True)
def _restore_cpu_backend():
    """Every test starts and ends on NumPy, even one that switched modules and then failed."""
    backend.use("cpu")
    yield
    backend.use("cpu")


@pytest.fixture(params=["numpy", "strict", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp(request):
    """The array module in use for this run of the test (also set as ``backend.xp``)."""
    if request.param == "numpy":
        module = backend.use("cpu")
    elif request.param == "strict":
        module = backend.use_module(strict_xp, "strict")
    else:
        try:
            module = backend.use("gpu")
        except backend.DeviceError as e:
            pytest.skip(str(e).splitlines()[0])  # e.g. "... needs CuPy, which is not installed"
    yield module
    backend.use("cpu")


# ---- tiny training runs, for the tests of commands that read a run folder ---------------------

SMALL = ["--limit", "192", "--batch-size", "32", "--g-hidden", "32,64", "--d-hidden", "64,32",
         "--latent-dim", "16", "--log-every", "2", "--epochs", "1"]  # a second or two


def train_small(tmp_path_factory, name, *flags):
    """Train train_mnist.py's SMALL run with flags into a fresh folder; returns the run folder."""
    import train_mnist  # here, not at the top: most tests never train

    run = tmp_path_factory.mktemp(name) / "run"
    train_mnist.main([*SMALL, *flags, "--out", str(run)])
    return run


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    """A tiny unconditional run, trained once for each test module that asks for it."""
    return train_small(tmp_path_factory, "plain")


@pytest.fixture(scope="module")
def cond_run(tmp_path_factory):
    """A tiny conditional run (--conditional concat), trained once for each test module."""
    return train_small(tmp_path_factory, "cond", "--conditional", "concat")


# ---- PyTorch on one thread, for the parity tests ------------------------------------------------


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a parity module's tiny tensors: on a loaded 2-core machine its
    thread pool spends more time waiting for a core than computing (a 20-step game: 9 s on its
    default threads, 0.3 s on one; the DCGAN's 20 steps: 30 s -> a few s). A module asks for it
    with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``, after importorskip."""
    import torch  # here: only the parity tests need PyTorch, and they skip without it

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---- real images in float64, for the parity tests of the whole GAN ----------------------------


@pytest.fixture(scope="session")
def mnist_f64():
    """Real images, (10000, 784) float64 in [-1, 1] (the test split: it loads fastest)."""
    from minigan.data import load_mnist, to_model_input

    return to_model_input(load_mnist("test")[0], dtype="float64")
