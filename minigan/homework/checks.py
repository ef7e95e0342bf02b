"""What the graders share: the hints, the comparisons that name a mistake, the result records.

When a check fails, ``diagnose`` compares the learner's numbers with the variants a classic
mistake would produce (a transpose, a factor N, a sign, a missing derivative factor, ...) and
names the one that matches, in one sentence of ``HINTS``; the expected array is never printed.
"""

from dataclasses import dataclass, field

import numpy as np

from minigan.gradcheck import rel_error

HINTS = {
    "transpose": "A transpose is missing or extra: with x (N, in) and W (in, out), dW = x.T @ "
                 "dout has W's shape and dx = dout @ W.T has x's shape; let the shapes decide.",
    "mean": "Off by a constant factor (the batch size N, or 2 for two batches): a sum where a "
            "mean belongs, or a missing or extra 1/N.",
    "sign": "The right size with the opposite sign: check the sign of the derivative, and that "
            "a step goes against the gradient (p = p - lr * g).",
    "derivative": "dx equals dout: the activation's derivative factor is missing "
                  "(dx = dout * f'(x), lessons/04_backprop_layers.md).",
    "no_dout": "dx equals f'(x) alone: the upstream gradient is missing; the chain rule "
               "multiplies by it, dx = dout * f'(x) (lessons/04_backprop_layers.md).",
    "leaky_slope": "dx is 0 where x < 0: that is ReLU's derivative; LeakyReLU's is the slope "
                   "there, dx = dout * negative_slope (lessons/04_backprop_layers.md).",
    "assign": "The gradient was assigned, not added: write self.grads[...] += ... into the "
              "existing array (backward accumulates, and the optimizer holds those very arrays).",
    "overflow": "Overflow at large |x|: a naive sigmoid 1 / (1 + exp(-x)) or softplus "
                "log(1 + exp(x)) overflows exp; use the stable forms, where exp only sees -|x| "
                "(lessons/02_losses.md).",
    "log_prob": "The log of a probability that rounded to 0 or 1: at large |logit| sigmoid(x) is "
                "exactly 1.0 or 0.0, so log(sigmoid(x)) or log(1 - sigmoid(x)) is log(0); write "
                "the loss on the logits, -log sigmoid(x) = softplus(-x) and -log(1 - sigmoid(x)) "
                "= softplus(x), as minigan's bce_with_logits does (lessons/02_losses.md).",
    "adam_t0": "Adam's bias correction counts t from 0: on the first step 1 - beta1**0 = 0; "
               "increment t before using it, so the first step has t = 1.",
    "adam_no_correction": "Adam without its bias correction: m and v start at 0, so early on "
                          "they are too small; divide by 1 - beta1**t and 1 - beta2**t (m_hat, "
                          "v_hat) before the step (lessons/05_optimizers.md).",
    "eps_sqrt": "eps is inside the square root: Adam divides by sqrt(v_hat) + eps, "
                "not by sqrt(v_hat + eps).",
    "d_touched": "The generator step changed D (its weights or grads): backpropagate through "
                 "D with D.backward(dout, param_grads=False) and step only opt_G.",
    "zero_grad": "Gradients left from before the step leaked in: call zero_grad() on the "
                 "network before its backward pass.",
    "lsq_half": "Least squares is 0.5 * mean((out - t)**2): the 0.5 is missing (loss and grad "
                "twice minigan's), or the grad is not the derivative of the loss (lessons/"
                "14_beyond_jensen_shannon.md).",
    "kink": "At the hinge's kink (out = 1 exactly for hinge_real, -1 for hinge_fake) the "
            "gradient is 0, as torch's relu's: compare strictly, out < 1 (out > -1).",
    "sn_term": "The quotient rule's second term is missing: sigma depends on W too (d sigma / "
               "dW_mat = u v^T, u and v held constant), so dL/dW_mat = (G - <G, W_eff> u v^T) / "
               "sigma, not G / sigma.",
    "sn_layout": "u v^T is torch's (out, in) layout, and Dense's W is (in, out): work in "
                 "as_matrix's view of G and of grads['W'] (Dense's transpose, Conv2D's reshape), "
                 "or add the transposed term, v u^T, to a Dense's W.",
    "r1_half": "Twice minigan's R1: the penalty is gamma / 2 times the mean of ||g_i||^2, so its "
               "gradient with respect to g_i is gamma / N * g_i (the 2 of the square cancels the "
               "1/2; lessons/14_beyond_jensen_shannon.md).",
    "norm_axis": "The norm is over the wrong axis: ||g_i|| is one number per sample, over all of "
                 "that sample's input dimensions: reshape g to (N, -1), sum g * g over axis 1, "
                 "then average over the N samples.",
    "sqrt_deriv": "The square root's derivative is missing: d||g||/dg = g / ||g||, so dP/dg_i = "
                  "2 lam / N * (||g_i|| - 1) * g_i / ||g_i||.",
    "eps_swapped": "eps weights the fake, not the real: the docstring's x_hat is eps * real + "
                   "(1 - eps) * fake. The other way round is the same penalty in distribution "
                   "(1 - eps is U(0, 1] too), but the grader compares the very same draws, so "
                   "write it as documented.",
    "per_pixel": "The interpolates draw one eps per pixel: draw one eps per sample, shape (N, 1), "
                 "so that x_hat_i lies on the line from fake_i to real_i.",
    "in_place": "Update each parameter array in place, p.data[...] = p.data - lr * g: the "
                "layers hold these very arrays and never see a new one (and p.data -= ... "
                "fails: a NamedTuple's field cannot be reassigned).",
    "cov_n": "The covariance is divided by N: the unbiased estimate divides the sum of outer "
             "products of the centred features by N - 1, as np.cov does (lessons/"
             "11_measuring_samples.md).",
    "elementwise_sqrt": "The square root is taken entry by entry: S^(1/2) is the matrix R with "
                        "R @ R = S, from the eigenvectors, V diag(sqrt(w)) V^T (np.linalg.eigh), "
                        "not np.sqrt(S).",
    "sqrt_product": "tr (S1 S2)^(1/2) is not tr (S1^(1/2) S2^(1/2)) unless S1 and S2 commute: take "
                    "the root of S1^(1/2) S2 S1^(1/2), which has the eigenvalues of S1 S2.",
    "fd_squared": "The square root of the distance: minigan's frechet_distance, like FID, is the "
                  "squared distance |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr (S1 S2)^(1/2).",
    "eig_clip": "Not finite on a singular covariance: rounding makes its zero eigenvalues "
                "slightly negative; clip them at 0 before the square root.",
    "flip": "The kernel is mirrored: the adjoint of a cross-correlation (Conv2D's dx, "
            "ConvTranspose2D's forward) slides the kernel flipped, W[..., ::-1, ::-1]; painting "
            "each pixel's k x k patch (col2im of W_flat.T @ x_flat) needs no flip, so a flip "
            "there, or a missing one in a sliding window, mirrors it.",
    "overlap": "Right where windows do not overlap (stride > k), wrong where they do: a pixel "
               "in several windows receives the sum of their gradients (patches), so add, +=, "
               "never assign; and a fancy-indexed a[idx] += v adds only once where idx repeats "
               "an index, so use np.add.at, or add window by window (lessons/12_convolutions.md, "
               "col2im).",
    "stride": "Right at stride 1, wrong at strides 2 and 3: the stride is missing where windows "
              "meet pixels. Window (i, j) starts at (i*s, j*s), so kernel offset (u, v) touches "
              "rows u, u + s, ..., u + s*(h_out - 1): the slice u:u + s*h_out:s, not "
              "u:u + h_out (lessons/12_convolutions.md).",
    "pad_crop": "The padding is not cropped off: the zero border is not part of x (nor of the "
                "transposed convolution's output, cut from its padded canvas), so return the "
                "padded array's [:, :, p:p + H, p:p + W] (unpad), of x's shape (of H_out x W_out).",
    "bn_mean": "BatchNorm's backward misses the term through the mean: every a_i moves mu, so "
               "subtract sum(dout) / n (dx = gamma r / n (n dout - sum(dout) - x_hat sum(dout "
               "x_hat))).",
    "bn_var": "BatchNorm's backward misses the term through the variance: every a_i moves "
              "sigma^2, so subtract x_hat * sum(dout * x_hat) / n.",
    "bn_constant": "BatchNorm's backward treats the batch's mean and variance as constants "
                   "(dx = gamma r dout, evaluation mode's): in training mode every a_i moves "
                   "both, which gives the terms -sum(dout) / n and -x_hat sum(dout x_hat) / n.",
    "bn_eval": "In evaluation mode the running statistics are constants: dx = gamma r dout, "
               "without the batch terms (the cache says which mode forward ran in).",
}

