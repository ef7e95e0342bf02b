"""The array backend: NumPy on the CPU or CuPy on the GPU, chosen once.

Every part of minigan does its array work through ``backend.xp``, the one array module
in use. Read it at call time (``xp = backend.xp``), never with ``from minigan.backend
import xp``, which would freeze whatever module was current at import.

Host <-> device copies happen only through :func:`to_device` and :func:`to_host`, so
each one is visible in the code that calls them. With CuPy, mixing a device array with a
NumPy array raises a ``TypeError``; minigan relies on that instead of copying silently.

    >>> from minigan import backend
    >>> backend.use("cpu").__name__
    'numpy'
"""

import numpy

xp = numpy  # the array module in use: numpy, cupy, or a stand-in that behaves like cupy
device = "cpu"

GPU_INSTALL_HINT = (
    'pip install -e ".[gpu]"   (CUDA 12: installs cupy-cuda12x)\n'
    '  or: pip install -e ".[gpu-cuda13]"   (CUDA 13: installs cupy-cuda13x)'
)


class DeviceError(RuntimeError):
    """The requested device cannot be used; the message says why and what to do."""


def use(name):
    """Select the device once: "cpu" -> NumPy, "gpu" -> CuPy. Returns the array module.

    Raises DeviceError when CuPy is not installed or when no CUDA device is visible,
    saying which of the two it is.
    """
    global xp, device
    if name == "cpu":
        xp, device = numpy, "cpu"
    elif name == "gpu":
        xp, device = _import_cupy(), "gpu"
    else:
        raise ValueError(f"unknown device {name!r}: use 'cpu' or 'gpu'")
    return xp


def use_module(module, name="custom"):
    """Use an arbitrary NumPy-compatible array module (the tests' CuPy stand-in)."""
    global xp, device
    xp, device = module, name
    return xp


def _import_cupy():
    try:
        import cupy
    except ImportError as e:
        raise DeviceError(
            "--device gpu needs CuPy, which is not installed "
            f"(import failed: {e}).\nInstall it with:\n  {GPU_INSTALL_HINT}\n"
            "or run on the CPU with --device cpu."
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDARuntimeError when the driver is missing
        raise DeviceError(
            f"CuPy is installed but no CUDA device is visible ({type(e).__name__}: {e}).\n"
            "Check that `nvidia-smi` lists a GPU and that CUDA_VISIBLE_DEVICES is not "
            "empty, or run on the CPU with --device cpu."
        ) from None
    if count == 0:
        raise DeviceError(
            "CuPy is installed but no CUDA device is visible (cudaGetDeviceCount() == 0).\n"
            "Check that `nvidia-smi` lists a GPU and that CUDA_VISIBLE_DEVICES is not "
            "empty, or run on the CPU with --device cpu."
        )
    return cupy


def to_device(a, dtype=None):
    """Copy a host (NumPy) array to the current device, cast to dtype if given. On the CPU this
    is numpy.asarray: no copy unless the dtype changes."""
    return xp.asarray(a, dtype=dtype)


def to_host(a):
    """Copy an array of the current device back to a NumPy array (a GPU sync)."""
    if xp is numpy:
        return numpy.asarray(a)
    return xp.asnumpy(a)


def default_rng(seed):
    """The explicit random generator of the current device, seeded once.

    On the CPU this is numpy.random.Generator (PCG64); on the GPU, CuPy's Generator.
    minigan calls only ``standard_normal``, ``uniform``, ``random`` and ``integers`` (the
    conditional GAN's labels) on it, which both have.
    """
    return xp.random.default_rng(seed)


def check_array(x, who):
    """Raise a clear TypeError if x is not an array of the current device."""
    if not isinstance(x, xp.ndarray):
        raise TypeError(
            f"{who} got a {type(x).__module__}.{type(x).__name__}, but minigan is using "
            f"{xp.__name__} arrays (device {device!r}). Move host data with "
            "minigan.backend.to_device(x)."
        )
