"""Where minigan's DCGAN training step spends its time, layer by layer (minigan only).

    python benchmarks/profile_dcgan_step.py          # batch 64, float32, 10 timed steps

Wraps every layer's forward and backward and both optimizers' step with a timer, runs 3 warm-up
steps and 10 timed ones of minigan.gan.train_step, and prints the step's time and the 20 largest
parts, in ms per step. A part is summed over every call in a step: D's layers run three times
(the real and the fake batch of the D step, the fake batch of the G step). The timers add a
little overhead of their own.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minigan import backend, gan, models, settings  # noqa: E402

STEPS, BATCH = 10, 64


def main(argv=None):
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=f"It takes no flags: "
                            f"batch {BATCH}, float32, {STEPS} timed steps after 3 warm-up "
                            "steps.").parse_args(argv)
    return profile(STEPS, BATCH)


def profile(steps, batch):
    """Time steps of the DCGAN's train_step at batch size batch, layer by layer; prints them."""
    backend.use("cpu")
    rng = backend.default_rng(0)
    cfg = settings.Config(model="dcgan")  # the DCGAN of train_mnist.py --model dcgan
    G, D = models.build(cfg, rng)
    opt_G, opt_D = models.optimizers(cfg, G, D)
    real = rng.uniform(-1, 1, (batch, 784)).astype(np.float32)
    times = {}

    def timer(fn, key):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            times[key] = times.get(key, 0.0) + time.perf_counter() - start
            return out
        return timed

    for tag, net in (("G", G), ("D", D)):
        for i, layer in enumerate(net.layers):
            for method in ("forward", "backward"):
                key = f"{tag}[{i}] {type(layer).__name__}.{method}"
                setattr(layer, method, timer(getattr(layer, method), key))
    opt_G.step = timer(opt_G.step, "Adam step of G")
    opt_D.step = timer(opt_D.step, "Adam step of D")
    for _ in range(3):
        gan.train_step(G, D, opt_G, opt_D, lambda: real, rng)
    times.clear()
    start = time.perf_counter()
    for _ in range(steps):
        gan.train_step(G, D, opt_G, opt_D, lambda: real, rng)
    total = (time.perf_counter() - start) / steps * 1000
    print(f"DCGAN step, batch {batch}: {total:.1f} ms (mean of {steps})")
    for key, seconds in sorted(times.items(), key=lambda t: -t[1])[:20]:
        print(f"{seconds / steps * 1000:8.2f} ms  {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
