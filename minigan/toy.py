"""A 2-D lab where mode collapse can be watched: minigan's MLP GAN on mixtures of Gaussians.

    python -m minigan.toy                         # 8 Gaussians on a ring, into runs/toy-ring-0
    python -m minigan.toy --dataset grid          # 25 Gaussians on a 5 x 5 grid
    python -m minigan.toy --gen-loss minimax --k 5 --seed 3 --json

The datasets are those of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018), with the
means and standard deviations of PacGAN's code (github.com/fjxmlzn/PacGAN,
synthetic_data_experiments/2DRing_GAN&PacGAN/config.py and 2DGrid_GAN&PacGAN/config.py):

- ring: 8 modes at (cos 2 pi i / 8, sin 2 pi i / 8), i = 0..7, standard deviation 0.01;
- grid: 25 modes at (i, j) for i, j in {-4, -2, 0, 2, 4}, standard deviation 0.05.

The scores are theirs too (PacGAN's MetricLogger in pacgan/extensions.py, after VEEGAN): a sample
is *high quality* when it lies within 3 standard deviations of its nearest mode; a mode is
*covered* when at least one high-quality sample is nearest to it. Both are measured on 2,500
samples, as PacGAN does. lessons/10_mode_collapse.md runs this lab over several seeds.

The networks are minigan's own, built by models.build from the lab's settings (the ToyConfig of
minigan/toy_settings.py): the MLP of make_generator / make_discriminator, with 2-D input and
output.
G ends in tanh, so the networks work in coordinates divided by SCALE, which puts every mode
inside (-1, 1); samples are multiplied back before they are scored or drawn. The Python API is
:func:`train_toy` (returns the networks and a history) and :func:`mode_scores`.

Ctrl-C, SIGTERM or SIGHUP ends a run after the step under way, prints its log so far and exits
with 128 + the signal's number: a lab run has no checkpoint to resume from, so it writes no
result.json (a finished run's), and keeps only the frames drawn so far and their GIF.
"""

import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    # The lab's matrices are tiny (256 x 128): one BLAS thread beats several, and several on a
    # busy machine wait on each other (measured: 300 steps took 50 s instead of 1 s). This has to
    # happen before NumPy loads OpenBLAS; scripts that import the lab can set it themselves.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from minigan import (  # noqa: E402
    backend, files, models, pictures, rundir, settings, toy_settings)
from minigan.gan import sample_noise, train_step  # noqa: E402
from minigan.layers import sigmoid  # noqa: E402
from minigan.tricks import EMA, instance_noise_std, set_instance_noise  # noqa: E402


def ring_means(n=8, radius=1.0):
    """(n, 2) points at angles 2 pi i / n, i = 0..n-1 (not np.linspace(0, 2 pi, n), which puts
    the last point on top of the first)."""
    angles = 2 * np.pi * np.arange(n) / n
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid_means(side=5, spacing=2.0):
    """(side**2, 2) points on a side x side grid centred on 0: {-4, -2, 0, 2, 4}^2 by default."""
    ticks = spacing * (np.arange(side) - (side - 1) / 2)
    return np.array([(x, y) for x in ticks for y in ticks])


DATASETS = {  # name -> (means (M, 2), standard deviation of every mode)
    "ring": (ring_means(), 0.01),
    "grid": (grid_means(), 0.05),
}
SCALE = {"ring": 1.5, "grid": 6.0}  # the networks see x / SCALE: each mode well inside tanh's range
QUALITY_STDS = 3.0  # "high quality": within 3 standard deviations of the nearest mode
SCORE_SAMPLES = 2500  # samples scored, as in PacGAN


def sample_mixture(rng, dataset, n):
    """n points (n, 2) from the equal-weight mixture: a uniform mode, plus Gaussian noise."""
    means, std = DATASETS[dataset]
    modes = rng.integers(0, len(means), n)
    return means[modes] + std * rng.standard_normal((n, 2))


def mode_scores(samples, dataset):
    """Score samples (N, 2), in data coordinates, against a dataset's modes.

    Returns {"modes_covered", "modes_total", "high_quality", "counts"}: the number of modes with
    at least one high-quality sample nearest to them, the number of modes, the share of samples
    within 3 standard deviations of their nearest mode, and the high-quality count of each mode.
    """
    means, std = DATASETS[dataset]
    samples = np.asarray(samples, dtype=np.float64)
    d = np.sqrt(((samples[:, None, :] - means[None, :, :]) ** 2).sum(axis=2)) / std  # (N, M)
    nearest = d.argmin(axis=1)
    good = d[np.arange(len(samples)), nearest] < QUALITY_STDS
    counts = np.bincount(nearest[good], minlength=len(means))
    return {"modes_covered": int((counts > 0).sum()), "modes_total": len(means),
            "high_quality": float(good.mean()), "counts": counts.tolist()}