TOL = 1e-7  # the gradient check's, and agreement's: a real bug is off by far more
MATCH = 1e-6  # how close the learner's numbers must be to a mistake's variant to name it


class Failed(Exception):
    """A check failed: ``check`` is its name, ``hints`` the classic mistakes recognised."""

    def __init__(self, check, message, hints=(), error=None):
        super().__init__(message)
        self.check, self.message, self.hints, self.error = check, message, list(hints), error


@dataclass
class Result:
    """One part's grade: what ``check`` prints on its line of the scoreboard."""

    part: object
    status: str  # "passed", "failed", "not attempted", "not in this folder"
    points: int = 0
    check: str = ""
    message: str = ""
    hints: list = field(default_factory=list)
    error: object = None  # the learner's exception (its traceback, as text, from a child)
    printed: str = ""  # the last lines the learner's code printed while the part ran


# --- comparing numbers --------------------------------------------------------------------------

def rel(a, b):
    """rel_error, infinite when the shapes differ or anything is not finite."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return np.inf
    return rel_error(a, b)


def same(a, b, tol=MATCH):
    """a matches b: equal where not finite (inf, nan), within tol elsewhere."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    bad_a, bad_b = ~np.isfinite(a), ~np.isfinite(b)
    if not np.array_equal(bad_a, bad_b):
        return False
    if bad_a.any() and not np.array_equal(np.nan_to_num(a[bad_a]), np.nan_to_num(b[bad_b])):
        return False
    return rel(a[~bad_a], b[~bad_b]) < tol if (~bad_a).any() else True


