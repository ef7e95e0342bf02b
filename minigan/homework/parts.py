"""The homework's parts, in the lessons' order: what the learner writes, where, and for how much.

Each part names the functions of minigan that the learner rewrites (``"Dense.backward"`` is a
method, ``"softplus"`` a function). The skeleton blanks exactly these, and the grader grades
them together; everything else in the learner's files is given.
"""

from typing import NamedTuple


class Part(NamedTuple):
    number: int
    title: str
    file: str  # the learner's file, named like minigan's module
    functions: tuple  # what the learner writes, by name ("Class.method" or "function")
    lessons: tuple  # the lessons that derive it
    points: int


PARTS = (
    Part(1, "losses on logits", "losses.py",
         ("softplus", "bce_with_logits", "generator_loss_minimax",
          "generator_loss_nonsaturating"), ("02_losses.md",), 10),
    Part(2, "Dense", "layers.py", ("Dense.forward", "Dense.backward"),
         ("04_backprop_layers.md",), 15),
    Part(3, "LeakyReLU", "layers.py", ("LeakyReLU.forward", "LeakyReLU.backward"),
         ("04_backprop_layers.md",), 5),
    Part(4, "Tanh", "layers.py", ("Tanh.forward", "Tanh.backward"),
         ("04_backprop_layers.md",), 5),
    Part(5, "sigmoid and Sigmoid", "layers.py", ("sigmoid", "Sigmoid.forward", "Sigmoid.backward"),
         ("04_backprop_layers.md",), 10),
    Part(6, "Sequential.backward", "layers.py", ("Sequential.backward",),
         ("04_backprop_layers.md",), 10),
    Part(7, "SGD with momentum", "optim.py", ("SGD.step",), ("05_optimizers.md",), 10),
    Part(8, "Adam", "optim.py", ("Adam.step",), ("05_optimizers.md",), 15),
    Part(9, "discriminator step", "gan.py", ("discriminator_step",),
         ("01_minimax_game.md", "02_losses.md"), 10),
    Part(10, "generator step", "gan.py", ("generator_step",),
         ("01_minimax_game.md", "04_backprop_layers.md"), 10),
    Part(11, "losses beyond JS", "losses.py",
         ("least_squares", "generator_loss_least_squares", "hinge_real", "hinge_fake",
          "wasserstein_real", "wasserstein_fake", "generator_loss_wasserstein"),
         ("14_beyond_jensen_shannon.md",), 10),
    Part(12, "spectral norm backward", "spectral.py",
         ("SpectralNorm.backward", "SpectralNorm.add_weight_grad"),
         ("14_beyond_jensen_shannon.md",), 15),
    Part(13, "R1 by double backward", "penalties.py", ("double_backward", "r1"),
         ("14_beyond_jensen_shannon.md",), 15),
    Part(14, "gradient penalty", "penalties.py", ("gradient_penalty",),
         ("14_beyond_jensen_shannon.md",), 10),
    Part(15, "Fréchet distance", "scores.py",
         ("gaussian_stats", "sqrtm_psd", "frechet_distance"), ("11_measuring_samples.md",), 10),
    Part(16, "Conv2D.backward", "conv.py", ("Conv2D.backward",), ("12_convolutions.md",), 15),
    Part(17, "ConvTranspose2D", "conv.py",
         ("ConvTranspose2D.forward", "ConvTranspose2D.backward"), ("12_convolutions.md",), 15),
    Part(18, "BatchNorm.backward", "batchnorm.py", ("BatchNorm.backward",),
         ("12_convolutions.md",), 10),
)

# Every homework folder has these four: parts 1-10 were there from the start. A folder started
# before parts 11-14 (or 15-18) existed lacks their files (or, in losses.py, their functions);
# the grader reports those parts as not in the folder (``learner.present``).
FILES = ("losses.py", "layers.py", "optim.py", "gan.py")
ALL_FILES = FILES + ("spectral.py", "penalties.py",  # parts 11-14, lesson 14
                     "scores.py", "conv.py", "batchnorm.py")  # parts 15-18, lessons 11 and 12
TOTAL = sum(p.points for p in PARTS)


def part(number):
    return PARTS[number - 1]


def todo_message(p, name):
    """The text of the skeleton's ``raise NotImplementedError(...)`` for function ``name``."""
    return f"TODO (part {p.number}): write {name}"
