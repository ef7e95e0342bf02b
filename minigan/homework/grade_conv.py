"""Parts 16-18: the layers of lesson 12 (Conv2D.backward, ConvTranspose2D, BatchNorm.backward).

Each is graded by ``grade_layer`` (shapes, the float64 gradient check, agreement with minigan's,
backward adding into grads, the cache, inputs of +-1e4, the two switches) on geometries where
windows overlap (stride < k) and with padding, so that the classic mistakes show:

- a kernel mirrored in the adjoint ("flip"): computed as minigan's layer with W[..., ::-1, ::-1];
- windows' gradients (patches) assigned where they overlap, not added ("overlap"): recognised by
  behaviour, as a layer that is right where windows do not overlap (stride k + 1, padded as well,
  so that a mistake of the padding is not taken for it, and apart from k, so that a range(s)
  written for range(k) is not either) and wrong where they do;
- the stride missing where windows meet pixels ("stride"): recognised by behaviour, as a layer
  that is right at stride 1 (padded) and wrong at strides 2 and 3;
- the padding not cropped ("pad_crop"): the padded shape returned;
- BatchNorm's backward without the term through the mean, through the variance, or both (as if
  the batch's statistics were constants), and evaluation mode with the training formula.
"""

import numpy as np

from minigan import batchnorm as mg_batchnorm
from minigan import conv as mg_conv
from minigan.homework.checks import Failed
from minigan.homework.grade_layers import grade_layer
from minigan.homework.learner import LearnerError


def mirrored(what):
    """grade_layer's variants: what (``"out"`` or ``"dx"``) minigan's layer gives with the
    kernel mirrored, W[:, :, ::-1, ::-1], the "flip" mistake; for ``grade_geometries``."""
    def variants(make_ref, x):
        def of(ref, dout):
            mirror = make_ref()
            mirror.params["W"][...] = ref.params["W"][:, :, ::-1, ::-1]
            mirror.params["b"][...] = ref.params["b"]
            out = mirror.forward(x.copy())
            return {what: {"flip": out if what == "out" else mirror.backward(dout)}}
        return of
    return variants


def padded(shape, p):
    n, c, h, w = shape
    return n, c, h + 2 * p, w + 2 * p


def grade_geometries(run, cls, ref_cls, args, kwargs, x, seed, variants, wrong_shapes):
    """grade_layer on the learner's ``cls(*args, **kwargs)`` beside minigan's ``ref_cls``."""
    def make():
        return run(f"{cls.__name__}{args}", cls, *args, rng=np.random.default_rng(seed),
                   dtype="float64", **kwargs)

    def make_ref():
        return ref_cls(*args, rng=np.random.default_rng(seed), dtype="float64", **kwargs)
    return grade_layer(run, make, make_ref, x, variants=variants(make_ref, x),
                       wrong_shapes=wrong_shapes)


def passes(grade):
    try:
        grade()
    except (Failed, LearnerError):
        return False
    return True


def grade_overlapping(run, overlapping, apart, stride_one):
    """Grade ``overlapping()`` (stride 2 < k); when its numbers are wrong without a hint, grade
    ``apart()`` (stride k + 1, no overlap, the same padding and output_padding): passing there
    names the "overlap" mistake; failing there too but passing ``stride_one()`` (stride 1, padded
    as well) names the "stride" mistake."""
    try:
        overlapping()
    except Failed as f:
        if f.hints or f.check == "shapes":
            raise
        if passes(apart):
            raise Failed(f.check, f.message, ["overlap"], f.error) from None
        if passes(stride_one):
            raise Failed(f.check, f.message, ["stride"], f.error) from None
        raise


# --- part 16: Conv2D.backward -------------------------------------------------------------------

