"""The arms of python -m minigan.augment (minigan/augment.py, where the measurement is
described): the labelled subset, the practitioner's augmentation, the generators, and one seed's
classifiers.

Host NumPy, except the generator's training and sampling, which run on the current device.
"""

import time

import numpy as np

from minigan import backend, classifier, conditional, data, gan, models, sample, scores, settings

BATCH = 128  # each classifier's batch (the whole set when it is smaller)
LR = 1e-3  # Adam's, decayed linearly to 0, as train_classifier's
MAX_SHIFT, MAX_ROTATION = 2, 10  # pixels, degrees: the practitioner's augmentation
GAN_VARIANT = "acgan"  # lessons/16: its class loss teaches G the labels soonest
GAN_WIDTHS = dict(g_hidden=(256, 512), d_hidden=(512, 256))  # train_mnist's, one layer fewer


# ---- the data of an arm -------------------------------------------------------------------------


def stratified_subset(labels, n, rng, classes=conditional.NUM_CLASSES):
    """Sorted indices of n images drawn without replacement, each digit keeping its share.

    Digit c, with n_c of the N labels, gets floor(q_c) images, q_c = n * n_c / N; the
    n - sum floor(q_c) left over go, one each, to the digits with the largest remainders
    q_c - floor(q_c), ties to the lower digit (Hamilton's largest-remainder rule). The images of
    a digit are drawn uniformly by rng. n = N takes every image."""
    counts = np.bincount(labels, minlength=classes)  # (classes,)
    quota = n * counts / len(labels)
    take = np.floor(quota).astype(int)
    by_remainder = np.argsort(-(quota - take), kind="stable")  # stable: ties to the lower digit
    take[by_remainder[:n - take.sum()]] += 1
    picked = [rng.choice(np.flatnonzero(labels == c), take[c], replace=False)
              for c in range(classes)]
    return np.sort(np.concatenate(picked))


def rotate_images(images, degrees):
    """Each uint8 image (N, 28, 28) turned counter-clockwise (as drawn, row 0 at the top) by
    degrees[i] about its centre (13.5, 13.5), with bilinear interpolation and black outside.

    Output pixel (r, k), at x = k - 13.5, y = 13.5 - r, takes the source point turned back by
    theta: (x cos + y sin, -x sin + y cos); the four pixels around it are mixed by their
    distances. 90 degrees is numpy.rot90 exactly."""
    c = 13.5
    theta = np.deg2rad(np.asarray(degrees, dtype=np.float64))[:, None, None]  # (N, 1, 1)
    r, k = np.mgrid[0:28, 0:28]
    x, y = k - c, c - r  # (28, 28): the output pixel, y up
    src_x = x * np.cos(theta) + y * np.sin(theta)  # (N, 28, 28)
    src_y = -x * np.sin(theta) + y * np.cos(theta)
    rows = np.clip(c - src_y, -1, 28)  # beyond the border: black, from the padding
    cols = np.clip(src_x + c, -1, 28)
    r0, k0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    fr, fk = rows - r0, cols - k0  # how far past pixel (r0, k0)
    padded = np.zeros((len(images), 32, 32))  # two black pixels on every side
    padded[:, 2:30, 2:30] = images
    n = np.arange(len(images))[:, None, None]

    def at(dr, dk):  # (N, 28, 28): the source pixels (r0 + dr, k0 + dk) of every output pixel
        return padded[n, r0 + 2 + dr, k0 + 2 + dk]

    out = ((1 - fr) * (1 - fk) * at(0, 0) + (1 - fr) * fk * at(0, 1)
           + fr * (1 - fk) * at(1, 0) + fr * fk * at(1, 1))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def shift_and_rotate(images, rng, max_shift=MAX_SHIFT, max_degrees=MAX_ROTATION):
    """The practitioner's augmentation: each image turned by an angle uniform in
    [-max_degrees, max_degrees], then shifted by whole pixels (classifier.shift_images)."""
    degrees = rng.uniform(-max_degrees, max_degrees, len(images))
    return classifier.shift_images(rotate_images(images, degrees), rng, max_shift)


# ---- the generators ------------------------------------------------------------------------------


def gan_config(variant=GAN_VARIANT, seed=0, widths=None):
    """The settings of a generator trained here: train_mnist.py's defaults, --conditional
    variant, the widths of GAN_WIDTHS, checked as train_mnist.py checks its flags."""
    cfg = settings.Config(conditional=variant, seed=seed, **(widths or GAN_WIDTHS))
    settings.validate(cfg)
    settings.check_combination(cfg)
    return cfg


def train_generator(images, labels, cfg, steps):
    """A conditional G trained ``steps`` steps of gan.train_step on uint8 images (N, 28, 28) and
    their digits (N,); returns G in evaluation mode. Each batch draws cfg.batch_size of the
    images uniformly, with replacement (N may be smaller than a batch)."""
    rng = backend.default_rng(cfg.seed)
    G, D = models.build(cfg, rng)
    opt_G, opt_D = models.optimizers(cfg, G, D)
    X = backend.to_device(data.to_model_input(images, cfg.dtype))  # (N, 784), host -> device
    Y = backend.to_device(labels, dtype="int64")  # (N,)
    picks = np.random.default_rng(cfg.seed)  # host: which images fill each batch

    def next_real():
        rows = backend.to_device(picks.integers(0, len(images), cfg.batch_size))
        return X[rows], Y[rows]  # (batch, 784), (batch,)

    for _ in range(steps):
        gan.train_step(G, D, opt_G, opt_D, next_real, rng, k=cfg.k, gen_loss=cfg.gen_loss,
                       real_target=1.0 - cfg.label_smoothing, latent_dim=cfg.latent_dim,
                       **settings.game_options(cfg))  # as train_mnist.py calls it
    return G.eval()


