"""Is a GAN good for anomaly detection? Measure it on MNIST, beside what one would try first.

    python -m minigan.anomaly --digits 0 --epochs 5           # digit 0 held out, GAN trained here
    python -m minigan.anomaly --digits 0,1 --json             # one GAN per held-out digit
    python -m minigan.anomaly --protocol one-normal --digits 3  # 3 normal, the nine others not
    python -m minigan.anomaly --digits 0 --run runs/no-zeros  # score with a GAN you trained
    python -m minigan.anomaly --quick                         # the tests' mode: under a minute

Two protocols, both in the literature, so the output always names the one it ran:

- ``held-out`` (the default): the GAN trains on the training images of every digit but D; the
  test images of D are the anomalies, those of the nine others normal. One AUROC per held-out
  digit (GANomaly, Akcay et al. 2018, and EGBAD, Zenati et al. 2018, report AnoGAN so).
- ``one-normal``: the GAN trains on digit D only; the nine other digits are the anomalies.

For each digit of --digits, the command trains an MLP GAN (minigan's models, optimizers and
train_step, on the normal training images; saved as a run in OUT/gan_digitD, so that --run can
score it again), or loads the one of --run, then scores --test-n test images (a seeded random
subset of MNIST's 10,000) four ways, each higher for "more anomalous":

- ``anogan``: AnoGAN's score, (1 - lam) * residual + lam * D-feature distance after --steps
  Adam steps on z (minigan/anomaly_scores.py derives it); ``residual`` and ``feature``, its two
  terms, are reported too;
- ``d_output``: minus D's logit;
- ``pca``: the squared distance to the --pca-k dimensional PCA subspace of the normal
  training images; ``knn``: the mean distance to the --knn-k nearest normal training images.

OUT holds anomaly.json (every number, the settings and the protocol), roc.png (the ROC curves)
and the GANs trained; --json prints the numbers as one JSON object on the last line. Which
digits a --run GAN trained on is recorded in OUT/gan_digitD/trained_on.json for the GANs this
command trains, and checked; for any other run it is the user's responsibility.
"""

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from minigan import (anomaly_scores as scores, backend, checkpoint, data, dataset, files, gan,
                     models, pictures, rundir, settings)
from minigan.rules import (SEED, ConfigError, Parser, check, integer, number, number_from_to,
                           one_of, typed_from)

DIGITS = tuple(range(10))
PROTOCOLS = {
    "held-out": "the GAN trains on the training images of every digit but {d}; the test images "
                "of {d} are the anomalies, the nine other digits normal",
    "one-normal": "the GAN trains on the training images of digit {d} only; the test images of "
                  "the nine other digits are the anomalies",
}
SCORES = ("anogan", "residual", "feature", "d_output", "pca", "knn")
QUICK = dict(epochs=1, steps=10, test_n=300, train_n=2048, latent_dim=16, g_hidden=(64, 128),
             d_hidden=(128, 64))
# What this project could find of the published AnoGAN figures on MNIST and their protocols
# (searched 2026-11-30 in the papers' reference implementations and pages about them).
PUBLISHED = {
    "auroc": "not found: no AnoGAN AUROC on MNIST could be read in a paper's text or a reference "
             "implementation; compare with the papers themselves",
    "zenati2018": "Efficient GAN-Based Anomaly Detection (arXiv 1802.06222), reference code "
                  "houssamzenati/Efficient-GAN-Anomaly-Detection, data/mnist.py: one digit is "
                  "the outlier; all 70,000 MNIST images are pooled, the normal ones split 80% "
                  "train / 20% test, and the test set is that 20% plus every image of the "
                  "outlier digit; README: weight 0.1 on the discriminator loss, as AnoGAN",
    "akcay2018": "GANomaly (arXiv 1805.06725), reference code samet-akcay/ganomaly, README: "
                 "train.py --dataset mnist --anomaly_class <0..9>, one digit the anomaly",
}