def grade_conv2d(run, learner_conv):
    rng = np.random.default_rng(30)
    x = rng.standard_normal((2, 2, 5, 5))  # (N, C_in, H, W)

    def conv(k, stride, padding, x, seed):
        wrong = {("dx", padded(x.shape, padding)): "pad_crop"} if padding else {}
        return lambda: grade_geometries(run, learner_conv.Conv2D, mg_conv.Conv2D, (2, 3, k),
                                        dict(stride=stride, padding=padding), x, seed,
                                        mirrored("dx"), wrong)

    grade_overlapping(run, conv(3, 2, 1, x, 31), conv(2, 3, 1, x, 32),  # apart: padded too
                      conv(3, 1, 1, x, 39))
    conv(3, 1, 0, rng.standard_normal((3, 2, 4, 5)), 33)()  # stride 1, no padding


# --- part 17: ConvTranspose2D.forward and .backward ---------------------------------------------

def grade_conv_transpose(run, learner_conv):
    rng = np.random.default_rng(34)
    x = rng.standard_normal((2, 2, 3, 4))  # (N, C_in, H, W)

    def convT(k, stride, padding, output_padding, x, seed):
        kw = dict(stride=stride, padding=padding, output_padding=output_padding)
        full = mg_conv.ConvTranspose2D(2, 3, k, **kw).output_shape(x.shape)
        wrong = {("out", padded(full, padding)): "pad_crop"} if padding else {}
        return lambda: grade_geometries(run, learner_conv.ConvTranspose2D,
                                        mg_conv.ConvTranspose2D, (2, 3, k), kw, x, seed,
                                        mirrored("out"), wrong)

    grade_overlapping(run, convT(3, 2, 1, 1, x, 35), convT(2, 3, 1, 1, x, 36),
                      convT(3, 1, 1, 0, x, 40))
    convT(4, 2, 1, 0, rng.standard_normal((1, 2, 3, 3)), 37)()  # the DCGAN's k = 4 geometry


# --- part 18: BatchNorm.backward ----------------------------------------------------------------

GAMMA, BETA = np.array([0.5, 1.5, -2.0]), np.array([0.1, -0.3, 2.0])
RUNNING = np.array([0.4, -1.0, 2.5]), np.array([0.7, 2.0, 1.3])  # mean, var for eval mode


def bn_variants(ref, dout):
    """BatchNorm's dx as each classic mistake computes it, from minigan's cache."""
    x_hat, inv_std, training = ref.cache
    axes = (0,) if dout.ndim == 2 else (0, 2, 3)
    n = dout.size // ref.num_features
    scale = ref.params["gamma"].reshape(inv_std.shape) * inv_std  # gamma r
    mean_term = dout.sum(axis=axes, keepdims=True) / n
    var_term = x_hat * (dout * x_hat).sum(axis=axes, keepdims=True) / n
    if not training:
        return {"dx": {"bn_eval": scale * (dout - mean_term - var_term)}}
    return {"dx": {"bn_mean": scale * (dout - var_term), "bn_var": scale * (dout - mean_term),
                   "bn_constant": scale * dout}}


def grade_batchnorm(run, learner_batchnorm):
    """Training mode on images (N, C, H, W) and on (N, C), then evaluation mode with running
    statistics that are not torch's initial 0 and 1; last, 2 channels, so that a channel count
    written as 3 shows."""
    rng = np.random.default_rng(38)

    def layers(training, c):
        def setup(layer):
            layer.params["gamma"][...] = GAMMA[:c]
            layer.params["beta"][...] = BETA[:c]
            layer.running_mean[...], layer.running_var[...] = (r[:c] for r in RUNNING)
            return layer.train(training)

        def make():
            layer = run(f"BatchNorm({c})", learner_batchnorm.BatchNorm, c, dtype="float64")
            return run(f"BatchNorm({c}) setup", setup, layer)

        def make_ref():
            return setup(mg_batchnorm.BatchNorm(c, dtype="float64"))
        return make, make_ref

    for training, x in ((True, 3 * rng.standard_normal((4, 3, 2, 2)) + 1.5),
                        (True, rng.standard_normal((5, 3)) - 0.5),
                        (False, 3 * rng.standard_normal((4, 3, 2, 2)) + 1.5),
                        (True, 2 * rng.standard_normal((3, 2, 3, 3)) - 1.0)):
        grade_layer(run, *layers(training, x.shape[1]), x, variants=bn_variants)