def generate(G, n, latent_dim, rng, dataset):
    """n samples of G in data coordinates, on the host (N, 2)."""
    z = sample_noise(rng, n, latent_dim, G.params["0.W"].dtype)
    return backend.to_host(G.forward(z)) * SCALE[dataset]  # device -> host


def train_toy(dataset="ring", steps=4000, batch_size=256, lr_g=2e-4, lr_d=2e-4, beta1=0.5,
              k=1, gen_loss="nonsaturating", latent_dim=2, hidden=(128, 128), seed=0,
              frame_every=0, on_frame=None, log_every=100, ema=0.0, minibatch_std=False, pack=1,
              instance_noise=0.0, d_dropout=0.0, label_smoothing=0.0, loss="bce", clip=0.0,
              spectral_norm=False, r1=0.0, gp=0.0, optimizer="adam", stop=None):
    """Train minigan's MLP GAN on a 2-D mixture; returns (G, D, history).

    loss, clip, spectral_norm, r1, gp and optimizer are train_mnist.py's flags of the same names
    (the games beyond Jensen-Shannon, minigan/gan.py's critic_step), with the same meaning.

    ema, minibatch_std, pack, instance_noise, d_dropout and label_smoothing are the tricks of
    train_mnist.py's --recipe improved (minigan/tricks.py), with the same meaning; with ema,
    the averaged G is scored, drawn and returned (benchmarks/ablate_recipe.py).

    history: one dict per log step (step, d_loss, g_loss, d_real, d_fake, modes_covered,
    high_quality), scored on SCORE_SAMPLES samples. on_frame(step, G, D), if given, is called at
    step 0 and every frame_every steps (frame_every > 0). stop (a rundir.StopRequest): when it
    is requested, the step under way is finished and logged, and training ends there.
    """
    cfg = toy_settings.ToyConfig(dataset, steps, batch_size, lr_g, lr_d, beta1, k, gen_loss,
                             latent_dim, tuple(hidden), seed, ema=ema,
                             minibatch_std=int(minibatch_std), pack=pack,
                             instance_noise=instance_noise, d_dropout=d_dropout,
                             label_smoothing=label_smoothing, loss=loss, clip=clip,
                             spectral_norm=int(spectral_norm), r1=r1, gp=gp, optimizer=optimizer)
    rng = backend.default_rng(seed)
    G, D = models.build(cfg, rng, data_dim=2)  # G: (N, latent_dim) -> (N, 2), D: (N, 2) -> (N, 1)
    opt_G, opt_D = models.optimizers(cfg, G, D)
    data_rng = np.random.default_rng(seed + 1)  # host generator of the real points
    score_rng = backend.default_rng(seed + 2)  # its own noise, so scoring changes nothing
    average = EMA(G, ema) if ema else None
    sampler = average.net if average else G  # the network that draws the scored samples

    def next_real():
        x = sample_mixture(data_rng, dataset, batch_size) / SCALE[dataset]
        return backend.to_device(x, dtype="float32")  # host -> device, (batch_size, 2)

    history = []
    if on_frame and frame_every:
        on_frame(0, sampler, D)
    for step in range(1, steps + 1):
        set_instance_noise(D, instance_noise_std(instance_noise, step - 1, steps))
        m = train_step(G, D, opt_G, opt_D, next_real, rng, k=k, gen_loss=gen_loss,
                       real_target=1.0 - label_smoothing, latent_dim=latent_dim,
                       **settings.game_options(cfg))
        if average:
            average.update()
        stopping = stop is not None and stop.requested
        if step % log_every == 0 or step == steps or stopping:
            row = {"step": step, "d_loss": float(m.d_loss), "g_loss": float(m.g_loss),
                   "d_real": float(m.d_real), "d_fake": float(m.d_fake)}  # host syncs
            scores = mode_scores(generate(sampler, SCORE_SAMPLES, latent_dim, score_rng, dataset),
                                 dataset)
            row.update(modes_covered=scores["modes_covered"], high_quality=scores["high_quality"])
            history.append(row)
            if not all(math.isfinite(row[n]) for n in ("d_loss", "g_loss")):
                raise FloatingPointError(f"the loss became {row['d_loss']} (D) / "
                                         f"{row['g_loss']} (G) by step {step}")
        if on_frame and frame_every and step % frame_every == 0:
            on_frame(step, sampler, D)
        if stopping:
            break
    return sampler, D, history


