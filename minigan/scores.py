"""The formulas of lesson 11: the Fréchet distance, the class histogram, precision and recall;
and of lesson 16, for a conditional generator: class consistency and the intra-class distance.

Plain NumPy on host arrays of features (N, D), whatever made them. minigan/evaluate.py feeds
them the MNIST classifier's features (minigan/classifier.py) and compares a generator's samples
with real images; the floor of the distance is the same formula applied to real test images.
Derivations: lessons/11_measuring_samples.md.
"""

import math

import numpy as np

CLASSES = 10
K = 3  # neighbours for the precision/recall manifolds, as Kynkäänniemi et al. recommend


# ---- the Fréchet distance (lesson 11, sections 2 and 3) -------------------------------------


def frechet_distance(mu1, S1, mu2, S2):
    """Fréchet (2-Wasserstein) distance squared between N(mu1, S1) and N(mu2, S2):

        |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr (S1 S2)^(1/2)

    tr (S1 S2)^(1/2) is computed as tr (S1^(1/2) S2 S1^(1/2))^(1/2): that matrix is symmetric
    PSD and has the same eigenvalues as S1 S2, so eigh applies (no scipy.linalg.sqrtm).
    """
    r1 = sqrtm_psd(S1)
    T = r1 @ S2 @ r1
    T = (T + T.T) / 2  # symmetric up to rounding; make it exactly so for eigvalsh
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(T), 0, None)).sum()
    diff = np.asarray(mu1) - np.asarray(mu2)
    return float(diff @ diff + np.trace(S1) + np.trace(S2) - 2 * tr_sqrt)


def sqrtm_psd(S):
    """The symmetric square root of a symmetric positive semi-definite matrix S (D, D).

    S = V diag(w) V^T (eigh)  ->  S^(1/2) = V diag(sqrt(w)) V^T, with w clipped at 0 (rounding
    makes tiny eigenvalues of a singular S slightly negative). lessons/11_measuring_samples.md.
    """
    w, V = np.linalg.eigh(S)
    return (V * np.sqrt(np.clip(w, 0, None))) @ V.T


def gaussian_stats(feats):
    """Mean (D,) and covariance (D, D) of features (N, D), in float64 (the 1/(N-1) estimate)."""
    feats = np.asarray(feats, dtype=np.float64)
    # np.cov of one feature is a 0-d array: atleast_2d keeps S (D, D) for D = 1 too
    return feats.mean(axis=0), np.atleast_2d(np.cov(feats, rowvar=False))


# ---- the class histogram (lesson 11, section 4) ---------------------------------------------


def class_scores(labels):
    """The class histogram of predicted labels (N,): entropy and KL to uniform in nats, shares.

        p_c = share of label c,  H = -sum_c p_c log p_c,  KL(p || uniform) = log 10 - H
    """
    share = np.bincount(labels, minlength=CLASSES) / len(labels)  # (10,)
    nonzero = share[share > 0]
    entropy = float(-(nonzero * np.log(nonzero)).sum())  # 0 log 0 = 0
    return {"class_entropy": entropy, "kl_uniform": math.log(CLASSES) - entropy,
            "class_share": [float(s) for s in share]}


# ---- a conditional generator: the digit asked for (lesson 16, section 6) ----------------------


def class_consistency(asked, predicted, classes=CLASSES):
    """How often the classifier labels a sample as the digit it was asked for.

    asked, predicted: integer labels (N,); every class must be asked for at least once.
    Returns (overall, per_class): per_class[c] = #{i: asked_i = c, predicted_i = c} / #{i: asked_i
    = c}, (classes,); overall = #{i: predicted_i = asked_i} / N (their mean when the classes are
    asked for equally often).
    """
    asked, predicted = np.asarray(asked), np.asarray(predicted)
    per_asked = np.bincount(asked, minlength=classes)  # (classes,)
    if (per_asked == 0).any():
        raise ValueError(f"class_consistency: class {int(np.argmin(per_asked))} is never asked "
                         "for; ask for every class")
    hits = np.bincount(asked[predicted == asked], minlength=classes)  # (classes,)
    return float((predicted == asked).mean()), hits / per_asked


