"""Does G copy its training set? The nearest training images of samples, and one number.

    python -m minigan.evaluate RUN_DIR --neighbours       # the check, and neighbours.png

A generator that memorised its training set would score well on every measure of
minigan.evaluate: its samples *are* MNIST digits. The check (Goodfellow et al. 2014, Figure 2,
shows each sample beside its nearest training image) asks how close each sample lies to the
training set, and compares that with how close images G has never seen, the MNIST test images,
lie to it:

    d(x) = min over training images t of |x - t|     (in pixels, and in the classifier's features)

Test images are fresh draws from the data distribution, so their d is what an honest generator's
samples should show. ``copy_share``, the share of samples whose d is below the 1st percentile
of the test images' d, is about 1% for a G that draws new digits and 100% for one that replays
its training images (``exact_copies`` counts samples equal to a training image, pixel for pixel).
Measured with 1,000 training images saved as a .npy: as they are, and with Gaussian pixel noise
of sd 8 grey levels, the copy share is 100% in both spaces; shifted by one pixel (np.roll), it is
0.5% in pixels and 0.3% in features, no more than test images'. A copy that moved is not caught:
the check finds replayed images, not every kind of memorisation.

The search is exact, against all 60,000 training images, by matrix products (below); its cost
is O(n * 60,000 * D) for n samples and as many test images, D = 784 pixels and 256 features:
33 s for n = 1,000 and 284 s for n = 10,000 (--neighbours-n), one BLAS thread on the project's
2-core CPU machine while other jobs shared it (2026-11-30); the 1,000 test images' pixel search
alone took 5.6 s when the machine was quieter. Plain NumPy on host arrays, as minigan/scores.py.
"""

import numpy as np

from minigan.scores import squared_distances

CHUNK = 10_000  # training images per matrix product
QUERY_CHUNK = 1_000  # samples per matrix product: a (1000, 10000) float64 block is 80 MB
QUANTILES = (0.01, 0.05, 0.5)  # of the nearest-neighbour distances, in the table and the JSON
COPY_QUANTILE = 0.01  # copy_share: samples closer than this quantile of the test images' d
FIGURE_ROWS = 10  # the figure: this many samples...
FIGURE_K = 5  # ...each beside its this many nearest training images, in each space


def smallest(d, idx, k):
    """The k smallest entries of each row of d (M, C), a tie going to the lower idx (M, C):
    their values (M, k) and idx (M, k), in increasing order.

    np.partition finds each row's k-th smallest value in O(C); only the entries up to it (k of
    them, more on a tie) are then sorted, by row, then value, then index.
    """
    kth = np.partition(d, k - 1, axis=1)[:, k - 1:k]  # (M, 1)
    rows, cols = np.nonzero(d <= kth)  # at least k entries in every row
    order = np.lexsort((idx[rows, cols], d[rows, cols], rows))
    rows, cols = rows[order], cols[order]
    first = np.searchsorted(rows, np.arange(len(d)))  # (M,): where each row's entries begin
    pick = first[:, None] + np.arange(k)  # (M, k)
    return d[rows[pick], cols[pick]], idx[rows[pick], cols[pick]]


def nearest(queries, refs, k=1, chunk=CHUNK, query_chunk=QUERY_CHUNK):
    """The k nearest rows of refs (N, D) to each row of queries (M, D), by exact search.
    Returns squared distances (M, k) float64 and indices into refs (M, k), nearest first; a tie
    goes to the lower index.

    Why chunks: all distances at once would be an (M, N) matrix, 4.8 GB for M = 10,000 samples
    against N = 60,000 training images. Instead, for each block of query_chunk queries, the
    training images come chunk at a time; each block of (query_chunk, chunk) distances is merged
    into the best k so far (the running best, then the chunk, columns in increasing index, so
    that `smallest` breaks a tie to the lower index), and dropped.
    """
    queries, refs = np.asarray(queries), np.asarray(refs)
    m, n = len(queries), len(refs)
    if not 1 <= k <= n:
        raise ValueError(f"nearest: k={k} neighbours asked for among {n} reference rows")
    best_d, best_i = np.empty((m, k)), np.empty((m, k), dtype=np.int64)
    ref_sq = np.empty(n)  # |b_j|^2, computed once for every block of queries
    for start in range(0, n, chunk):
        block = refs[start:start + chunk].astype(np.float64)
        ref_sq[start:start + len(block)] = (block * block).sum(axis=1)
    for q in range(0, m, query_chunk):
        some = queries[q:q + query_chunk].astype(np.float64)  # (query_chunk, D)
        d_k = np.full((len(some), k), np.inf)  # the best k so far
        i_k = np.full(d_k.shape, -1, dtype=np.int64)
        for start in range(0, n, chunk):
            block = refs[start:start + chunk].astype(np.float64)  # (chunk, D)
            d = squared_distances(some, block, np.float64, ref_sq[start:start + len(block)])
            index = np.broadcast_to(np.arange(start, start + len(block)), d.shape)
            d_k, i_k = smallest(np.hstack([d_k, d]), np.hstack([i_k, index]), k)
        best_d[q:q + query_chunk], best_i[q:q + query_chunk] = d_k, i_k
    return best_d, best_i


