"""Losses: gradients against central differences, values against closed forms computed here with
``math`` on Python floats, and the numerical edge cases (clamped logs, saturated logits)."""

import math

import numpy as np
import pytest

from minigan import backend, losses
from minigan.gradcheck import check_loss

# --- independent references: one Python float at a time ---------------------------------------


def ref_sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def ref_bce(p, t):
    """torch.nn.BCELoss on one element: each log clamped at -100."""
    log_p = max(math.log(p), -100.0) if p > 0 else -100.0
    log_1mp = max(math.log(1.0 - p), -100.0) if p < 1 else -100.0
    return -(t * log_p + (1.0 - t) * log_1mp)


REFERENCES = {  # loss name -> (per-element loss of (x, t), per-element derivative d/dx)
    "bce": (ref_bce, lambda p, t: (p - t) / (p * (1 - p))),
    "bce_with_logits": (lambda x, t: ref_bce(ref_sigmoid(x), t),
                        lambda x, t: ref_sigmoid(x) - t),
    "generator_loss_minimax": (lambda x, t: math.log(1.0 - ref_sigmoid(x)),
                               lambda x, t: -ref_sigmoid(x)),
    "generator_loss_nonsaturating": (lambda x, t: -math.log(ref_sigmoid(x)),
                                     lambda x, t: ref_sigmoid(x) - 1.0),
}


def call_loss(name, x, t):
    fn = getattr(losses, name)
    return fn(x, t) if name.startswith("bce") else fn(x)


def check_against_closed_form(name, host_x, host_t):
    """Loss value and gradient of ``losses.<name>`` against the mean of the per-element closed
    form (float64, relative 1e-12); the gradient carries the 1/n of the mean."""
    loss_ref, grad_ref = REFERENCES[name]
    n = host_x.size
    t_items = np.broadcast_to(host_t, host_x.shape).ravel().tolist()
    expected_loss = sum(loss_ref(x, t) for x, t in zip(host_x.ravel().tolist(), t_items)) / n
    expected_grad = [grad_ref(x, t) / n for x, t in zip(host_x.ravel().tolist(), t_items)]
    t = backend.to_device(host_t) if isinstance(host_t, np.ndarray) else host_t
    loss, grad = call_loss(name, backend.to_device(host_x), t)
    assert grad.shape == host_x.shape
    assert math.isclose(float(loss), expected_loss, rel_tol=1e-12)
    np.testing.assert_allclose(backend.to_host(grad).ravel(), expected_grad, rtol=1e-12)


def logits(shape=(5, 3), seed=0, scale=3.0):
    return scale * np.random.default_rng(seed).standard_normal(shape)


def soft_targets(shape=(5, 3), seed=1):
    return np.random.default_rng(seed).random(shape)


def probs(shape=(5, 3), seed=2):
    return np.random.default_rng(seed).uniform(0.05, 0.95, shape)  # clear of the clamps


def ref_softmax_cross_entropy(x, y):
    """Mean over rows of -log(exp(x[y]) / sum exp(x)), one Python float at a time (math.fsum)."""
    total = 0.0
    for row, label in zip(x.tolist(), y.tolist()):
        top = max(row)
        total += math.log(math.fsum(math.exp(v - top) for v in row)) + top - row[label]
    return total / len(x)


# --- gradient checks --------------------------------------------------------------------------


@pytest.mark.parametrize("targets", ["array", "scalar"])
def test_bce_grad(xp, targets):
    t = backend.to_device(soft_targets()) if targets == "array" else 0.9
    check_loss(losses.bce, backend.to_device(probs()), t)


@pytest.mark.parametrize("targets", ["array", "scalar"])
def test_bce_with_logits_grad(xp, targets):
    t = backend.to_device(soft_targets()) if targets == "array" else 0.9
    check_loss(losses.bce_with_logits, backend.to_device(logits()), t)


@pytest.mark.parametrize("name", ["generator_loss_minimax", "generator_loss_nonsaturating"])
def test_generator_loss_grad(xp, name):
    check_loss(getattr(losses, name), backend.to_device(logits((6, 1))))


# --- values against closed forms --------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_loss_matches_closed_form(xp, name):
    x = probs() if name == "bce" else logits()
    check_against_closed_form(name, x, soft_targets())