def intra_class_fd(feats, asked, real_stats):
    """The Fréchet distance within each class, and its mean over the classes.

    feats: features (N, D) of samples; asked: the class each was asked for (N,), at least two
    samples of each class (a covariance); real_stats: one (mean (D,), covariance (D, D)) of real
    images per class, as gaussian_stats gives them.
        FD_c = frechet_distance(gaussian_stats(feats[asked == c]), real_stats[c])
        intra-class FD = mean over c of FD_c
    Returns (mean, per_class (classes,)).
    """
    asked = np.asarray(asked)
    per_class = np.array([frechet_distance(*gaussian_stats(feats[asked == c]), mu, sigma)
                          for c, (mu, sigma) in enumerate(real_stats)])
    return float(per_class.mean()), per_class


# ---- precision and recall (lesson 11, section 5) --------------------------------------------


def precision_recall(real, fake, k=K, chunk=2000, real_radii=None):
    """Improved precision and recall (Kynkäänniemi et al. 2019) of features real (M, D) and
    fake (N, D).

    Each set's manifold is the union of balls around its points, of radius the distance to the
    point's k-th nearest neighbour in the same set. precision = share of fake points inside the
    real manifold; recall = share of real points inside the fake manifold. real_radii: the real
    set's knn_radii, when the caller has them already.
    """
    real, fake = np.asarray(real), np.asarray(fake)
    if len(real) <= k or len(fake) <= k:
        raise ValueError(f"precision_recall needs more than k={k} points in each set")
    r_real = knn_radii(real, k, chunk) if real_radii is None else real_radii
    r_fake = knn_radii(fake, k, chunk)
    fake_in = np.zeros(len(fake), dtype=bool)
    real_in = np.zeros(len(real), dtype=bool)
    for start in range(0, len(fake), chunk):
        d = squared_distances(fake[start:start + chunk], real)  # (chunk, M)
        fake_in[start:start + chunk] = (d <= r_real[None, :]).any(axis=1)
        real_in |= (d <= r_fake[start:start + chunk, None]).any(axis=0)
    return float(fake_in.mean()), float(real_in.mean())


def knn_radii(feats, k=K, chunk=2000):
    """Squared distance from each row of feats (N, D) to its k-th nearest other row: (N,)."""
    feats = np.asarray(feats)
    radii = np.empty(len(feats))
    for start in range(0, len(feats), chunk):
        d = squared_distances(feats[start:start + chunk], feats)
        radii[start:start + chunk] = np.partition(d, k, axis=1)[:, k]  # index 0 is the row itself
    return radii


def squared_distances(a, b, dtype=np.float32, b_sq=None):
    """|a_i - b_j|^2 = |a_i|^2 + |b_j|^2 - 2 a_i . b_j for rows of a (M, D) and b (N, D): (M, N)
    in dtype, never negative. b_sq: |b_j|^2 (N,), when the caller has it already.

    The product a @ b.T does the work, at BLAS speed; a loop over pairs would be ~100x slower.
    float32 by default: the product is most of the evaluation's time, and float32 halves it; its
    rounding (~1e-7 of |a|^2) only matters for near-ties, and is the same every run.
    minigan/neighbours.py asks for float64: on pixels 0..255 every term is then an integer below
    2^53, so the distances are exact and a tie is a tie; on features the rounding is ~1e-16.
    """
    a, b = a.astype(dtype, copy=False), b.astype(dtype, copy=False)
    if b_sq is None:
        b_sq = (b * b).sum(axis=1)
    d = (a * a).sum(axis=1)[:, None] + b_sq[None, :] - 2 * (a @ b.T)
    return np.maximum(d, 0)  # float rounding can leave -1e-13 where the distance is 0
