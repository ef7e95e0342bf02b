"""A stand-in conditional generator for the tests of minigan.sample
(tests/test_sample_conditional.py, tests/test_walk.py): RecordingG records the noise and label
vectors it is given, so a test can check them against the noise drawn again by hand from the
device's generator (``noise``)."""

import numpy as np

from minigan import backend, conditional, data

LATENT = 4


class RecordingG:
    """A stand-in conditional G: out = tanh(z A + y B) for fixed random A, B, recording the
    noise and the label vectors it is given (as host float64 arrays)."""

    def __init__(self, seed=0):
        r = np.random.default_rng(seed)
        self.A = 0.3 * r.standard_normal((LATENT, 784))
        self.B = r.standard_normal((conditional.NUM_CLASSES, 784))
        self.z, self.y = [], []

    def forward(self, z, y=None):
        backend.check_array(z, "RecordingG")  # device arrays only, as a real G takes
        z = backend.to_host(z).astype(np.float64)
        self.z.append(z)
        out = z @ self.A
        if y is not None:
            backend.check_array(y, "RecordingG")
            y = backend.to_host(y).astype(np.float64)
            self.y.append(y)
            out = out + y @ self.B
        return backend.to_device(np.tanh(out).astype(np.float32))

    def inputs(self):
        return np.concatenate(self.z), (np.concatenate(self.y) if self.y else None)

    def pixels(self, z, y):
        """What G draws for host z, y: the same formula, applied to the expected inputs."""
        out = z @ self.A + (0 if y is None else y @ self.B)
        return data.to_pixels(np.tanh(out).astype(np.float32))


def noise(seed, *counts):
    """The first draws of the device's generator seeded with seed (NumPy's on the CPU, CuPy's on
    the GPU), (count, LATENT) each, as sample_noise draws them (float32), as host float64."""
    rng = backend.default_rng(seed)
    return [backend.to_host(rng.standard_normal((c, LATENT), dtype=np.float32)).astype(np.float64)
            for c in counts]


EYE = np.eye(conditional.NUM_CLASSES)