@pytest.mark.parametrize("name", ["bce", "bce_with_logits"])
def test_scalar_target_is_label_smoothing(name):
    """A scalar target (0.9, one-sided label smoothing) is the same as a full array of it."""
    x = probs() if name == "bce" else logits()
    check_against_closed_form(name, x, 0.9)
    loss_scalar, grad_scalar = call_loss(name, x, 0.9)
    loss_array, grad_array = call_loss(name, x, np.full_like(x, 0.9))
    assert loss_scalar == loss_array and np.array_equal(grad_scalar, grad_array)


def test_nonsaturating_is_bce_with_logits_against_real():
    x = logits((8, 1))
    assert losses.generator_loss_nonsaturating(x)[0] == losses.bce_with_logits(x, 1.0)[0]
    np.testing.assert_array_equal(losses.generator_loss_nonsaturating(x)[1],
                                  losses.bce_with_logits(x, 1.0)[1])


def test_bce_on_sigmoid_equals_bce_with_logits():
    x, t = logits(scale=2.0), soft_targets()
    loss_p, grad_p = losses.bce(1 / (1 + np.exp(-x)), t)
    loss_x, _ = losses.bce_with_logits(x, t)
    assert math.isclose(float(loss_p), float(loss_x), rel_tol=1e-12)
    # chain rule: dL/dx = dL/dp * p (1 - p) = (p - t) / n
    p = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(grad_p * p * (1 - p), (p - t) / x.size, rtol=1e-12)


# --- edge cases -------------------------------------------------------------------------------


def test_bce_clamps_the_log_at_minus_100():
    # log(0) = -inf is computed and then clamped; NumPy warns about the -inf, so silence it here.
    with np.errstate(divide="ignore"):
        for p, t in ((0.0, 1.0), (1.0, 0.0)):  # confidently wrong
            loss, grad = losses.bce(np.array([[p]]), np.array([[t]]))
            assert float(loss) == 100.0
            assert np.isfinite(grad).all() and abs(float(grad[0, 0])) == 1e12  # torch's 1e-12 floor
        loss, grad = losses.bce(np.array([[0.0, 1.0]]), np.array([[0.0, 1.0]]))  # confidently right
        assert float(loss) == 0.0 and not grad.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saturated_logits_stay_finite(dtype):
    x = np.array([[1e4], [-1e4], [1e30], [-1e30]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        results = {
            "real target": losses.bce_with_logits(x, 1.0),
            "fake target": losses.bce_with_logits(x, 0.0),
            "smoothed": losses.bce_with_logits(x, 0.9),
            "minimax": losses.generator_loss_minimax(x),
            "nonsaturating": losses.generator_loss_nonsaturating(x),
        }
    for what, (loss, grad) in results.items():
        assert loss.dtype == dtype and grad.dtype == dtype, what
        assert np.isfinite(loss) and np.isfinite(grad).all(), what
    # Exact gradients: sigmoid(+-1e4) and sigmoid(+-1e30) round to exactly 1 or 0.
    expected_grads = {"real target": [0, -1, 0, -1], "fake target": [1, 0, 1, 0],
                      "minimax": [-1, 0, -1, 0], "nonsaturating": [0, -1, 0, -1]}
    for what, expected in expected_grads.items():
        assert np.array_equal(results[what][1].ravel(), np.array(expected, dtype=dtype) / 4), what
    # Exact losses: softplus(1e4) = 1e4 and softplus(-1e4) = 0, so each mean is +-5e3.
    x = x[:2]
    assert float(losses.bce_with_logits(x, 1.0)[0]) == 5e3  # -log D(x): 0 and 1e4
    assert float(losses.bce_with_logits(x, 0.0)[0]) == 5e3  # -log(1 - D(x)): 1e4 and 0
    assert float(losses.generator_loss_minimax(x)[0]) == -5e3
    assert float(losses.generator_loss_nonsaturating(x)[0]) == 5e3


def test_float32_in_float32_out():
    x = logits().astype(np.float32)
    for name in REFERENCES:
        arg = 1 / (1 + np.exp(-x)) if name == "bce" else x
        loss, grad = call_loss(name, arg, 0.9)
        assert loss.dtype == np.float32 and grad.dtype == np.float32, name


# --- softmax cross-entropy (the evaluation classifier's loss) ---------------------------------

LABELS = np.array([3, 0, 9, 3, 7, 1])  # (6,), a repeated class and the first and last one


def test_softmax_cross_entropy_grad(xp):
    x = logits((6, 10), seed=3)  # rows of 10 class logits
    check_loss(losses.softmax_cross_entropy, backend.to_device(x), backend.to_device(LABELS))


def test_softmax_cross_entropy_matches_closed_form():
    x = logits((6, 10), seed=4)
    loss, grad = losses.softmax_cross_entropy(x, LABELS)
    assert math.isclose(float(loss), ref_softmax_cross_entropy(x, LABELS), rel_tol=1e-12)
    # the gradient is (softmax - onehot) / N, here one Python float at a time
    want = []
    for row, label in zip(x.tolist(), LABELS.tolist()):
        top = max(row)
        total = math.fsum(math.exp(v - top) for v in row)
        want.append([(math.exp(v - top) / total - (j == label)) / len(x)
                     for j, v in enumerate(row)])
    np.testing.assert_allclose(grad, want, rtol=1e-12, atol=1e-17)


def test_softmax_cross_entropy_never_overflows():
    """Logits of +-1e4 would overflow a naive exp: the stable form gives the exact answer."""
    x = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 0.0]])
    y = np.array([1, 0])
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
        loss, grad = losses.softmax_cross_entropy(x, y)
    # row 0: logsumexp = 1e4 (+ exp(-1e4) terms below rounding), loss 1e4 - 0 = 1e4
    # row 1: logsumexp = 1e4 + log 2, loss log 2
    assert math.isclose(float(loss), (1e4 + math.log(2)) / 2, rel_tol=1e-15)
    np.testing.assert_allclose(grad, [[0.5, -0.5, 0.0], [-0.25, 0.25, 0.0]], atol=1e-15)