RULES = {  # flag -> rule, checked in this order before anything is read or written
    "protocol": one_of(*PROTOCOLS), "epochs": integer(1), "steps": integer(1),
    "lr_z": number(0, lo_open=True), "lam": number_from_to(0, 1), "test_n": integer(20, 10_000),
    "train_n": integer(0), "pca_k": integer(1, 784), "knn_k": integer(1),
    "seed": SEED, "model": one_of("mlp", "dcgan"), "device": one_of("cpu", "gpu"),
}
DEFAULTS = dict(protocol="held-out", digits="0", epochs=5, steps=100, lr_z=0.05, lam=0.1,
                test_n=1000, train_n=0, pca_k=20, knn_k=5, seed=0, model="mlp", device="cpu")


def parse_digits(text):
    """"0,3" -> (0, 3); "all" -> 0..9; anything else raises ConfigError."""
    if text == "all":
        return DIGITS
    try:
        digits = tuple(int(v) for v in text.split(","))
    except ValueError:
        digits = None
    if not digits or any(d not in DIGITS for d in digits) or len(set(digits)) < len(digits):
        raise ConfigError(f"--digits {settings.show(text)}: not allowed; use digits from 0 to "
                          "9 separated by commas, each once, like 0,1, or all (default: 0).")
    return digits


# given_as(int, "epochs"): an argparse type whose message for "--epochs abc" is the rule's
given_as = typed_from(RULES, DEFAULTS)


def parse_args(argv):
    p = Parser(prog="python -m minigan.anomaly", description="Anomaly detection on MNIST with a "
               "GAN (AnoGAN, D's output) beside PCA and nearest neighbours.")
    add = p.add_argument
    add("--protocol", help="held-out (default): the digit is the anomaly; one-normal: the digit "
        "is the only normal class")
    add("--digits", help="the digits D to run, comma-separated, or all (default: 0)")
    add("--epochs", type=given_as(int, "epochs"), help="epochs of GAN training (default: 5)")
    add("--steps", type=given_as(int, "steps"), help="Adam steps of the latent search "
        "(default: 100)")
    add("--lr-z", type=given_as(float, "lr_z"), help="Adam's learning rate on z (default: 0.05)")
    add("--lam", type=given_as(float, "lam"), help="lambda: the feature term's weight in "
        "AnoGAN's score, 0 to 1 (default: 0.1, Schlegl et al.'s)")
    add("--test-n", type=given_as(int, "test_n"), help="test images scored, 20 to 10000 "
        "(default: 1000)")
    add("--train-n", type=given_as(int, "train_n"), help="normal training images used, 0: all "
        "(default)")
    add("--pca-k", type=given_as(int, "pca_k"), help="PCA components of the baseline "
        "(default: 20)")
    add("--knn-k", type=given_as(int, "knn_k"), help="neighbours of the baseline (default: 5)")
    add("--seed", type=given_as(int, "seed"), help="seed of training, test subset and z "
        "(default: 0)")
    add("--model", help="mlp (default) or dcgan, for a GAN trained here")
    add("--run", help="score with this train_mnist.py run's G and D instead of training one "
        "(one digit only)")
    add("--out", default=None, help="a new or empty folder for the results (default: "
        "runs/anomaly-<time>)")
    add("--device", help="cpu (default) or gpu")
    add("--quick", action="store_true", help="a tiny configuration that runs in under a "
        "minute: " + ", ".join(f"--{k.replace('_', '-')} {settings.show(v)}"
                               for k, v in QUICK.items() if k in DEFAULTS)
        + "; an MLP GAN with latent size 16, G's hidden layers 64,128, D's 128,64")
    add("--json", action="store_true", help="print the numbers as one JSON object on the last "
        "line")
    args = p.parse_args(argv)
    try:
        return check_args(args)
    except (ConfigError, rundir.RunError) as e:
        p.error(str(e))