# ---- pictures ------------------------------------------------------------------------------


def draw_frame(path, G, D, dataset, step, latent_dim, seed=0, n=2000):
    """One PNG: G's samples on the real density (left) and D's decision surface D(x) (right)."""
    plt = pictures.pyplot()
    means, std = DATASETS[dataset]
    lim = 1.4 * SCALE[dataset] / 1.5 + 0.5 if dataset == "ring" else 5.5
    ticks = np.linspace(-lim, lim, 200)
    xx, yy = np.meshgrid(ticks, ticks)
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1)  # (40000, 2), data coordinates
    samples = generate(G, n, latent_dim, backend.default_rng(seed + 3), dataset)
    logits = D.forward(backend.to_device(grid / SCALE[dataset], dtype="float32"))
    d_x = backend.to_host(sigmoid(logits)).reshape(xx.shape)  # device -> host
    # the real density, in log scale so that every mode shows
    sq = ((grid[:, None, :] - means[None]) ** 2).sum(axis=2)
    density = np.exp(-sq / (2 * std ** 2)).sum(axis=1).reshape(xx.shape)

    fig, (ax_s, ax_d) = plt.subplots(1, 2, figsize=(10, 4.6))
    ax_s.imshow(np.log(density + 1e-12), extent=(-lim, lim, -lim, lim), origin="lower",
                cmap="Greens", vmin=-20, vmax=0)
    ax_s.scatter(samples[:, 0], samples[:, 1], s=2, c="k", alpha=0.4)
    scores = mode_scores(samples, dataset)
    ax_s.set_title(f"step {step}: G's samples on the real density\n"
                   f"{scores['modes_covered']}/{scores['modes_total']} modes covered, "
                   f"{scores['high_quality']:.0%} high quality", fontsize=10)
    im = ax_d.imshow(d_x, extent=(-lim, lim, -lim, lim), origin="lower", cmap="RdBu",
                     vmin=0, vmax=1)
    ax_d.scatter(means[:, 0], means[:, 1], marker="x", c="k", s=20)
    ax_d.set_title("D(x): blue = judged real, red = judged fake", fontsize=10)
    fig.colorbar(im, ax=ax_d, fraction=0.046)
    for ax in (ax_s, ax_d):
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
    fig.tight_layout()
    pictures.save_figure(fig, path, dpi=80)


def save_color_gif(path, frame_paths, ms_per_frame=500):
    """Animate colour PNG frames into a looping GIF; the last frame lingers."""
    from PIL import Image

    frames = [Image.open(p).convert("RGB").quantize(colors=128) for p in frame_paths]
    durations = [ms_per_frame] * (len(frames) - 1) + [ms_per_frame * 4]
    with files.atomic_write(path) as f:
        frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:],
                       duration=durations, loop=0)


# ---- the command ---------------------------------------------------------------------------


def parse_args(argv):
    """The lab's ToyConfig and --json from the flags; a bad value exits with status 2."""
    p = settings.parser(toy_settings.ToyConfig, toy_settings.TOY_RULES, "python -m minigan.toy",
                        "Train minigan's MLP GAN on a 2-D mixture of Gaussians and watch for "
                        "mode collapse (lessons/10_mode_collapse.md).")
    p.add_argument("--json", action="store_true",
                   help="print modes_covered, modes_total, high_quality as one JSON object on "
                        "the last line")
    given = vars(p.parse_args(argv))
    as_json = given.pop("json")
    try:
        cfg = toy_settings.toy_config(given)
    except settings.ConfigError as e:
        p.error(str(e))
    return cfg, as_json


