"""The formulas of anomaly detection with a GAN: AnoGAN's latent search, D's own output, two
baselines without a GAN (PCA reconstruction error, distance to the nearest training images),
and the area under the ROC curve that compares them. The command is minigan/anomaly.py.

AnoGAN (Schlegl et al. 2017). G was trained on normal images only, so an image x that G can
draw is normal and one it cannot is an anomaly. How well G can draw x is found by a search in
its latent space: gradient steps on z (Adam) that lower, for each image i on its own,

    L(z) = (1 - lam) * R(z) + lam * F(z)
    R(z) = sum_p |x_p - G(z)_p|                 the residual, over the 784 pixels
    F(z) = sum_k |f(x)_k - f(G(z))_k|           the feature distance

where f is D up to its last hidden activation (the MLP's 256 LeakyReLU outputs): D without its
last Dense. The anomaly score is L at the last z. Its gradient, by the chain rule through the
two networks (sign(0) = 0, the subgradient of |.| at its kink):

    g = dL/dG(z) = (1 - lam) * sign(G(z) - x) + lam * J_f(G(z))^T sign(f(G(z)) - f(x))
    dL/dz        = J_G(z)^T g

Both products with a transposed Jacobian are backward passes, the ones the generator step
already runs: ``f.backward(lam * sign(...), param_grads=False)`` turns the feature term's
upstream gradient into one on G's output, and ``G.backward(g, param_grads=False)`` returns
dL/dz (Sequential.backward returns dL/dinput), with neither network's weight gradients
touched. The rows of z do not interact, so the sum over a batch has, row by row, each image's
own gradient. tests/test_anomaly.py checks dL/dz against float64 central differences.

AUROC: the probability that a random anomaly scores above a random normal image, ties counted
half: (number of pairs (anomaly, normal) ordered right + ties / 2) / (n_anomalies n_normal).
By ranks (Mann-Whitney): with the scores ranked 1..n, tied scores sharing their mean rank,
AUROC = (sum of the anomalies' ranks - n_a (n_a + 1) / 2) / (n_a n_n). Why: an image of
(mid)rank r is above r - 1 others, ties counted half; summed over the anomalies, that counts the
(anomaly, normal) pairs ordered right, plus each of the n_a (n_a - 1) / 2 pairs of two anomalies
exactly once, and n_a + n_a (n_a - 1) / 2 = n_a (n_a + 1) / 2.

Scores and baselines here are on host NumPy arrays, except the latent search, which runs G and D
on the device (backend.xp).
"""

import numpy as np

from minigan import backend
from minigan.gan import sample_noise
from minigan.layers import Param, Sequential
from minigan.neighbours import CHUNK, QUERY_CHUNK, nearest
from minigan.optim import Adam


# ---- AUROC and the ROC curve -------------------------------------------------------------------


def _split(scores, is_anomaly):
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    is_anomaly = np.asarray(is_anomaly, dtype=bool).reshape(-1)
    if scores.shape != is_anomaly.shape:
        raise ValueError(f"auroc: {scores.shape[0]} scores but {is_anomaly.shape[0]} labels")
    n_a = int(is_anomaly.sum())
    if n_a == 0 or n_a == len(scores):
        raise ValueError("auroc: needs at least one anomaly and one normal image, got "
                         f"{n_a} anomalies among {len(scores)} images")
    if not np.isfinite(scores).all():
        raise ValueError("auroc: the scores hold NaN or inf")
    return scores, is_anomaly, n_a, len(scores) - n_a