def check_args(args):
    """The settings as a dict, every flag checked; ConfigError names the first bad one."""
    given = {k: v for k, v in vars(args).items() if v is not None and k in DEFAULTS}
    quick = {k: v for k, v in QUICK.items() if k in DEFAULTS} if args.quick else {}
    cfg = {**DEFAULTS, **quick, **given}
    cfg["digits"] = parse_digits(cfg["digits"])
    for name in ("run", "out"):  # "" is neither a run nor a folder, not "the default"
        if getattr(args, name) == "":
            instead = "a GAN trained here" if name == "run" else "runs/anomaly-<time>"
            raise ConfigError(f'--{name} "": an empty path; pass a folder, or leave out '
                              f"--{name} for {instead}")
    for name, rule in RULES.items():
        check(name, cfg[name], rule, DEFAULTS[name])
    if args.run is not None:
        for name in ("epochs", "model"):
            if name in given:
                raise ConfigError(f"--{name} sets the GAN trained here; --run {args.run} "
                                  f"brings its own: drop one of them")
        if len(cfg["digits"]) != 1:
            raise ConfigError(f"--run {args.run} is one GAN, for one digit; pass one --digits")
    cfg.update(run=args.run, quick=args.quick, json=args.json,
               out=args.out or time.strftime("runs/anomaly-%Y%m%d-%H%M%S"))
    check_out(cfg["out"])
    return cfg


def check_out(out):
    """A new or empty results folder (rundir.refuse_taken): never a run's, nor one holding
    anything else."""
    try:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"--out {out} is a file; name a new folder")
        rundir.refuse_taken(path)
        if not settings.path_ok(out, "out"):
            raise ConfigError(f"--out {out}: a file stands where a folder of the path should be")
    except (OSError, ValueError) as e:  # a name too long, a NUL byte
        raise ConfigError(f"--out {out!r}: not a usable folder name ({e})") from None


# ---- the data of one protocol -----------------------------------------------------------------


def split_digits(protocol, d):
    """(normal digits, anomalous digits) of the protocol for digit d."""
    others = [c for c in DIGITS if c != d]
    return (others, [d]) if protocol == "held-out" else ([d], others)


def test_subset(labels, n, seed):
    """n indices of the test set, a seeded random subset in increasing order."""
    return np.sort(np.random.default_rng(seed).permutation(len(labels))[:n])


def check_sizes(cfg, train_labels, test_labels):
    """ConfigError unless every digit has enough normal training images (a GAN's batch of 64,
    --knn-k, more than --pca-k) and test images of both kinds, before anything is written."""
    for d in cfg["digits"]:
        normal, anomalous = split_digits(cfg["protocol"], d)
        n_all = int(np.isin(train_labels, normal).sum())
        n_train = min(n_all, cfg["train_n"] or n_all)
        need = 1 if cfg["run"] else settings.Config.batch_size
        if n_train < need:
            raise ConfigError(f"--train-n {cfg['train_n']}: digit {d} keeps {n_train} normal "
                              f"training images, fewer than the {need} of a training batch; "
                              f"raise --train-n to {need} or more")
        if n_train < cfg["knn_k"]:  # the baseline's neighbours come from these images
            fix = f"lower --knn-k to {n_train} or less"
            if cfg["train_n"] and n_all >= cfg["knn_k"]:
                fix += f", or raise --train-n to {cfg['knn_k']} or more"
            raise ConfigError(f"--knn-k {cfg['knn_k']}: digit {d} keeps {n_train} normal "
                              f"training images (--train-n {cfg['train_n'] or 'all'}), fewer "
                              f"than the {cfg['knn_k']} neighbours asked; {fix}")
        if n_train <= cfg["pca_k"]:  # the rest would be arbitrary directions of variance 0
            fixes = [f"lower --pca-k to {n_train - 1} or less"] if n_train > 1 else []
            if cfg["train_n"] and n_all > cfg["pca_k"]:
                fixes.append(f"raise --train-n to {cfg['pca_k'] + 1} or more")
            raise ConfigError(f"--pca-k {cfg['pca_k']}: digit {d} keeps {n_train} normal "
                              f"training images (--train-n {cfg['train_n'] or 'all'}), which "
                              f"span at most {n_train - 1} directions about their mean, fewer "
                              f"than the {cfg['pca_k']} asked; " + ", or ".join(fixes))
        n_anomalies = int(np.isin(test_labels, anomalous).sum())
        if n_anomalies in (0, len(test_labels)):
            missing = "anomaly" if n_anomalies == 0 else "normal image"
            raise ConfigError(f"--test-n {cfg['test_n']}: the test images drawn with --seed "
                              f"{cfg['seed']} hold no {missing} for digit {d}; raise --test-n "
                              "or change --seed")


