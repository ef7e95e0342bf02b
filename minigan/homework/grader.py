"""Grade a homework folder part by part, and name the classic mistake when a part fails.

Every part runs its checks in one order and stops at the first that fails:

1. shapes: what forward, backward, the loss or the step returns has the expected shape;
2. the float64 gradient check (``minigan.gradcheck``, non-uniform upstream gradient);
3. agreement with minigan's own implementation, on the same inputs and parameters;
4. the properties the lessons teach: backward adds (``+=``) into the very same grads arrays,
   the cache holds what backward needs, logits of +-1e4 stay finite without overflow,
   optimizers update the parameter arrays in place, the generator step leaves D alone.

What is fair about the cache: the grader never changes an array after handing it to forward
(minigan's Dense keeps a reference to x, not a copy, and so may yours). It does check that
backward can run twice after one forward (backward must not damage the cache) and that two
instances of a layer do not share one (the cache lives on ``self``).

When a check fails, ``diagnose`` compares the learner's numbers with the variants a classic
mistake would produce (a transpose, a factor N, a sign, a missing derivative factor, ...) and
names the one that matches, in one sentence of ``HINTS``; the expected array is never printed.

Parts are graded by behaviour only, never by reading the learner's source; the source is read
for one thing, whether a part was attempted at all (some function no longer raises the TODO).
"""

import ast
import importlib.util
import sys
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minigan import gan as mg_gan
from minigan import layers as mg_layers
from minigan import losses as mg_losses
from minigan import optim as mg_optim
from minigan.gradcheck import GradientCheckError, check_layer, check_loss, numerical_gradient
from minigan.gradcheck import rel_error
from minigan.homework.parts import PARTS, todo_message

HINTS = {
    "transpose": "A transpose is missing or extra: with x (N, in) and W (in, out), dW = x.T @ "
                 "dout has W's shape and dx = dout @ W.T has x's shape; let the shapes decide.",
    "mean": "Off by a constant factor (the batch size N, or 2 for two batches): a sum where a "
            "mean belongs, or a missing or extra 1/N.",
    "sign": "The right size with the opposite sign: check the sign of the derivative, and that "
            "a step goes against the gradient (p = p - lr * g).",
    "derivative": "dx equals dout: the activation's derivative factor is missing "
                  "(dx = dout * f'(x), lessons/04_backprop_layers.md).",
    "assign": "The gradient was assigned, not added: write self.grads[...] += ... into the "
              "existing array (backward accumulates, and the optimizer holds those very arrays).",
    "overflow": "Overflow at large |x|: a naive sigmoid 1 / (1 + exp(-x)) or softplus "
                "log(1 + exp(x)) overflows exp; use the stable forms, where exp only sees -|x| "
                "(lessons/02_losses.md).",
    "adam_t0": "Adam's bias correction counts t from 0: on the first step 1 - beta1**0 = 0; "
               "increment t before using it, so the first step has t = 1.",
    "eps_sqrt": "eps is inside the square root: Adam divides by sqrt(v_hat) + eps, "
                "not by sqrt(v_hat + eps).",
    "d_touched": "The generator step changed D (its weights or grads): backpropagate through "
                 "D with D.backward(dout, param_grads=False) and step only opt_G.",
    "zero_grad": "Gradients left from before the step leaked in: call zero_grad() on the "
                 "network before its backward pass.",
    "in_place": "Update each parameter array in place, p.data[...] = p.data - lr * g: the "
                "layers hold these very arrays and never see a new one (and p.data -= ... "
                "fails: a NamedTuple's field cannot be reassigned).",
}

TOL = 1e-7  # the gradient check's, and agreement's: a real bug is off by far more
MATCH = 1e-6  # how close the learner's numbers must be to a mistake's variant to name it


class Failed(Exception):
    """A check failed: ``check`` is its name, ``hints`` the classic mistakes recognised."""

    def __init__(self, check, message, hints=(), error=None):
        super().__init__(message)
        self.check, self.message, self.hints, self.error = check, message, list(hints), error


class LearnerError(Exception):
    """The learner's code raised: ``where`` is its own file and line, ``error`` the exception."""

    def __init__(self, error, where, what):
        super().__init__(f"{what}: {type(error).__name__}: {error}")
        self.error, self.where, self.what = error, where, what