def test_softmax_cross_entropy_shifts_each_row_by_its_own_maximum():
    """Rows 2e4 apart: shifted by the batch's maximum instead of its own, the low row's exp
    would all round to 0 and its log-softmax be -inf."""
    x = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]])
    y = np.array([0, 2])
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
        loss, grad = losses.softmax_cross_entropy(x, y)
    # row 0: softmax (1, 0, 0) after rounding, label 0: loss 0, gradient 0
    # row 1: three equal logits, softmax 1/3 each: loss log 3, gradient (1/3, 1/3, 1/3 - 1)
    assert math.isclose(float(loss), math.log(3) / 2, rel_tol=1e-15)
    np.testing.assert_allclose(grad, [[0.0, 0.0, 0.0], [1 / 6, 1 / 6, -1 / 3]], atol=1e-15)


# --- beyond Jensen-Shannon: least squares, hinge, Wasserstein ---------------------------------

# name -> (minigan's (loss, grad) on D's raw output, torch's formula on a tensor, from the papers)
SCORE_LOSSES = {
    "least_squares real": (lambda x: losses.least_squares(x, 1.0),
                           lambda x, F: 0.5 * F.mse_loss(x, x.new_ones(x.shape))),
    "least_squares fake": (lambda x: losses.least_squares(x, 0.0),
                           lambda x, F: 0.5 * F.mse_loss(x, x.new_zeros(x.shape))),
    "generator_loss_least_squares": (losses.generator_loss_least_squares,
                                     lambda x, F: 0.5 * ((x - 1) ** 2).mean()),
    "hinge_real": (losses.hinge_real, lambda x, F: F.relu(1 - x).mean()),
    "hinge_fake": (losses.hinge_fake, lambda x, F: F.relu(1 + x).mean()),
    "wasserstein_real": (losses.wasserstein_real, lambda x, F: -x.mean()),
    "wasserstein_fake": (losses.wasserstein_fake, lambda x, F: x.mean()),
    "generator_loss_wasserstein": (losses.generator_loss_wasserstein, lambda x, F: -x.mean()),
}


def scores(shape=(16, 1), seed=5):
    """D's raw outputs in +-3, every one at least 0.05 away from the hinge's kinks at +-1."""
    x = logits(shape, seed, scale=1.5)
    near = np.abs(np.abs(x) - 1) < 0.05
    return np.where(near, x + 0.1 * np.sign(x), x)


@pytest.mark.parametrize("shape", [(16, 1), (4, 3)])
@pytest.mark.parametrize("name", sorted(SCORE_LOSSES))
def test_score_loss_grad(xp, name, shape):
    """Central differences of the loss (float64, h = 1e-5, relative 1e-7). The mean is over every
    element, as the module promises: (4, 3) tells 1 / size from 1 / N, which (N, 1) cannot."""
    check_loss(SCORE_LOSSES[name][0], backend.to_device(scores(shape)))