# ---- the memorisation number ---------------------------------------------------------------


def distance_summary(d_samples, d_test):
    """Compare nearest-neighbour distances (not squared) of samples (M,) and of test images
    (M',): their QUANTILES, copy_share (the share of samples below the test images' 1st
    percentile; for the test images themselves, the share below it, about 1%) and exact_copies
    (distances of 0)."""
    below = np.quantile(d_test, COPY_QUANTILE)
    summary = {}
    for name, d in (("samples", d_samples), ("test", d_test)):
        summary[name] = {f"q{round(100 * q):02d}": float(np.quantile(d, q)) for q in QUANTILES}
        summary[name]["copy_share"] = float(np.mean(d < below))
        summary[name]["exact_copies"] = int(np.sum(d == 0))
    summary["test_q01"] = float(below)
    return summary


def memorisation(samples, sample_feats, train, train_feats, test, test_feats, k=FIGURE_K,
                 rows=FIGURE_ROWS):
    """The check for uint8 samples (M, 28, 28) and their features (M, F), against the training
    images (N, 28, 28) and features (N, F), with test images and features (M', ...) as the
    yardstick. Distances are reported in pixel units of [0, 1] (|x - t| / 255) and feature
    units. Returns (result, neighbours): the result for the JSON, and for the figure the
    indices into train (rows, k) of the nearest images of the first ``rows`` samples, in each
    space."""
    pixels = [images.reshape(len(images), -1) for images in (samples, test, train)]  # (N, 784)
    result, neighbours = {"n": len(samples), "n_test": len(test)}, {}
    for space, s, t, ref, scale in (("pixel", *pixels, 255.0),
                                    ("feature", sample_feats, test_feats, train_feats, 1.0)):
        d_s, i_s = nearest(s, ref, k)  # (M, k): k for the figure, the first for the number
        d_t, _ = nearest(t, ref, 1)
        result[space] = distance_summary(np.sqrt(d_s[:, 0]) / scale, np.sqrt(d_t[:, 0]) / scale)
        neighbours[space] = i_s[:rows]
    return result, neighbours


def figure_cells(samples, train, neighbours, rows=FIGURE_ROWS):
    """The figure's cells (rows * (2k + 3), 28, 28) uint8, a row per sample: the sample, a black
    gap, its k nearest training images in pixels, a gap, its k nearest in features."""
    gap = np.zeros((1, 28, 28), dtype=np.uint8)
    cells = [np.concatenate([samples[r:r + 1], gap, train[neighbours["pixel"][r]], gap,
                             train[neighbours["feature"][r]]])
             for r in range(min(rows, len(samples)))]
    return np.concatenate(cells)


NOTE = ("NN: distance to the nearest training image (pixels scaled to [0, 1]; classifier "
        "features); copy share: samples nearer a training image than 99% of test images are")


def format_lines(result):
    """The check as rows of minigan.evaluate's table: (score, samples, MNIST test, ideal)."""
    lines = []
    for space, unit in (("pixel", "pixels"), ("feature", "features")):
        s, t = result[space]["samples"], result[space]["test"]
        lines += [(f"NN {unit}, 1%", f"{s['q01']:.3f}", f"{t['q01']:.3f}", "as test"),
                  (f"NN {unit}, median", f"{s['q50']:.3f}", f"{t['q50']:.3f}", "as test"),
                  (f"copy share, {unit}", f"{s['copy_share']:.1%}", f"{t['copy_share']:.1%}",
                   "1%")]
    s, t = result["pixel"]["samples"], result["pixel"]["test"]
    lines.append(("exact copies", str(s["exact_copies"]), str(t["exact_copies"]), "0"))
    return lines