@dataclass
class Result:
    part: object
    status: str  # "passed", "failed", "not attempted"
    points: int = 0
    check: str = ""
    message: str = ""
    hints: list = field(default_factory=list)
    error: object = None  # the learner's exception, for --verbose


# --- the learner's folder ---------------------------------------------------------------------

def load_module(folder, file):
    """Import the learner's file fresh (a new module object on every call)."""
    path = Path(folder) / file
    name = f"minigan_homework_{Path(file).stem}_{id(path)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses (gan.py's StepMetrics) look their module up here
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise LearnerError(e, learner_line(e, folder), f"importing {file}") from e
    finally:
        sys.modules.pop(name, None)
    return module


def attempted(folder, part):
    """True when some function of the part no longer has just its TODO body."""
    path = Path(folder) / part.file
    try:
        tree = ast.parse(path.read_text())
    except SyntaxError:
        return True  # the learner is editing it
    for name in part.functions:
        body, node = tree.body, None
        for piece in name.split("."):
            node = next((n for n in body if isinstance(n, (ast.ClassDef, ast.FunctionDef))
                         and n.name == piece), None)
            if node is None:
                return True
            body = node.body
        statements = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(
            s.value, ast.Constant) and isinstance(s.value.value, str))]
        todo = todo_message(part, name)
        if not (len(statements) == 1 and isinstance(statements[0], ast.Raise)
                and todo in ast.unparse(statements[0])):
            return True
    return False


def learner_line(error, folder):
    """'layers.py, line 93, in backward: <the line>' for the innermost frame in the learner's
    folder (a SyntaxError: its own file and line)."""
    folder = Path(folder).resolve()
    if isinstance(error, SyntaxError) and error.filename:
        return f"{Path(error.filename).name}, line {error.lineno}: {(error.text or '').strip()}"
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if Path(f.filename).resolve().parent == folder]
    if not frames:
        return ""
    f = frames[-1]
    return f"{Path(f.filename).name}, line {f.lineno}, in {f.name}: {f.line}"


class Runner:
    """Calls into the learner's code: an exception becomes a LearnerError naming their line."""

    def __init__(self, folder):
        self.folder = folder

    def __call__(self, what, fn, *args, **kwargs):
        try:
            with np.errstate(all="ignore"):
                return fn(*args, **kwargs)
        except GradientCheckError:
            raise  # the gradient check's verdict on the learner's numbers, not their crash
        except Exception as e:
            raise LearnerError(e, learner_line(e, self.folder), what) from e


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
    if not ok:
        raise Failed(check, message, hints)