@pytest.mark.parametrize("case", ["normal", "on the kinks", "large"])
@pytest.mark.parametrize("name", sorted(SCORE_LOSSES))
def test_score_loss_matches_torch(name, case):
    """Value and gradient against torch's formula through autograd, float64, relative 1e-12.
    "on the kinks" puts outputs at exactly +-1, where torch's relu takes the zero gradient."""
    torch = pytest.importorskip("torch", reason="compares with PyTorch's formulas; install the "
                                "reference extra: pip install -e '.[reference]'")
    x = {"normal": scores(), "on the kinks": np.array([[1.0], [-1.0], [0.5], [-2.0]]),
         "large": scores() * 1e4}[case]
    fn, torch_fn = SCORE_LOSSES[name]
    loss, grad = fn(x)
    x_t = torch.tensor(x, requires_grad=True)
    loss_t = torch_fn(x_t, torch.nn.functional)
    loss_t.backward()
    expected = float(loss_t.detach())
    assert abs(float(loss) - expected) <= 1e-12 * max(abs(expected), 1.0)
    np.testing.assert_allclose(grad, x_t.grad.numpy(), rtol=1e-12, atol=1e-15 / x.size)


def test_d_losses_are_the_papers():
    """The D losses summed over both sides, by hand on three numbers each."""
    real, fake = np.array([[2.0], [0.5], [-1.5]]), np.array([[-2.0], [0.0], [1.5]])
    ls = float(losses.least_squares(real, 1.0)[0] + losses.least_squares(fake, 0.0)[0])
    assert math.isclose(ls, 0.5 * (1 + 0.25 + 6.25) / 3 + 0.5 * (4 + 0 + 2.25) / 3)
    hinge = float(losses.hinge_real(real)[0] + losses.hinge_fake(fake)[0])
    assert math.isclose(hinge, (0 + 0.5 + 2.5) / 3 + (0 + 1 + 2.5) / 3)
    w = float(losses.wasserstein_real(real)[0] + losses.wasserstein_fake(fake)[0])
    assert math.isclose(w, -1 / 3 - 1 / 6)  # E D(G(z)) - E D(x) = -0.5 / 3 - 1 / 3


def test_g_losses_are_the_papers():
    """G's losses by hand on three numbers: LSGAN's pulls D(G(z)) towards the real target 1
    (Mao et al. 2017, c = 1), WGAN's and the hinge game's is -E D(G(z)) (Lim & Ye 2017)."""
    fake = np.array([[2.0], [0.5], [-1.5]])
    loss, grad = losses.generator_loss_least_squares(fake)
    assert math.isclose(float(loss), 0.5 * (1 + 0.25 + 6.25) / 3)  # 0.5 mean((out - 1)^2)
    np.testing.assert_allclose(grad, [[1 / 3], [-0.5 / 3], [-2.5 / 3]])  # (out - 1) / 3
    loss, grad = losses.generator_loss_wasserstein(fake)
    assert math.isclose(float(loss), -1 / 3)  # -(2 + 0.5 - 1.5) / 3
    np.testing.assert_array_equal(grad, np.full((3, 1), -1 / 3))


def test_hinge_gradient_at_the_kink_is_zero():
    """At D(x) = 1 exactly (hinge_real) and D(G(z)) = -1 (hinge_fake) the hinge has a kink; the
    gradient there is 0, the subgradient torch's relu takes, and 1 / n either side of it."""
    out = np.array([[1.0], [-1.0], [0.5], [2.0]])
    np.testing.assert_array_equal(losses.hinge_real(out)[1], [[0.0], [-0.25], [-0.25], [0.0]])
    np.testing.assert_array_equal(losses.hinge_fake(out)[1], [[0.25], [0.0], [0.25], [0.25]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_score_losses_keep_the_dtype_and_stay_finite(dtype):
    # 1e18 is far from any score D gives, and its square (1e36) still fits in float32 (at most
    # 3.4e38): every loss and every gradient is finite
    x = np.array([[1e18], [-1e18], [0.0], [1.0]], dtype=dtype)
    for name, (fn, _) in SCORE_LOSSES.items():
        loss, grad = fn(x)
        assert loss.dtype == dtype and grad.dtype == dtype, name
        assert np.isfinite(loss) and np.isfinite(grad).all(), name
    # at 1e30, (1e30 - 1)**2 overflows float32 to inf, least squares' loss's own; the gradients
    # (linear in the score, or 0 and 1/n) stay finite
    x = np.array([[1e30], [-1e30], [0.0], [1.0]], dtype=dtype)
    for name, (fn, _) in SCORE_LOSSES.items():
        with np.errstate(over="ignore"):
            loss, grad = fn(x)
        assert loss.dtype == dtype and grad.dtype == dtype, name
        assert np.isfinite(grad).all(), name