# ---- the GAN: trained here, or a run's ------------------------------------------------------


def gan_config(cfg, out):
    """The settings.Config of a GAN trained here (the default recipe; --quick: tiny networks)."""
    tiny = {k: QUICK[k] for k in ("latent_dim", "g_hidden", "d_hidden")} if cfg["quick"] else {}
    return settings.Config(epochs=cfg["epochs"], seed=cfg["seed"], model=cfg["model"],
                           device=cfg["device"], out=str(out), **tiny)


def train_gan(gcfg, images):
    """Train G and D on uint8 images (N, 28, 28), as train_mnist.py does (a fresh shuffle every
    epoch, the last incomplete batch dropped); returns the state save_run writes."""
    rng = backend.default_rng(gcfg.seed)
    G, D = models.build(gcfg, rng)
    opt_G, opt_D = models.optimizers(gcfg, G, D)
    X = backend.to_device(data.to_model_input(images, gcfg.dtype))  # host -> device
    n, bs = X.shape[0], gcfg.batch_size
    steps = n // (bs * gcfg.k)
    if steps == 0:
        raise rundir.RunError(f"{n} normal training images cannot fill one batch of "
                              f"{bs}: raise --train-n")
    for epoch in range(gcfg.epochs):
        next_real = dataset.batch_reader(X, dataset.epoch_order(rng, n), bs)
        for _ in range(steps):
            metrics = gan.train_step(G, D, opt_G, opt_D, next_real, rng, k=gcfg.k,
                                     latent_dim=gcfg.latent_dim)
        row = metrics.read()  # device -> host, once an epoch
        print(f"  epoch {epoch + 1}/{gcfg.epochs}: D loss {row['d_loss']:.3f}, G loss "
              f"{row['g_loss']:.3f}, D(x) {row['d_real']:.2f}, D(G(z)) {row['d_fake']:.2f}")
    progress = checkpoint.Progress(epoch=gcfg.epochs, global_step=gcfg.epochs * steps)
    fixed_z = gan.sample_noise(backend.default_rng(gcfg.seed + 1), 64, gcfg.latent_dim,
                               gcfg.dtype)
    return dict(G=G, D=D, opt_G=opt_G, opt_D=opt_D, ema=None, rng=rng, fixed_z=fixed_z,
                progress=progress, config=gcfg)


def save_gan(folder, state, normal):
    """The GAN as a run folder (config.json, checkpoint.npz) that --run loads, and the digits it
    trained on (trained_on.json), which --run checks."""
    folder.mkdir()
    files.write_text(folder / "config.json", json.dumps(asdict(state["config"]), indent=2))
    checkpoint.save_run(folder / "checkpoint.npz", state)
    files.write_text(folder / "trained_on.json", json.dumps({"digits": normal}) + "\n")