def overflow_free(run, what, fn, *args):
    """Run fn with floating-point warnings recorded; (result, overflowed?)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(over="warn", invalid="warn", divide="warn", under="ignore"):
            try:
                result = fn(*args)
            except Exception as e:
                raise LearnerError(e, learner_line(e, run.folder), what) from e
    overflowed = any(issubclass(w.category, RuntimeWarning) for w in caught)
    return result, overflowed


# --- part 1: losses ---------------------------------------------------------------------------

EXTREMES = np.array([[-1e4], [-50.0], [-1.0], [0.0], [1.0], [50.0], [1e4]])


def grade_losses(run, L):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, (6, 1))
    t = np.array([[1.0], [0.0], [1.0], [0.9], [0.0], [1.0]])
    n = x.size
    cases = [("bce_with_logits", (t,)), ("generator_loss_minimax", ()),
             ("generator_loss_nonsaturating", ())]
    sp = run("softplus(x)", L.softplus, x)
    require(np.shape(sp) == x.shape, "shapes", f"softplus(x) has shape {np.shape(sp)}, "
            f"expected x's shape {x.shape}")
    for name, args in cases:
        out = run(f"{name}(logits)", getattr(L, name), x, *args)
        require(isinstance(out, tuple) and len(out) == 2, "shapes",
                f"{name} must return (loss, grad), returned {type(out).__name__}")
        loss, grad = out
        require(np.ndim(loss) == 0 or np.size(loss) == 1, "shapes",
                f"{name}: the loss must be one number (a mean), got shape {np.shape(loss)}")
        require(np.shape(grad) == x.shape, "shapes",
                f"{name}: grad has shape {np.shape(grad)}, expected the logits' {x.shape}")

    for name, args in cases:
        fn = getattr(L, name)
        try:
            run(f"gradient check of {name}", check_loss, fn, x, *args)
        except LearnerError:
            raise
        except GradientCheckError as e:
            ref_grad = getattr(mg_losses, name)(x, *args)[1]
            grad = run(name, fn, x, *args)[1]
            raise Failed("gradient check", str(e), diagnose_all(grad, ref_grad, ks=(n,)))

    require(same(sp, mg_losses.softplus(x), TOL), "agreement",
            "softplus(x) differs from minigan's", diagnose_all(sp, mg_losses.softplus(x)))
    for name, args in cases:
        loss, grad = run(name, getattr(L, name), x, *args)
        ref_loss, ref_grad = getattr(mg_losses, name)(x, *args)
        for what, got, want in (("loss", loss, ref_loss), ("grad", grad, ref_grad)):
            require(same(got, want, TOL), "agreement",
                    f"{name}: the {what} differs from minigan's (relative error "
                    f"{rel(got, want):.1e})", diagnose_all(got, want, ks=(n,)))

    sp, over = overflow_free(run, "softplus(+-1e4)", L.softplus, EXTREMES)
    require(not over and np.isfinite(sp).all(), "logits of +-1e4",
            "softplus overflows on logits of +-1e4", ["overflow"])
    targets = np.ones_like(EXTREMES)
    for name, args in (("bce_with_logits", (targets,)), ("bce_with_logits", (0 * targets,)),
                       ("generator_loss_minimax", ()), ("generator_loss_nonsaturating", ())):
        (loss, grad), over = overflow_free(run, f"{name}(+-1e4)", getattr(L, name), EXTREMES,
                                           *args)
        ref_loss, ref_grad = getattr(mg_losses, name)(EXTREMES, *args)
        require(not over and np.isfinite(loss) and np.isfinite(grad).all(), "logits of +-1e4",
                f"{name} is not finite (or overflows) on logits of +-1e4", ["overflow"])
        require(same(loss, ref_loss, 1e-9) and same(grad, ref_grad, 1e-9), "logits of +-1e4",
                f"{name} on logits of +-1e4 differs from minigan's",
                diagnose_all(grad, ref_grad, ks=(EXTREMES.size,)))


# --- parts 2-6: layers --------------------------------------------------------------------------

def reference_copy(ref, layer):
    """Give minigan's layer ``ref`` copies of ``layer``'s parameters."""
    for k in ref.params:
        ref.params[k][...] = layer.params[k]
    return ref


def layer_run(run, layer, x, dout, **kw):
    """forward then backward on a fresh zero_grad; (out, dx, {grad name: copy})."""
    name = type(layer).__name__
    run(f"{name}.zero_grad()", layer.zero_grad)
    out = run(f"{name}.forward", layer.forward, x)
    dx = run(f"{name}.backward", layer.backward, dout, **kw)
    return out, dx, {k: np.array(g, copy=True) for k, g in layer.grads.items()}


def check_shapes(name, x, out, dx, grads, out_shape, params):
    require(np.shape(out) == out_shape, "shapes",
            f"{name}.forward returned shape {np.shape(out)}, expected {out_shape}")
    hints = ["transpose"] if np.shape(dx) == x.shape[::-1] else []
    require(np.shape(dx) == x.shape, "shapes",
            f"{name}.backward returned dx of shape {np.shape(dx)}, expected x's {x.shape}", hints)
    for k, g in grads.items():
        want = np.shape(params[k])
        hints = ["transpose"] if np.shape(g) == want[::-1] and len(want) == 2 else []
        require(np.shape(g) == want, "shapes",
                f"{name}: grads[{k!r}] has shape {np.shape(g)}, expected {want}", hints)


def layer_hints(got_dx, got_grads, ref_dx, ref_grads, dout, N, params):
    """Diagnose dx and each gradient against a layer's classic mistakes."""
    extra = {"derivative": dout if dout.shape == ref_dx.shape else None}
    if "W" in params and params["W"].shape[0] == params["W"].shape[1]:
        extra["transpose"] = dout @ params["W"]
    names = diagnose_all(got_dx, ref_dx, extra, ks=(N,))
    for k, g in got_grads.items():
        t = {"transpose": ref_grads[k].T} if ref_grads[k].ndim == 2 else {}
        names += diagnose_all(g, ref_grads[k], t, ks=(N,))
    return sorted(set(names))