def draw_balanced(G, cfg, m, seed):
    """m samples of G, digit i % 10 for the i-th: (uint8 (m, 28, 28), labels (m,))."""
    asked = np.arange(m) % conditional.NUM_CLASSES
    return sample.generate(G, m, cfg.latent_dim, seed=seed, dtype=cfg.dtype, labels=asked), asked


def gan_test(net, pixels, asked):
    """GAN-test: the share of samples a real-trained classifier labels as the digit they were
    asked for, overall and per digit (scores.class_consistency): (float, (10,))."""
    _, logits = classifier.features_and_logits(net, data.to_model_input(pixels))
    overall, per_digit = scores.class_consistency(asked, logits.argmax(axis=1))
    return overall, per_digit


# ---- the measurement ----------------------------------------------------------------------------


def classifier_accuracy(images, labels, seed, steps, test, augment=None):
    """Test accuracy of the classifier trained ``steps`` steps on (images, labels); the
    initial weights and the batch order come from seed, the same for every arm."""
    net = classifier.make_classifier(rng=backend.default_rng(seed))
    classifier.fit(net, images, labels, steps, np.random.default_rng(seed),
                   min(BATCH, len(images)), LR, augment)
    return net, classifier.accuracy(net, *test)


def measure_seed(n, seed, opts, train, test, given, reference, log=print):
    """Every arm for N = n and one seed: a list of rows {arm, generator, n, seed, accuracy}, the
    GAN-test rows {generator, n, seed, shipped, real_n and each _per_digit}, and the generators
    trained here [(name, G, cfg)].

    given: [(name, G, cfg)] generator runs; opts: the settings (steps, synthetic, mix, ...)."""
    idx = stratified_subset(train[1], n, np.random.default_rng(seed))
    images, labels = train[0][idx], train[1][idx]
    rows, tests = [], []

    def row(arm, generator, acc):
        rows.append(dict(arm=arm, generator=generator, n=n, seed=seed, accuracy=acc))
        log(f"  N={n:<6d} seed {seed}  {arm:18s} {generator or '':28s} {acc:.2%}")

    real_net, acc = classifier_accuracy(images, labels, seed, opts["steps"], test)
    row("real", None, acc)
    augment = lambda x, rng: shift_and_rotate(x, rng, opts["max_shift"],  # noqa: E731
                                              opts["max_rotation"])
    row("augmented", None, classifier_accuracy(images, labels, seed, opts["steps"], test,
                                               augment)[1])
    generators = list(given)
    if opts["train_generator"] != "none":
        cfg = gan_config(opts["train_generator"], seed, opts["widths"])
        start = time.perf_counter()
        G = train_generator(images, labels, cfg, opts["gan_steps"])
        log(f"  trained a generator (--conditional {cfg.conditional}) on the {n} images: "
            f"{opts['gan_steps']} steps, {time.perf_counter() - start:.0f} s")
        generators.append((f"trained on N ({cfg.conditional})", G, cfg))
    for name, G, cfg in generators:
        pixels, asked = draw_balanced(G, cfg, opts["synthetic"], seed)
        shipped, per_digit = gan_test(reference, pixels, asked)
        real_n, real_n_per_digit = gan_test(real_net, pixels, asked)
        tests.append(dict(generator=name, n=n, seed=seed, shipped=shipped,
                          shipped_per_digit=per_digit.tolist(), real_n=real_n,
                          real_n_per_digit=real_n_per_digit.tolist()))
        row("synthetic", name, classifier_accuracy(pixels, asked, seed, opts["steps"],
                                                   test)[1])
        for p in opts["mix"]:
            m = max(1, round(n * p / (1 - p)))  # at least one synthetic image
            # noise of another seed than the synthetic arm's (seeds are 0 to 99)
            fake, fake_labels = draw_balanced(G, cfg, m, seed + 100_000)
            row(f"mix {p:g}", name, classifier_accuracy(
                np.concatenate([images, fake]), np.concatenate([labels, fake_labels]), seed,
                opts["steps"], test)[1])
    return rows, tests, generators[len(given):]


def mean_sd(values):
    """(mean, sample standard deviation) of a list of numbers; sd is None for one value."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), (float(values.std(ddof=1)) if len(values) > 1 else None)


def summarise(rows, tests):
    """Rows and GAN-test rows of every seed -> one cell per (arm, generator, N) and per
    (generator, N): mean, sd and the values of the seeds."""
    cells = {}
    for r in rows:
        cells.setdefault((r["arm"], r["generator"], r["n"]), []).append(r["accuracy"])
    table = [dict(arm=arm, generator=gen, n=n, accuracy=accs,
                  **dict(zip(("mean", "sd"), mean_sd(accs))))
             for (arm, gen, n), accs in cells.items()]
    groups = {}
    for t in tests:
        groups.setdefault((t["generator"], t["n"]), []).append(t)
    gan_tests = []
    for (gen, n), ts in groups.items():
        mean, sd = mean_sd([t["shipped"] for t in ts])
        gan_tests.append(dict(
            generator=gen, n=n, shipped_mean=mean, shipped_sd=sd,
            shipped_per_digit=np.mean([t["shipped_per_digit"] for t in ts], axis=0).tolist(),
            real_n_mean=mean_sd([t["real_n"] for t in ts])[0],
            real_n_per_digit=np.mean([t["real_n_per_digit"] for t in ts], axis=0).tolist()))
    return table, gan_tests


