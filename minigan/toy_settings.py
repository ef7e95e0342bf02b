"""The 2-D lab's settings (python -m minigan.toy; lessons/10_mode_collapse.md): its ToyConfig, the
rule of each setting (train_mnist.py's rule where the name is shared, minigan/settings.py) and the
check of the flags given, which merges a recipe as train_mnist.py does."""

from dataclasses import dataclass, fields

from minigan.settings import (
    RULES, ConfigError, check_batch_for_d, check_fits_in_memory, check_game, explained, folder,
    integer, one_of, show, validate, widths, with_recipe)


@dataclass
class ToyConfig:
    """The 2-D lab's settings (python -m minigan.toy; lessons/10_mode_collapse.md)."""

    dataset: str = "ring"
    steps: int = 4000
    batch_size: int = 256
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    k: int = 1
    gen_loss: str = "nonsaturating"
    latent_dim: int = 2
    hidden: tuple = (128, 128)  # G's hidden widths; D mirrors them
    seed: int = 0
    recipe: str = "default"
    ema: float = 0.0
    minibatch_std: int = 0
    pack: int = 1
    instance_noise: float = 0.0
    d_dropout: float = 0.0
    label_smoothing: float = 0.0
    loss: str = "bce"
    clip: float = 0.0
    spectral_norm: int = 0
    r1: float = 0.0
    gp: float = 0.0
    optimizer: str = "adam"
    frames: int = 10  # pictures over training (0: none)
    out: str = ""  # "": runs/toy-DATASET-SEED
    # What models.build reads and the lab does not vary: minigan's MLP, float32.
    model = "mlp"
    slope = 0.2
    dtype = "float32"

    @property
    def g_hidden(self):
        return self.hidden

    @property
    def d_hidden(self):
        return self.hidden[::-1]


TOY_RULES = {  # train_mnist.py's rule for every setting of the same name, and the lab's own
    **{f.name: RULES[f.name] for f in fields(ToyConfig) if f.name in RULES},
    "dataset": explained(one_of("grid", "ring"), "ring (8 Gaussians, std 0.01) or grid (25 "
                         "Gaussians, std 0.05)"),
    "steps": integer(1),
    "hidden": explained(widths(), "comma-separated widths of G's hidden layers, like 128,128 "
                        "(D mirrors them)"),
    "frames": explained(integer(0), "an integer from 0 to --steps: pictures over training"),
    "out": explained(folder(want_dir=False), "a folder name (created if missing), not a "
                     "file, or empty for runs/toy-DATASET-SEED"),
    # --recipe fast's batch, learning rates and widths were chosen for MNIST's minutes, not the
    # lab's.
    "recipe": explained(one_of("default", "improved"), "default or improved (the tricks of "
                        "train_mnist.py's --recipe improved; --recipe fast is train_mnist.py's "
                        "only, its batch, learning rates and widths chosen on MNIST)"),
}


def step_bytes(cfg):
    """A lower bound on the bytes one training step holds at once: the batch drawn on the host
    (a mode index, the noise and the points: 40 bytes a point) and, in float32, every layer's
    output of G on the batch and of D on the real and the fake batch."""
    g = cfg.latent_dim + sum(cfg.hidden) + 2
    d = 2 * (2 + sum(cfg.hidden) + 1)
    return cfg.batch_size * (40 + 4 * (g + d))


MEMORY_ADVICE = "choose smaller --hidden or --batch-size"  # a step that does not fit in memory


def memory_subject(cfg):
    """What a message says does not fit in memory: the sizes that decide it, as flags."""
    return f"the networks or a batch (--hidden {show(cfg.hidden)}, --batch-size {cfg.batch_size})"


def toy_config(given):
    """The lab's ToyConfig from the flags given (the recipe merged as train_mnist.py merges it);
    raises ConfigError."""
    given = with_recipe(given, TOY_RULES)
    cfg = validate(ToyConfig(**given), flags=given, rules=TOY_RULES)
    check_batch_for_d(cfg)
    check_game(cfg)
    check_fits_in_memory(step_bytes(cfg), memory_subject(cfg), MEMORY_ADVICE)
    if cfg.frames > cfg.steps:
        raise ConfigError(f"--frames {cfg.frames}: not allowed; use an integer from 0 to --steps "
                          f"({cfg.steps}), or raise --steps.")
    cfg.out = cfg.out or f"runs/toy-{cfg.dataset}-{cfg.seed}"
    return cfg