def grade_layer(run, make, make_ref, x, square=None):
    """Grade one layer class: make() builds the learner's (float64), make_ref() minigan's."""
    rng = np.random.default_rng(2)
    layer = make()
    name = type(layer).__name__
    params = {k: np.array(p) for k, p in layer.params.items()}
    ref = reference_copy(make_ref(), layer)
    ref_out = ref.forward(x)
    dout = rng.standard_normal(ref_out.shape)
    ref_dx = ref.backward(dout)
    ref_grads = {k: g.copy() for k, g in ref.grads.items()}

    try:
        out, dx, grads = layer_run(run, layer, x.copy(), dout)
    except LearnerError as e:
        if square is not None:  # a missing transpose fails in matmul unless the shapes agree
            hints = square_diagnosis(run, *square)
            if hints:
                raise Failed("your code raised", f"{e}\n  at {e.where}", hints, e.error) from None
        raise
    check_shapes(name, x, out, dx, grads, ref_out.shape, layer.params)

    try:
        run(f"gradient check of {name}", check_layer, layer, x.copy(), dout)
    except GradientCheckError as e:
        _, dx, grads = layer_run(run, layer, x.copy(), dout)
        raise Failed("gradient check", str(e),
                     layer_hints(dx, grads, ref_dx, ref_grads, dout, x.shape[0], params))

    out, dx, grads = layer_run(run, layer, x.copy(), dout)
    require(same(out, ref_out, TOL), "agreement", f"{name}.forward differs from minigan's "
            f"(relative error {rel(out, ref_out):.1e})")
    for what, got, want in [("dx", dx, ref_dx)] + [(f"grads[{k!r}]", grads[k], ref_grads[k])
                                                    for k in grads]:
        require(same(got, want, TOL), "agreement",
                f"{name}.backward: {what} differs from minigan's (relative error "
                f"{rel(got, want):.1e})",
                layer_hints(dx, grads, ref_dx, ref_grads, dout, x.shape[0], params))

    # backward adds into the very same arrays, and can run twice after one forward
    arrays = dict(layer.grads)
    run(f"{name}.zero_grad()", layer.zero_grad)
    run(f"{name}.forward", layer.forward, x.copy())
    dx1 = run(f"{name}.backward", layer.backward, dout)
    dx2 = run(f"{name}.backward (a second time)", layer.backward, dout)
    for k in arrays:
        require(layer.grads[k] is arrays[k], "backward adds into grads",
                f"{name}.backward replaced grads[{k!r}] with a new array", ["assign"])
        require(same(layer.grads[k], 2 * ref_grads[k], TOL), "backward adds into grads",
                f"{name}: two backward calls after one forward should leave twice the "
                f"gradient in grads[{k!r}]", ["assign"])
    require(same(dx2, dx1, 1e-12) and same(dx1, ref_dx, TOL), "the cache",
            f"{name}.backward gave a different dx the second time: backward must not change "
            "what forward cached")
    other = make()  # a second instance: its forward must not disturb the first one's cache
    run(f"{name}.forward", layer.forward, x.copy())
    run(f"{name}.forward", other.forward, rng.standard_normal(x.shape))
    dx3 = run(f"{name}.backward", layer.backward, dout)
    require(same(dx3, ref_dx, TOL), "the cache",
            f"{name}: another {name}'s forward changed this one's backward: keep the cache "
            "on self")

    big = x * 1e4 / np.abs(x).max()
    out, over = overflow_free(run, f"{name}.forward(+-1e4)", layer.forward, big)
    require(not over and np.isfinite(out).all(), "inputs of +-1e4",
            f"{name}.forward overflows (or is not finite) on inputs of +-1e4", ["overflow"])
    ref_big = reference_copy(make_ref(), layer).forward(big)
    require(same(out, ref_big, TOL), "inputs of +-1e4",
            f"{name}.forward on inputs of +-1e4 differs from minigan's")
    if layer.params:  # Dense and Sequential take the two switches
        grade_switches(run, layer, x, dout, ref_dx, ref_grads)
    return layer