def first_missing(path):
    """The outermost folder of path that does not exist yet (None if path exists): removing it
    undoes path.mkdir(parents=True)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    return missing[-1] if missing else None


def print_history(history, modes_total):
    """About ten rows of the log, the last one always."""
    print(f"{'step':>6s} {'d_loss':>7s} {'g_loss':>7s} {'D(x)':>5s} {'D(G(z))':>7s} "
          f"{'modes':>6s} {'high quality':>12s}")
    for r in history[:: max(1, len(history) // 10)] + ([] if len(history) % 10 == 1 else
                                                       history[-1:]):
        print(f"{r['step']:6d} {r['d_loss']:7.3f} {r['g_loss']:7.3f} {r['d_real']:5.2f} "
              f"{r['d_fake']:7.2f} {r['modes_covered']:3d}/{modes_total:<2d} "
              f"{r['high_quality']:12.1%}")


def main(argv=None):
    cfg, as_json = parse_args(argv)
    out = Path(cfg.out)
    backend.use("cpu")
    start = time.perf_counter()
    frame_paths = []
    made = first_missing(out)  # what a failure to fit in memory removes again
    try:
        rundir.refuse_taken(out)  # a new or empty folder: nothing there is replaced
        rundir.create(out / "frames" if cfg.frames else out)
    except rundir.RunError as e:
        print(f"python -m minigan.toy: error: {e}", file=sys.stderr)
        return 2

    def on_frame(step, G, D):
        path = out / "frames" / f"step_{step:06d}.png"
        draw_frame(path, G, D, cfg.dataset, step, cfg.latent_dim, cfg.seed)
        frame_paths.append(path)

    try:
        with rundir.StopRequest() as stop:  # Ctrl-C, SIGTERM, SIGHUP: end after this step
            G, D, history = train_toy(
                cfg.dataset, cfg.steps, cfg.batch_size, cfg.lr_g, cfg.lr_d, cfg.beta1, cfg.k,
                cfg.gen_loss, cfg.latent_dim, cfg.hidden, cfg.seed,
                frame_every=cfg.steps // cfg.frames if cfg.frames else 0, on_frame=on_frame,
                ema=cfg.ema, minibatch_std=bool(cfg.minibatch_std), pack=cfg.pack,
                instance_noise=cfg.instance_noise, d_dropout=cfg.d_dropout,
                label_smoothing=cfg.label_smoothing, loss=cfg.loss, clip=cfg.clip,
                spectral_norm=bool(cfg.spectral_norm), r1=cfg.r1, gp=cfg.gp,
                optimizer=cfg.optimizer, stop=stop)
    except (FloatingPointError, MemoryError) as e:
        # leave nothing behind: the frames of a diverged run, or of a bad size, would only
        # block the rerun with a lower learning rate or smaller sizes
        shutil.rmtree(made or out / "frames", ignore_errors=True)  # out was empty, or new
        if isinstance(e, FloatingPointError):
            why = f"{e}: training diverged; lower --lr-g / --lr-d and run again (nothing was kept)"
        else:
            why = (f"{toy_settings.memory_subject(cfg)} do not fit in memory: "
                   f"{toy_settings.MEMORY_ADVICE}")
        print(f"python -m minigan.toy: error: {why}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    final = history[-1]
    modes_total = len(DATASETS[cfg.dataset][0])
    if stop.requested:  # no result.json: a lab run cannot resume, and its history is partial
        if frame_paths:
            save_color_gif(out / "training.gif", frame_paths)
        print_history(history, modes_total)
        kept = f"its pictures so far are in {out}/, and " if frame_paths else ""
        print(f"python -m minigan.toy: stopped by {stop.signal_name} after step {final['step']} "
              f"of {cfg.steps}; {kept}a lab run cannot be resumed: run it again"
              + (" with another --out" if frame_paths else ""), file=sys.stderr)
        return rundir.STOPPED_STATUS[stop.signal_name]  # 128 + its number: 130 for Ctrl-C
    result = {"modes_covered": final["modes_covered"],
              "modes_total": modes_total,
              "high_quality": final["high_quality"], "dataset": cfg.dataset, "seed": cfg.seed,
              "steps": cfg.steps, "d_real": final["d_real"], "d_fake": final["d_fake"],
              "seconds": round(seconds, 1)}
    if frame_paths:
        save_color_gif(out / "training.gif", frame_paths)
    files.write_text(out / "result.json", json.dumps({**result, "history": history}, indent=1))
    print(f"minigan.toy: {cfg.dataset}, {cfg.steps} steps, seed {cfg.seed} ({seconds:.1f} s)")
    print_history(history, modes_total)
    print(f"{result['modes_covered']} of {result['modes_total']} modes covered, "
          f"{result['high_quality']:.1%} of samples high quality; pictures in {out}/")
    if as_json:
        print(json.dumps({k: result[k] for k in ("modes_covered", "modes_total",
                                                 "high_quality")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