def diagnose(got, expected, variants):
    """The names of the variants ({hint: array}) that ``got`` matches, when it is wrong."""
    if same(got, expected, TOL):
        return []
    return [name for name, v in variants.items() if v is not None and same(got, v)]


def factors(expected, *ks):
    """'mean' variants: expected scaled up and down by each factor."""
    return [expected * k for k in ks] + [expected / k for k in ks]


def diagnose_all(got, expected, extra=None, ks=()):
    """The classic mistakes ``got`` matches: the opposite sign ("sign"), a factor k or 1/k
    for each k in ks ("mean"), and the extra variants ({hint: array})."""
    expected = np.asarray(expected)
    names = diagnose(got, expected, {"sign": -expected, **(extra or {})})
    wrong = not same(got, expected, TOL)
    if not names and wrong and any(same(got, v) for v in factors(expected, *ks)):
        names = ["mean"]
    return names


def require(ok, check, message, hints=()):
    """The check named ``check`` passes when ok; otherwise it fails with message and hints."""
    if not ok:
        raise Failed(check, message, hints)


def require_loss_pair(out, name, shape, whose):
    """A loss function's result: a (loss, grad) tuple of one number and a grad of ``shape``
    (``whose``: how the message names the input, "the logits'" or "out's")."""
    require(isinstance(out, tuple) and len(out) == 2, "shapes",
            f"{name} must return (loss, grad), returned {type(out).__name__}")
    loss, grad = out
    require(np.ndim(loss) == 0 or np.size(loss) == 1, "shapes",
            f"{name}: the loss must be one number (a mean), got shape {np.shape(loss)}")
    require(np.shape(grad) == shape, "shapes",
            f"{name}: grad has shape {np.shape(grad)}, expected {whose} {shape}")


def float_trouble(kinds, *values):
    """What went wrong on extreme inputs, in words ('' when nothing did): the kinds of NumPy
    floating-point error seen (``Runner.float_errors``), then "not finite" for results that
    hold an inf or a nan."""
    said = sorted(kinds)
    if not all(np.isfinite(v).all() for v in values):
        said.append("not finite")
    return ", ".join(said)


def extreme_hints(kinds):
    """The hint that a loss's floating-point errors on logits of +-1e4 point to: an overflow, a
    naive exp ("overflow"); a division by zero without one, log(0) of a probability that
    rounded to 0 or 1 ("log_prob")."""
    if "overflow" in kinds:
        return ["overflow"]
    return ["log_prob"] if "divide by zero" in kinds else []


# --- inputs the graders share -------------------------------------------------------------------

EXTREMES = np.array([[-1e4], [-50.0], [-1.0], [0.0], [1.0], [50.0], [1e4]])  # logits, inputs


def reference_copy(ref, layer):
    """Give minigan's layer ``ref`` copies of ``layer``'s parameters."""
    for k in ref.params:
        ref.params[k][...] = layer.params[k]
    return ref