def grade_switches(run, layer, x, dout, ref_dx, ref_grads):
    """param_grads=False leaves grads untouched; input_grad=False returns None."""
    name = type(layer).__name__
    run(f"{name}.forward", layer.forward, x.copy())
    for g in layer.grads.values():
        g.fill(7.0)
    dx = run(f"{name}.backward(dout, param_grads=False)", layer.backward, dout,
             param_grads=False)
    require(all(np.all(g == 7.0) for g in layer.grads.values()), "param_grads=False",
            f"{name}.backward(dout, param_grads=False) changed grads: it must leave them "
            "untouched")
    require(same(dx, ref_dx, TOL), "param_grads=False",
            f"{name}.backward(dout, param_grads=False) returned a wrong dx")
    run(f"{name}.zero_grad()", layer.zero_grad)
    dx = run(f"{name}.backward(dout, input_grad=False)", layer.backward, dout, input_grad=False)
    require(dx is None, "input_grad=False",
            f"{name}.backward(dout, input_grad=False) must return None")
    for k, g in layer.grads.items():
        require(same(g, ref_grads[k], TOL), "input_grad=False",
                f"{name}.backward(dout, input_grad=False) left a wrong grads[{k!r}]")


def square_diagnosis(run, make, make_ref, x):
    """On a square Dense (in == out), a missing transpose runs: recognise its numbers."""
    try:
        grade_layer(run, make, make_ref, x)
    except Failed as f:
        return [h for h in f.hints if h == "transpose"]
    except LearnerError:
        return []
    return []


def away_from_zero(rng, shape, scale=2.0):
    x = rng.normal(0, scale, shape)
    return np.where(np.abs(x) < 0.1, np.sign(x) * 0.1 + x, x)  # no entry near a kink


def grade_dense(run, M):
    rng = np.random.default_rng(3)

    def dense(d_in, d_out):
        def make():
            return run("Dense(...)", M.Dense, d_in, d_out, np.random.default_rng(4), "float64")

        def make_ref():
            return mg_layers.Dense(d_in, d_out, rng=np.random.default_rng(5), dtype="float64")
        return make, make_ref

    square = (*dense(4, 4), rng.standard_normal((3, 4)))
    grade_layer(run, *dense(5, 3), rng.standard_normal((4, 5)), square=square)


def grade_activation(run, make, make_ref):
    rng = np.random.default_rng(6)
    grade_layer(run, make, make_ref, away_from_zero(rng, (4, 6)))


def grade_leaky(run, M):
    grade_activation(run, lambda: run("LeakyReLU(0.2)", M.LeakyReLU, 0.2),
                     lambda: mg_layers.LeakyReLU(0.2))


def grade_tanh(run, M):
    grade_activation(run, lambda: run("Tanh()", M.Tanh), mg_layers.Tanh)


def grade_sigmoid(run, M):
    rng = np.random.default_rng(7)
    x = rng.normal(0, 3, (5, 4))
    s = run("sigmoid(x)", M.sigmoid, x)
    require(np.shape(s) == x.shape, "shapes", f"sigmoid(x) has shape {np.shape(s)}, "
            f"expected {x.shape}")
    require(same(s, mg_layers.sigmoid(x), TOL), "agreement", "sigmoid(x) differs from "
            "minigan's", diagnose_all(s, mg_layers.sigmoid(x)))
    s, over = overflow_free(run, "sigmoid(+-1e4)", M.sigmoid, EXTREMES)
    require(not over and np.isfinite(s).all(), "inputs of +-1e4",
            "sigmoid overflows (or is not finite) on inputs of +-1e4", ["overflow"])
    grade_activation(run, lambda: run("Sigmoid()", M.Sigmoid), mg_layers.Sigmoid)


def as_learner_class(cls, ref_cls):
    """A subclass of the learner's ``cls`` whose forward and backward are minigan's: the layers
    of part 6, correct whatever parts 2-5 hold, and instances of the learner's classes."""
    return type(cls.__name__, (cls,), {"forward": ref_cls.forward, "backward": ref_cls.backward})


