"""Part 15: the Fréchet distance of lesson 11 (gaussian_stats, sqrtm_psd, frechet_distance).

No gradient flows here, so the gradient check's place is taken by values computed another way:
the covariance as a loop over outer products divided by N - 1, the square root checked by
squaring it, and the distance between Gaussians with diagonal covariances, where it is
|mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2 by hand. Then agreement with minigan's on general
covariances, then the properties: d^2(P, P) = 0, symmetric, and finite on a singular
covariance (fewer samples than features, as a small evaluation has).
"""

import numpy as np

from minigan import scores as mg_scores
from minigan.homework.checks import TOL, diagnose_all, rel, require, same

D = 5  # features: apart from N, so that a transposed covariance shows in its shape


def covariance_by_hand(feats):
    """sum_i (f_i - mu)(f_i - mu)^T / (N - 1), one outer product at a time."""
    mu = feats.sum(axis=0) / len(feats)
    S = np.zeros((feats.shape[1], feats.shape[1]))
    for f in feats:
        S += np.outer(f - mu, f - mu)
    return mu, S / (len(feats) - 1)


def singular_covariance():
    """A covariance of 3 samples in D = 5 dimensions (rank 2) whose eigenvalues, as this
    machine's eigh and eigvalsh compute them, include a negative one: what rounding does to a
    singular matrix."""
    for seed in range(200):
        S = np.cov(np.random.default_rng(seed).normal(size=(3, D)), rowvar=False)
        if np.linalg.eigh(S)[0].min() < 0 and np.linalg.eigvalsh(S).min() < 0:
            return S
    raise RuntimeError("no singular covariance with a negative computed eigenvalue")


def sqrt_product_variant(mu1, S1, mu2, S2):
    """The distance with tr (S1^(1/2) S2^(1/2)) for tr (S1 S2)^(1/2)."""
    r1, r2 = mg_scores.sqrtm_psd(S1), mg_scores.sqrtm_psd(S2)
    diff = mu1 - mu2
    return diff @ diff + np.trace(S1) + np.trace(S2) - 2 * np.trace(r1 @ r2)


def grade_frechet(run, learner_scores):
    rng = np.random.default_rng(40)
    feats = rng.normal(size=(12, D)) @ rng.normal(size=(D, D)) + 2.0  # (N, D), correlated
    ref_mu, ref_S = covariance_by_hand(feats)
    # shapes
    out = run("gaussian_stats(feats)", learner_scores.gaussian_stats, feats.copy())
    require(isinstance(out, tuple) and len(out) == 2, "shapes",
            f"gaussian_stats must return (mu, S), returned {type(out).__name__}")
    mu, S = out
    require(np.shape(mu) == (D,) and np.shape(S) == (D, D), "shapes",
            f"gaussian_stats of features ({len(feats)}, {D}) returned mu {np.shape(mu)} and S "
            f"{np.shape(S)}, expected ({D},) and ({D}, {D})")
    A = rng.uniform(0.1, 1.0, (D, D))
    S1 = A @ A.T + 0.5 * np.eye(D)  # positive definite, positive entries
    root = run("sqrtm_psd(S)", learner_scores.sqrtm_psd, S1.copy())
    require(np.shape(root) == (D, D), "shapes",
            f"sqrtm_psd of a ({D}, {D}) matrix returned shape {np.shape(root)}")
    mu1, mu2 = rng.normal(size=D), rng.normal(size=D)
    B = rng.normal(size=(D, D))
    S2 = B @ B.T + 0.1 * np.eye(D)
    fd = run("frechet_distance(mu1, S1, mu2, S2)", learner_scores.frechet_distance,
             mu1.copy(), S1.copy(), mu2.copy(), S2.copy())
    require(np.ndim(fd) == 0 or np.size(fd) == 1, "shapes",
            f"frechet_distance must return one number, returned shape {np.shape(fd)}")

    # values computed another way
    n = len(feats)
    require(same(mu, ref_mu, TOL), "values by hand", "gaussian_stats: mu is not the mean of "
            f"the rows (relative error {rel(mu, ref_mu):.1e})", diagnose_all(mu, ref_mu))
    require(same(S, ref_S, TOL), "values by hand", "gaussian_stats: S is not the sum of outer "
            f"products of the centred rows over N - 1 (relative error {rel(S, ref_S):.1e})",
            diagnose_all(S, ref_S, {"cov_n": ref_S * (n - 1) / n}))
    require(same(root @ root, S1, TOL) and same(root, root.T, TOL), "values by hand",
            "sqrtm_psd(S): R @ R is not S, or R is not symmetric",
            diagnose_all(root, mg_scores.sqrtm_psd(S1), {"elementwise_sqrt": np.sqrt(S1)}))
    a, b = rng.uniform(0.2, 3.0, D), rng.uniform(0.2, 3.0, D)
    by_hand = (mu1 - mu2) @ (mu1 - mu2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = run("frechet_distance(mu1, diag(a), mu2, diag(b))", learner_scores.frechet_distance,
              mu1.copy(), np.diag(a), mu2.copy(), np.diag(b))
    require(same(got, by_hand, TOL), "values by hand", "frechet_distance between Gaussians with "
            "diagonal covariances is not |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2 "
            f"(relative error {rel(got, by_hand):.1e})",
            diagnose_all(got, by_hand, {"fd_squared": np.sqrt(by_hand)}))

    # agreement with minigan's, where S1 and S2 do not commute
    ref_fd = mg_scores.frechet_distance(mu1, S1, mu2, S2)
    require(same(fd, ref_fd, TOL), "agreement", "frechet_distance differs from minigan's "
            f"(relative error {rel(fd, ref_fd):.1e})",
            diagnose_all(fd, ref_fd, {"fd_squared": np.sqrt(ref_fd),
                                      "sqrt_product": sqrt_product_variant(mu1, S1, mu2, S2)}))

    # properties
    swapped = run("frechet_distance(mu2, S2, mu1, S1)", learner_scores.frechet_distance,
                  mu2.copy(), S2.copy(), mu1.copy(), S1.copy())
    require(same(swapped, fd, 1e-9), "properties", "frechet_distance(P, Q) differs from "
            "frechet_distance(Q, P): the distance is symmetric")
    scale = np.trace(S2)
    self_fd = run("frechet_distance(mu, S, mu, S)", learner_scores.frechet_distance,
                  mu2.copy(), S2.copy(), mu2.copy(), S2.copy())
    require(abs(float(self_fd)) < 1e-9 * scale, "properties",
            f"frechet_distance(P, P) = {float(self_fd):.3g}, not 0")
    Z = singular_covariance()
    root = run("sqrtm_psd(a singular S)", learner_scores.sqrtm_psd, Z.copy())
    require(np.isfinite(root).all(), "properties", "sqrtm_psd of a singular covariance (3 "
            f"samples, {D} features) is not finite", ["eig_clip"])
    require(same(root @ root, Z, 1e-6), "properties",
            "sqrtm_psd of a singular covariance: R @ R is not S")
    zero = run("frechet_distance(mu, S, mu, S) with S singular", learner_scores.frechet_distance,
               mu1.copy(), Z.copy(), mu1.copy(), Z.copy())
    require(np.isfinite(zero) and abs(float(zero)) < 1e-6 * np.trace(Z), "properties",
            "frechet_distance(P, P) with a singular covariance is not finite, or not 0",
            [] if np.isfinite(zero) else ["eig_clip"])