def midranks(values):
    """Ranks 1..n of values (n,), tied values sharing the mean of their ranks (float64)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    # the runs of equal values: a run covering sorted positions a..b-1 gets rank (a + 1 + b) / 2
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + 1 + ends) / 2, ends - starts)
    return ranks


def auroc(scores, is_anomaly):
    """Area under the ROC curve of scores (n,) (higher: more anomalous) against is_anomaly (n,)
    bool, by ranks with ties counted half:

        AUROC = (sum of the anomalies' ranks - n_a (n_a + 1) / 2) / (n_a n_n)

    1 when every anomaly scores above every normal image, 0 when below, 0.5 for a constant."""
    scores, is_anomaly, n_a, n_n = _split(scores, is_anomaly)
    rank_sum = midranks(scores)[is_anomaly].sum()
    return float((rank_sum - n_a * (n_a + 1) / 2) / (n_a * n_n))


def roc_curve(scores, is_anomaly):
    """The ROC curve: (false positive rate, true positive rate), each (m + 1,), from (0, 0) to
    (1, 1), one point per distinct score taken as the threshold (flag score >= threshold),
    highest first. Its trapezoid area is auroc's value (a tie is a diagonal step: half)."""
    scores, is_anomaly, n_a, n_n = _split(scores, is_anomaly)
    order = np.argsort(-scores, kind="stable")
    s, a = scores[order], is_anomaly[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]  # the curve moves once per distinct score
    tp, fp = np.cumsum(a)[last_of_tie], np.cumsum(~a)[last_of_tie]
    return np.r_[0, fp] / n_n, np.r_[0, tp] / n_a


# ---- AnoGAN: the latent search ---------------------------------------------------------------


def feature_net(D):
    """f: D without its last Dense, (N, 784) -> the last hidden activation (N, features); the
    same layer objects as D (no copy)."""
    return Sequential(*D.layers[:-1])


def anogan_objective(G, f, x, fx, z, lam):
    """AnoGAN's L(z) for each row and its gradient (module docstring):

    x: images (N, 784) in [-1, 1]; fx = f(x) (N, features); z: (N, latent_dim).
    Returns (L (N,), residual R (N,), feature distance F (N,), dL/dz (N, latent_dim)).
    Runs G and f forward and backward; their weight gradients are left untouched."""
    xp = backend.xp
    gz = G.forward(z)  # (N, 784)
    fgz = f.forward(gz)  # (N, features)
    residual = xp.abs(x - gz).sum(axis=1)  # R: (N,)
    feature = xp.abs(fx - fgz).sum(axis=1)  # F: (N,)
    loss = (1 - lam) * residual + lam * feature
    dgz = (1 - lam) * xp.sign(gz - x)  # dR/dG(z), weighted
    if lam:  # + J_f^T (lam * sign(f(G(z)) - f(x))): a backward pass through D's hidden layers
        dgz = dgz + f.backward(lam * xp.sign(fgz - fx), param_grads=False)
    dz = G.backward(dgz, param_grads=False)  # J_G^T g: (N, latent_dim)
    return loss, residual, feature, dz


def latent_search(G, D, x, steps, lr, lam, rng, chunk=500):
    """AnoGAN's scores of images x (N, 784) on the device: Adam on z from z ~ N(0, I) for steps
    steps, each image's z on its own. G and D should be in evaluation mode: then f is one fixed
    function during the search (a training forward of a spectrally normalised D takes a power
    step, moving its u and v, and with them f; BatchNorm and Dropout differ too).

    Returns host arrays: L, R and F at the last z (N,) each, and the batch-mean objective before
    each step and after the last (steps + 1,) of the first chunk (it should fall)."""
    xp = backend.xp
    f = feature_net(D)
    latent_dim = G.layers[0].params["W"].shape[0]
    dtype = G.layers[0].params["W"].dtype
    out = {"loss": [], "residual": [], "feature": []}
    history = xp.empty(steps + 1)  # float64 on the device, filled by the first chunk
    # every image's starting z in one draw, so that the chunks change nothing on any device (as
    # minigan.sample.generate: CuPy's generator, unlike NumPy's, draws by position in the draw)
    z_all = sample_noise(rng, len(x), latent_dim, dtype)
    for start in range(0, len(x), chunk):
        xb = x[start:start + chunk]
        fx = f.forward(xb)  # (n, features): the image's features, fixed during the search
        z = z_all[start:start + chunk].copy()  # Adam updates this chunk's z in place
        dz = xp.zeros_like(z)
        opt = Adam([Param("z", z, dz)], lr=lr)  # updates z in place
        for step in range(steps + 1):
            loss, residual, feature, grad = anogan_objective(G, f, xb, fx, z, lam)
            if start == 0:
                history[step] = loss.mean()  # stays on the device: no host sync per step
            if step == steps:
                break
            dz[...] = grad
            opt.step()
        for name, value in (("loss", loss), ("residual", residual), ("feature", feature)):
            out[name].append(backend.to_host(value))  # device -> host
    return {**{k: np.concatenate(v) for k, v in out.items()},
            "history": backend.to_host(history)}  # device -> host, once


def discriminator_score(D, x, chunk=2000):
    """D's own anomaly score of images x (N, 784) on the device: minus its logit, so that an
    image D finds less real scores higher. Host (N,)."""
    return np.concatenate([-backend.to_host(D.forward(x[s:s + chunk]))[:, 0]
                           for s in range(0, len(x), chunk)])


# ---- baselines without a GAN ------------------------------------------------------------------


def pca_fit(train, k):
    """The mean (784,) and the top k principal directions (784, k) of training rows (N, 784):
    eigenvectors of the covariance (x - mean)^T (x - mean) / N with the largest eigenvalues.
    k < N: the N centred rows span at most N - 1 directions, and eigenvectors beyond them
    (eigenvalue 0) are whatever basis LAPACK returns, so a score from them would be arbitrary."""
    if not 1 <= k < len(train):
        raise ValueError(f"pca_fit: k={k} principal directions asked of {len(train)} rows, whose "
                         f"centred rows span at most {len(train) - 1}")
    train = np.asarray(train, dtype=np.float64)
    mean = train.mean(axis=0)
    centred = train - mean
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / len(train))  # ascending
    return mean, eigenvectors[:, ::-1][:, :k]


def pca_error(x, mean, V):
    """The squared distance of each row of x (N, 784) to the PCA subspace (mean + span V):

        ||x - mean||^2 - ||V^T (x - mean)||^2          (V has orthonormal columns)
    """
    centred = np.asarray(x, dtype=np.float64) - mean
    return (centred ** 2).sum(axis=1) - ((centred @ V) ** 2).sum(axis=1)


def knn_distance(x, train, k, chunk=CHUNK, query_chunk=QUERY_CHUNK):
    """The mean Euclidean distance of each row of x (N, D) to its k nearest rows of train
    (M, D), by the exact chunked search of minigan.evaluate --neighbours (neighbours.nearest)."""
    # (N, k) float64, never below 0: minigan.scores.squared_distances clamps rounding at 0
    squared, _ = nearest(x, train, k, chunk, query_chunk)
    return np.sqrt(squared).mean(axis=1)