def grade_sequential(run, M):
    rng = np.random.default_rng(8)
    Dense = as_learner_class(M.Dense, mg_layers.Dense)
    Leaky = as_learner_class(M.LeakyReLU, mg_layers.LeakyReLU)
    Tanh = as_learner_class(M.Tanh, mg_layers.Tanh)

    def make():
        r = np.random.default_rng(9)
        inner = run("Sequential(...)", M.Sequential, Dense(3, 2, r, "float64"), Tanh())
        return run("Sequential(...)", M.Sequential, Dense(5, 4, r, "float64"), Leaky(0.2),
                   Dense(4, 3, r, "float64"), inner)

    def make_ref():
        r = np.random.default_rng(10)
        S, L = mg_layers.Sequential, mg_layers
        return S(L.Dense(5, 4, r, "float64"), L.LeakyReLU(0.2), L.Dense(4, 3, r, "float64"),
                 S(L.Dense(3, 2, r, "float64"), L.Tanh()))

    x = away_from_zero(rng, (6, 5))
    net = grade_layer(run, make, make_ref, x)
    # input_grad=False with an activation first: still None, and the Dense's grads right
    first = run("Sequential(...)", M.Sequential, Leaky(0.2), Dense(5, 2, np.random.default_rng(11),
                                                                    "float64"))
    ref = reference_copy(mg_layers.Sequential(mg_layers.LeakyReLU(0.2), mg_layers.Dense(5, 2)),
                         first)
    dout = rng.standard_normal((6, 2))
    ref.forward(x)
    ref.backward(dout)
    out, dx, grads = layer_run(run, first, x, dout, input_grad=False)
    require(dx is None, "input_grad=False", "Sequential(LeakyReLU, Dense).backward(dout, "
            "input_grad=False) must return None")
    for k in grads:
        require(same(grads[k], ref.grads[k], TOL), "input_grad=False",
                f"Sequential(LeakyReLU, Dense).backward(dout, input_grad=False) left a wrong "
                f"grads[{k!r}]")
    return net


# --- parts 7-8: optimizers ----------------------------------------------------------------------

def grade_optimizer(run, make, make_ref, label, extra_variants=None, steps=3):
    """Run the learner's optimizer and minigan's for a few steps on the same parameters and
    gradients; compare every parameter after every step."""
    rng = np.random.default_rng(12)
    layer = mg_layers.Dense(4, 3, rng=rng, dtype="float64")
    ref_layer = reference_copy(mg_layers.Dense(4, 3, rng=rng, dtype="float64"), layer)
    opt = make(layer.parameters())
    ref = make_ref(ref_layer.parameters())
    data = dict(layer.params)
    held = {p.name: p.data for p in opt.params}  # the arrays the optimizer was handed
    for step in range(1, steps + 1):
        for k in layer.grads:  # the same gradient for both, of varied scales
            g = rng.standard_normal(layer.grads[k].shape) * 10.0 ** rng.integers(-2, 1)
            layer.grads[k][...] = g
            ref_layer.grads[k][...] = g
        grads = {k: g.copy() for k, g in layer.grads.items()}
        before = {k: p.copy() for k, p in layer.params.items()}
        try:
            run(f"{label}.step() (step {step})", opt.step)
        except LearnerError as e:
            hints = {ZeroDivisionError: ["adam_t0"] if step == 1 and "Adam" in label else [],
                     AttributeError: ["in_place"]}.get(type(e.error), [])
            if hints:
                raise Failed("your code raised", f"{e}\n  at {e.where}", hints, e.error) from None
            raise
        ref.step()
        for k in layer.params:
            require(layer.params[k] is data[k] and held[k] is data[k], "updates in place",
                    f"{label}.step() replaced parameter {k} with a new array", ["in_place"])
            require(np.shape(layer.params[k]) == before[k].shape, "shapes",
                    f"{label}.step() changed the shape of parameter {k}")
            require(np.array_equal(layer.grads[k], grads[k]), "updates in place",
                    f"{label}.step() changed grads[{k!r}]: an optimizer only reads gradients")
        for k in layer.params:
            got, want = layer.params[k] - before[k], ref_layer.params[k] - before[k]
            variants = {"sign": -want, "in_place": np.zeros_like(want)}
            for name, fn in (extra_variants or {}).items():
                variants[name] = fn(k, step) - before[k]
            if not same(got, want, TOL):
                raise Failed("agreement", f"{label}: step {step} moved parameter {k} "
                             f"differently from minigan's (relative error {rel(got, want):.1e})",
                             diagnose(got, want, variants))
            layer.params[k][...] = ref_layer.params[k]  # the next step starts from the same place


def grade_sgd(run, O):
    for momentum in (0.0, 0.9):
        grade_optimizer(run, lambda ps: run("SGD(...)", O.SGD, ps, lr=0.1, momentum=momentum),
                        lambda ps: mg_optim.SGD(ps, lr=0.1, momentum=momentum),
                        f"SGD(lr=0.1, momentum={momentum})")