def load_gan(run_dir, normal):
    """A run's G and D (G as minigan.sample loads it; D from the same checkpoint), and a line
    on which digits it trained on. Raises CheckpointError or ConfigError."""
    from minigan.sample import load_generator

    run_dir = Path(run_dir)
    if not (run_dir / "checkpoint.npz").is_file():
        raise ConfigError(f"--run {run_dir}: not a run (no checkpoint.npz there); pass a "
                          "train_mnist.py run folder or an OUT/gan_digitD of this command")
    settings.used_config(run_dir)  # every setting of D too, checked as --resume checks them
    G, gcfg = load_generator(run_dir)
    # each score takes one image alone (spectral norm may stay: in eval mode its u, v are fixed)
    unfit = [(name, why) for name, on, why in (
        ("conditional", gcfg.conditional, "its G and D take a digit's label too"),
        ("pack", gcfg.pack > 1, "its D gives one logit per --pack images, none per image"),
        ("minibatch-std", gcfg.minibatch_std, "its D appends the batch's standard deviation to "
         "its last hidden layer: an image's score would depend on those scored beside it")) if on]
    if unfit:
        raise ConfigError(f"--run {run_dir} was trained with --{unfit[0][0]}: {unfit[0][1]}; "
                          "use a run without it")
    _, D = models.build(gcfg, backend.default_rng(0))  # D as trained, spectral norm too; its
    # weights (and u, v) are overwritten below, and G is load_generator's
    arrays, _ = checkpoint.load(run_dir / "checkpoint.npz")
    checkpoint.restore_network("D", D, arrays, run_dir / "checkpoint.npz")
    recorded = run_dir / "trained_on.json"
    if not recorded.is_file():
        return G, D, (f"{run_dir}: which digits it trained on is not recorded; that it never "
                      f"saw an anomalous digit is your responsibility")
    try:
        trained = json.loads(recorded.read_text())["digits"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{recorded} is unreadable ({type(e).__name__}: {e}); restore it, or "
                          "delete it to take responsibility for the digits yourself") from None
    if sorted(trained) != sorted(normal):
        raise ConfigError(f"--run {run_dir} trained on digits {trained}, but this protocol's "
                          f"normal digits are {normal}: choose the matching --digits/--protocol")
    return G, D, f"{run_dir}: trained on digits {trained} (trained_on.json)"


# ---- one digit: train or load, score, compare ----------------------------------------------------


def run_digit(cfg, d, train_images, train_labels, test_x, test_labels, out, loaded=None):
    """Every score and its AUROC for digit d of the protocol; returns the digit's results.
    loaded: --run's (G, D, line, seconds to load) from main; None: train a GAN here."""
    normal, anomalous = split_digits(cfg["protocol"], d)
    is_anomaly = np.isin(test_labels, anomalous)
    train = train_images[np.isin(train_labels, normal)]
    if cfg["train_n"]:
        train = train[:cfg["train_n"]]
    print(f"digit {d}: " + PROTOCOLS[cfg["protocol"]].format(d=d))
    if loaded:
        G, D, gan_line, train_seconds = loaded
    else:
        start = time.perf_counter()
        gcfg = gan_config(cfg, out / f"gan_digit{d}")
        print(f"  training the {gcfg.model.upper()} GAN on {len(train)} normal images, "
              f"{gcfg.epochs} epoch(s) ...")
        state = train_gan(gcfg, train)
        save_gan(out / f"gan_digit{d}", state, normal)
        G, D = state["G"], state["D"]
        gan_line = f"trained here on digits {normal}: {out / f'gan_digit{d}'}"
        train_seconds = time.perf_counter() - start
    G.eval()  # BatchNorm's running statistics, no Dropout, no noise, and spectral norm's u, v
    D.eval()  # fixed (a training forward's power step would move D's features mid-search)
    x = backend.to_device(test_x, dtype=G.layers[0].params["W"].dtype)  # host -> device
    seconds, raw = {}, {}
    t = time.perf_counter()
    search = scores.latent_search(G, D, x, cfg["steps"], cfg["lr_z"], cfg["lam"],
                                  backend.default_rng(cfg["seed"] + 2))
    seconds["anogan"] = time.perf_counter() - t
    raw.update(anogan=search["loss"], residual=search["residual"], feature=search["feature"])
    t = time.perf_counter()
    raw["d_output"] = scores.discriminator_score(D, x)
    seconds["d_output"] = time.perf_counter() - t
    train_x = data.to_model_input(train)  # host (M, 784), float32
    t = time.perf_counter()
    mean, V = scores.pca_fit(train_x, cfg["pca_k"])
    fit = time.perf_counter() - t
    t = time.perf_counter()
    raw["pca"] = scores.pca_error(test_x, mean, V)
    seconds["pca"] = time.perf_counter() - t
    t = time.perf_counter()
    raw["knn"] = scores.knn_distance(test_x, train_x, cfg["knn_k"])
    seconds["knn"] = time.perf_counter() - t
    n = len(test_x)
    result = {
        "normal_digits": normal, "anomalous_digits": anomalous, "gan": gan_line,
        "n_train": len(train), "n_test": n, "n_anomalies": int(is_anomaly.sum()),
        "auroc": {name: scores.auroc(raw[name], is_anomaly) for name in SCORES},
        "ms_per_image": {name: 1000 * seconds[name] / n for name in seconds},
        "pca_fit_seconds": fit, "gan_seconds": train_seconds,
        "search_objective": search["history"][[0, -1]].tolist(),
    }
    curves = {name: scores.roc_curve(raw[name], is_anomaly) for name in SCORES}
    return result, curves


def save_roc(path, curves, results, protocol):
    """One panel per digit: the ROC curve of each score, AUROC in the legend."""
    plt = pictures.pyplot()
    digits = list(curves)
    fig, axes = plt.subplots(1, len(digits), figsize=(4.2 * len(digits), 4.2), squeeze=False)
    for ax, d in zip(axes[0], digits):
        for name, (fpr, tpr) in curves[d].items():
            ax.plot(fpr, tpr, lw=1.2, label=f"{name} {results[d]['auroc'][name]:.3f}")
        ax.plot([0, 1], [0, 1], color="gray", lw=0.8, ls="--")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(f"{protocol}, digit {d}")
        ax.legend(title="AUROC", fontsize=8, loc="lower right")
    fig.tight_layout()
    pictures.save_figure(fig, path, dpi=90)


def main(argv=None):
    cfg = parse_args(argv)
    prog = "python -m minigan.anomaly"
    out = Path(cfg["out"])
    try:
        backend.use(cfg["device"])
        loaded, start = None, time.perf_counter()
        if cfg["run"]:  # loaded once, here: a bad run folder is refused before anything is written
            normal = split_digits(cfg["protocol"], cfg["digits"][0])[0]
            loaded = (*load_gan(cfg["run"], normal), time.perf_counter() - start)
        train_images, train_labels = data.load_mnist("train")
        test_images, test_labels = data.load_mnist("test")
        idx = test_subset(test_labels, cfg["test_n"], cfg["seed"])
        test_x, test_labels = data.to_model_input(test_images[idx]), test_labels[idx]
        check_sizes(cfg, train_labels, test_labels)
        rundir.create(out)
        print(f"minigan.anomaly: protocol {cfg['protocol']}, digits "
              f"{','.join(map(str, cfg['digits']))}; {len(idx)} test images; AnoGAN with "
              f"{cfg['steps']} steps of Adam on z (lr {cfg['lr_z']}), lambda {cfg['lam']}")
        results, curves = {}, {}
        for d in cfg["digits"]:
            results[d], curves[d] = run_digit(cfg, d, train_images, train_labels, test_x,
                                              test_labels, out, loaded)
            line = ", ".join(f"{k} {v:.3f}" for k, v in results[d]["auroc"].items())
            print(f"  AUROC: {line}")
            print("  ms per scored image: " + ", ".join(
                f"{k} {v:.2f}" for k, v in results[d]["ms_per_image"].items()))
        summary = {"protocol": cfg["protocol"],
                   "protocol_words": PROTOCOLS[cfg["protocol"]].format(d="D"),
                   "results": {str(d): r for d, r in results.items()},
                   "published": PUBLISHED,
                   "settings": {k: v for k, v in cfg.items() if k != "json"}}
        files.write_text(out / "anomaly.json", json.dumps(summary, indent=1) + "\n")
        save_roc(out / "roc.png", curves, results, cfg["protocol"])
    except (ConfigError, rundir.RunError, data.DataError, backend.DeviceError,
            checkpoint.CheckpointError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, no permission: what was written so far stays
        print(f"{prog}: error: cannot write in {out} ({e.strerror or e}). "
              + files.write_fix(e, out / "anomaly.json", "choose another --out"), file=sys.stderr)
        return 2
    print("AUROC 0.5 is chance; below 0.5, a score ranks the anomalies as more normal.")
    print(f"published AnoGAN AUROC on MNIST: {PUBLISHED['auroc']}")
    for key in ("zenati2018", "akcay2018"):
        print(f"  protocol of {PUBLISHED[key]}")
    print(f"wrote {out}/anomaly.json and {out}/roc.png")
    if cfg["json"]:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