class PlainAdam:
    """Adam as a mistake would write it (t from 0, eps inside the root), to recognise it."""

    def __init__(self, params, lr, betas, eps, t0=False, eps_inside=False):
        self.params, self.lr, self.betas, self.eps = list(params), lr, betas, eps
        self.t0, self.eps_inside = t0, eps_inside
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]
        self.t = 0

    def step(self):
        b1, b2 = self.betas
        t = self.t if self.t0 else self.t + 1
        for p, m, v in zip(self.params, self.m, self.v):
            m[...] = b1 * m + (1 - b1) * p.grad
            v[...] = b2 * v + (1 - b2) * p.grad**2
            with np.errstate(all="ignore"):
                m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
                denom = np.sqrt(v_hat + self.eps) if self.eps_inside else np.sqrt(v_hat) + self.eps
                p.data[...] = p.data - self.lr * m_hat / denom
        self.t += 1


def grade_adam(run, O):
    for eps in (1e-8, 1e-2):  # a large eps, so that where it goes shows
        kw = dict(lr=0.01, betas=(0.9, 0.999), eps=eps)
        mistakes = {}

        def make_ref(ps):
            # the mistakes' Adams shadow minigan's on their own copies of the parameters
            copies = [mg_layers.Param(p.name, p.data.copy(), p.grad) for p in ps]
            mistakes["adam_t0"] = (PlainAdam(copies, t0=True, **kw), copies)
            copies2 = [mg_layers.Param(p.name, p.data.copy(), p.grad) for p in ps]
            mistakes["eps_sqrt"] = (PlainAdam(copies2, eps_inside=True, **kw), copies2)
            return Shadow(mg_optim.Adam(ps, **kw), mistakes)

        def variant(name):
            def value(k, step):
                return {p.name: p.data for p in mistakes[name][1]}[k]
            return value

        grade_optimizer(run, lambda ps: run("Adam(...)", O.Adam, ps, **kw), make_ref,
                        f"Adam(lr=0.01, betas=(0.9, 0.999), eps={eps})",
                        {"adam_t0": variant("adam_t0"), "eps_sqrt": variant("eps_sqrt")})


class Shadow:
    """minigan's optimizer, with the mistakes' optimizers stepping from the same parameters."""

    def __init__(self, opt, mistakes):
        self.opt, self.mistakes = opt, mistakes

    def step(self):
        for opt, copies in self.mistakes.values():
            for c, p in zip(copies, self.opt.params):
                c.data[...] = p.data  # where this step starts, for all of them
            opt.step()
        self.opt.step()


# --- parts 9-10: the GAN steps ------------------------------------------------------------------

def small_gan(seed):
    rng = np.random.default_rng(seed)
    G = mg_gan.make_generator(latent_dim=3, hidden=(5,), out_dim=6, rng=rng, dtype="float64")
    D = mg_gan.make_discriminator(in_dim=6, hidden=(5,), rng=rng, dtype="float64")
    return G, D


def snapshot(net):
    return {k: p.copy() for k, p in net.params.items()}, {k: g.copy() for k, g in
                                                          net.grads.items()}


def grade_step(run, learner_step, ref_step, trained, loss_of, make_args, label):
    """Run a GAN step of the learner's and minigan's on identical small networks.

    trained: "D" or "G", the network the step updates; loss_of(G, D) the loss whose gradient
    the step must leave in the trained network's grads, checked by central differences.
    """
    outs = []
    nets = []
    for fn in (learner_step, ref_step):
        G, D = small_gan(13)
        for g in list(G.grads.values()) + list(D.grads.values()):
            g.fill(0.5)  # stale gradients from "the last step", which the step must not use
        opt = mg_optim.SGD((D if trained == "D" else G).parameters(), lr=0.1)
        before = snapshot(G), snapshot(D)
        args = make_args(G, D, opt)
        out = run(label, fn, *args) if fn is learner_step else fn(*args)
        outs.append(out)
        nets.append((G, D, before))
    (G, D, (g_before, d_before)), (G_ref, D_ref, _) = nets
    out, ref_out = outs
    net, ref_net = (D, D_ref) if trained == "D" else (G, G_ref)
    other, other_before = (G, g_before) if trained == "D" else (D, d_before)
    n_out = len(ref_out) if isinstance(ref_out, tuple) else 1
    got = out if isinstance(out, tuple) else (out,)
    want = ref_out if isinstance(ref_out, tuple) else (ref_out,)
    require(len(got) == n_out and all(np.ndim(v) == 0 or np.size(v) == 1 for v in got),
            "shapes", f"{label} must return {n_out} number(s), as minigan's does")

    # the gradient check: the grads left in the trained network against central differences
    # of the loss at the parameters before the step
    G0, D0 = small_gan(13)  # the networks as they were before the step
    stale = 0.5
    for k in net.params:
        numeric = numerical_gradient(lambda: loss_of(G0, D0),
                                     (D0 if trained == "D" else G0).params[k], 1.0)
        g = net.grads[k]
        if not same(g, numeric, TOL):
            hints = diagnose_all(g, numeric, {"zero_grad": numeric + stale}, ks=(2,))
            raise Failed("gradient check", f"{label}: {trained}'s gradient {k} is wrong "
                         f"(relative error {rel(g, numeric):.1e} against central differences)",
                         hints)
    for i, (a, b) in enumerate(zip(got, want)):
        require(same(a, b, TOL), "agreement", f"{label}: returned value {i + 1} differs from "
                f"minigan's (relative error {rel(a, b):.1e})", diagnose_all(a, b, ks=(2,)))
    for k in net.params:
        require(same(net.params[k], ref_net.params[k], TOL), "agreement",
                f"{label}: {trained}'s parameter {k} after the step differs from minigan's")
    params, grads = other_before
    untouched = all(np.array_equal(other.params[k], params[k]) and
                    np.array_equal(other.grads[k], grads[k]) for k in params)
    which = "G" if trained == "D" else "D"
    require(untouched, f"{which} untouched", f"{label} changed {which}'s parameters or grads",
            ["d_touched"] if which == "D" else [])


def grade_d_step(run, Gm):
    rng = np.random.default_rng(14)
    real = rng.uniform(-1, 1, (4, 6))
    z = rng.standard_normal((4, 3))
    for real_target in (1.0, 0.9):
        def d_loss(G, D):
            fake = G.forward(z)
            lr_ = mg_losses.bce_with_logits(D.forward(real), real_target)[0]
            lf = mg_losses.bce_with_logits(D.forward(fake), 0.0)[0]
            return lr_ + lf

        grade_step(run, Gm.discriminator_step, mg_gan.discriminator_step, "D",
                   d_loss,
                   lambda G, D, opt: (G, D, opt, real.copy(), z.copy(), real_target),
                   f"discriminator_step(real_target={real_target})")


def grade_g_step(run, Gm):
    """generator_step receives no opt_D, so D's optimizer state is out of its reach; what it
    can touch, D's parameters and grads, must be exactly as before the step."""
    rng = np.random.default_rng(15)
    z = rng.standard_normal((4, 3))
    for gen_loss in ("nonsaturating", "minimax"):
        def g_loss(G, D):
            return mg_losses.GENERATOR_LOSSES[gen_loss](D.forward(G.forward(z)))[0]

        grade_step(run, Gm.generator_step, mg_gan.generator_step, "G",
                   g_loss,
                   lambda G, D, opt: (G, D, opt, z.copy(), gen_loss),
                   f"generator_step(gen_loss={gen_loss!r})")


GRADERS = {1: grade_losses, 2: grade_dense, 3: grade_leaky, 4: grade_tanh, 5: grade_sigmoid,
           6: grade_sequential, 7: grade_sgd, 8: grade_adam, 9: grade_d_step, 10: grade_g_step}


# --- grading a folder ---------------------------------------------------------------------------

def grade_part(folder, part):
    """Grade one part; returns its Result."""
    if not attempted(folder, part):
        return Result(part, "not attempted")
    run = Runner(folder)
    try:
        module = load_module(folder, part.file)
        GRADERS[part.number](run, module)
    except Failed as f:
        return Result(part, "failed", 0, f.check, f.message, f.hints, f.error)
    except LearnerError as e:
        check = "your code raised"
        if isinstance(e.error, NotImplementedError):
            return Result(part, "failed", 0, "not finished",
                          f"{e.what}: still raises NotImplementedError: {e.error}", [], e.error)
        where = f"\n  at {e.where}" if e.where else ""
        return Result(part, "failed", 0, check, f"{e}{where}", [], e.error)
    return Result(part, "passed", part.points)


def grade(folder, numbers=None):
    """Results of the parts numbered ``numbers`` (all of them when None), in order."""
    chosen = [p for p in PARTS if numbers is None or p.number in numbers]
    return [grade_part(folder, p) for p in chosen]
