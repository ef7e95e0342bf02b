"""Train the MLP GAN (or the DCGAN) on MNIST with minigan: the project's main job.

    python train_mnist.py                          # 20 epochs on the CPU, outputs in runs/<time>
    python train_mnist.py --model dcgan --epochs 5 # the convolutional GAN (minigan/conv.py)
    python train_mnist.py --recipe improved        # the better recipe (lessons/13_better_recipe.md)
    python train_mnist.py --device gpu             # the same on CuPy
    python train_mnist.py --epochs 1 --limit 6400  # a quick try on the first 6400 images
    python train_mnist.py --images fashion.npy     # your own uint8 images, shape (N, 28, 28)
    python train_mnist.py --conditional projection # G(z, y) draws the digit y asks for
    python train_mnist.py --resume runs/<time> --epochs 30   # continue a run exactly

A run folder holds config.json, metrics.csv (every logged step), samples/epoch_NNN.png (a grid
from one fixed noise batch after every epoch; a conditional run's: one row per digit 0..9, the
same 10 noise vectors in every row), samples_final.png, samples.gif (at most 40 of the
grids, spread over the run), curves.png and checkpoint.npz (both networks, both optimizers, the
random generator, the counters; with --ema, also the average of G's weights that draws every
sample); with --eval-every N, also eval.csv and quality.png (minigan.evaluate's scores, against
MNIST from --data-dir or the search, also for a run on --images; the classifier and MNIST are
read before the run starts, so a scoring that could not run refuses the run at once).

Ctrl-C or SIGTERM (`timeout`, `kill`, a job scheduler) finishes the step, saves a checkpoint
and exits (during an epoch's end work, the grid, the scores and the curves, it exits after that
epoch's checkpoint) with 128 + the signal's number, 130 for Ctrl-C and 143 for SIGTERM
(minigan/rundir.py, STOPPED_STATUS), so that `&&` or a scheduler sees a run to resume, not a
finished one; a NaN or inf loss stops the run and keeps the last good checkpoint. Each
epoch is a fresh shuffle; the last incomplete batch is dropped. Sample grids come from G in
evaluation mode (BatchNorm with its running statistics, as minigan.sample draws them).

Every setting is checked (minigan/settings.py) before anything is written: bad input ends in one
message and exit status 2, and changes no file. A process training into a run folder holds a
lock on it (minigan/rundir.py), so a second one is refused.
"""

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from minigan import (backend, checkpoint, conditional, data, dataset, evaluate, files, models,
                     pictures, rundir, settings)
from minigan.gan import sample_noise
from minigan.homework import capstone
from minigan.tricks import EMA, instance_noise_std, set_instance_noise


def main(argv=None):
    # ---- settings: the defaults (minigan/settings.py), the flags, or the resumed run's ----------
    given, resume = settings.parse_train_args(argv)
    cfg = settings.resumed_config(given, resume) if resume else settings.new_config(given)
    run_dir = Path(resume or cfg.out)
    code = models.code_for(cfg)  # minigan's layers and steps, or the learner's with --homework
    if not resume:
        rundir.refuse_existing_run(run_dir)
    backend.use(cfg.device)

    # ---- data: (n, 784) in [-1, 1], copied to the device once ------------------------------------
    if cfg.conditional:  # MNIST's digits, (n,), beside the images
        images, labels = dataset.training_images(cfg.images, cfg.data_dir, cfg.limit, True)
        Y = backend.to_device(labels, dtype="int64")  # host -> device
    else:
        images, Y = dataset.training_images(cfg.images, cfg.data_dir, cfg.limit), None
    X = backend.to_device(data.to_model_input(images, cfg.dtype))  # host -> device
    n, bs, k = X.shape[0], cfg.batch_size, cfg.k
    steps_per_epoch = n // (bs * k)  # a step reads k batches (Algorithm 1)
    if steps_per_epoch == 0:
        raise rundir.RunError(f"{n} images cannot fill one step of --k {k} batches of "
                              f"--batch-size {bs}: raise --limit or lower --batch-size or --k")
    if cfg.eval_every:  # scoring reads the classifier and MNIST: found now, not after an epoch
        problem = evaluate.scoring_problem(cfg.data_dir or None)
        if problem:
            raise settings.ConfigError(
                f"--eval-every {cfg.eval_every}: scoring needs the shipped classifier and MNIST's "
                f"training and test images (in --data-dir, or where minigan searches), and "
                f"{problem}\nTo train without scoring, drop --eval-every (python -m "
                "minigan.evaluate scores a run later).")
    if cfg.homework:  # the capstone: 50 steps beside minigan's own, first (on resume too)
        print(f"replaying 50 steps of {cfg.homework} beside minigan's own, in float64 ...")
        report = capstone.replay_config(cfg, X)
        print(report)
        if report.error:
            raise rundir.RunError(f"--homework {cfg.homework}: {report}")

    # ---- G and D, their optimizers, the run's random generator ----------------------------------
    rng = backend.default_rng(cfg.seed)
    try:
        G, D = models.build(cfg, rng, code=code)
        ema = EMA(G, cfg.ema) if cfg.ema else None  # --ema: an average of G's weights
        opt_G, opt_D = models.optimizers(cfg, G, D, code)
    except MemoryError:
        raise rundir.RunError("the networks do not fit in memory: "
                              + models.NETWORKS_ADVICE) from None
    sampler = ema.net if ema else G  # the network that draws every sample
    # One fixed noise batch, from its own generator, so that the epoch grids are comparable;
    # conditional: 10 rows, digit d in row d, the same 10 noise vectors in every row.
    grid_rng = backend.default_rng(cfg.seed + 1)
    fixed_z, fixed_y, nrow = (conditional.digit_rows(grid_rng, cfg.latent_dim, cfg.dtype)
                              if cfg.conditional else
                              (sample_noise(grid_rng, 64, cfg.latent_dim, cfg.dtype), None, 8))
    progress = checkpoint.Progress()  # epoch, step, this epoch's order, seconds trained
    # Everything a checkpoint holds, as one dict (minigan/checkpoint.py, save_run).
    state = dict(G=G, D=D, opt_G=opt_G, opt_D=opt_D, ema=ema, rng=rng, fixed_z=fixed_z,
                 progress=progress, config=cfg)

    with rundir.opened(run_dir, new=not resume):  # the folder and its lock
        if resume:
            state["rng"] = rng = checkpoint.restore_run(run_dir / "checkpoint.npz", state)
            if progress.perm is not None and len(progress.perm) != n:  # stopped mid-epoch
                raise rundir.RunError(
                    f"--resume {run_dir}: the run stopped in the middle of an epoch over "
                    f"{len(progress.perm)} images, and the images found now are {n}. Resume "
                    "with the images it trained on (--images or --data-dir), or start a new run.")
            if progress.epoch >= cfg.epochs:
                raise rundir.RunError(
                    f"--resume {run_dir}: the run has already trained {progress.epoch} "
                    f"epoch(s), and --epochs {cfg.epochs} asks for no more. To continue it, "
                    f"pass a larger --epochs, like --epochs {progress.epoch + 10}.")
            # rows logged after the checkpoint are trained, and logged, again; both logs are
            # checked before either is rewritten, and before config.json is
            rundir.drop_rows_after_all([(run_dir / "metrics.csv", "step", progress.global_step),
                                        (run_dir / "eval.csv", "epoch", progress.epoch)])
        files.write_text(run_dir / "config.json", json.dumps(asdict(cfg), indent=2) + "\n")
        print(f"minigan: training the {'DCGAN' if cfg.model == 'dcgan' else 'MLP GAN'} on "
              f"{cfg.images or 'MNIST'}")
        for name, value in asdict(cfg).items():
            print(f"  {name:16s} {value}")
        if cfg.images and cfg.eval_every:
            print(f"--eval-every scores the samples against MNIST, not {cfg.images}")
        if progress.global_step:
            print(f"resuming {run_dir} at epoch {progress.epoch + 1}, step {progress.global_step}")
        if progress.noise_steps is None:
            progress.noise_steps = cfg.epochs * steps_per_epoch  # instance noise reaches 0 here
        first_step, session_start = progress.global_step, time.perf_counter()
        started = session_start

        def save_checkpoint():
            nonlocal started
            progress.elapsed += time.perf_counter() - started
            started = time.perf_counter()
            checkpoint.save_run(run_dir / "checkpoint.npz", state)

        def stopped(by):  # after the checkpoint that a stop request asked for
            print(f"\nstopped by {by}: checkpoint saved at step {progress.global_step} in "
                  f"{run_dir / 'checkpoint.npz'}\n"
                  f"continue with: python train_mnist.py --resume {run_dir}")
            return rundir.Stopped(run_dir, by)  # unfinished: cli exits 128 + the signal's number

        # ---- the loop: epochs -> steps -> log -> grids -> checkpoint -----------------------------
        with rundir.StopRequest() as stop:  # Ctrl-C or SIGTERM: finish the step, save, exit
            while progress.epoch < cfg.epochs:
                if progress.perm is None:
                    progress.perm = dataset.epoch_order(rng, n)  # a fresh shuffle every epoch
                next_real = dataset.batch_reader(X, progress.perm, bs, progress.step_in_epoch * k,
                                                 labels=Y)  # conditional: (batch, labels)
                bar = tqdm(total=steps_per_epoch, initial=progress.step_in_epoch, unit="step",
                           desc=f"epoch {progress.epoch + 1}/{cfg.epochs}", mininterval=1.0,
                           file=stop.output(sys.stderr))  # a closed terminal stops and saves
                while progress.step_in_epoch < steps_per_epoch:
                    if cfg.instance_noise:
                        set_instance_noise(D, instance_noise_std(
                            cfg.instance_noise, progress.global_step, progress.noise_steps))
                    metrics = code.train_step(  # k steps of D, one of G (minigan/gan.py)
                        G, D, opt_G, opt_D, next_real, rng, k=k, gen_loss=cfg.gen_loss,
                        real_target=1.0 - cfg.label_smoothing, latent_dim=cfg.latent_dim,
                        **settings.game_options(cfg))  # --loss, --r1, --gp, --clip if set
                    if ema:
                        ema.update()
                    progress.step_in_epoch += 1
                    progress.global_step += 1
                    bar.update(1)
                    if (progress.global_step % cfg.log_every == 0 or stop.requested
                            or progress.step_in_epoch == steps_per_epoch):
                        row = {"step": progress.global_step, "epoch": progress.epoch + 1,
                               **metrics.read()}  # device -> host: the log step's sync
                        rundir.check_finite(row, run_dir)  # NaN or inf: stop, keep the last save
                        rundir.append_row(run_dir / "metrics.csv", row)
                        bar.set_postfix(D=f"{row['d_loss']:.3f}", G=f"{row['g_loss']:.3f}",
                                        Dx=f"{row['d_real']:.2f}", DGz=f"{row['d_fake']:.2f}")
                    if stop.requested:
                        bar.close()
                        save_checkpoint()
                        raise stopped(stop.signal_name)
                bar.close()
                progress.epoch += 1
                progress.step_in_epoch, progress.perm = 0, None
                if progress.epoch % cfg.sample_every == 0 or progress.epoch == cfg.epochs:
                    sampler.eval()  # BatchNorm with running statistics, as minigan.sample draws
                    fake = (sampler.forward(fixed_z, fixed_y) if cfg.conditional
                            else sampler.forward(fixed_z))
                    grid = data.to_pixels(backend.to_host(fake))  # device -> host
                    pictures.save_epoch_grid(run_dir, progress.epoch, grid, nrow)
                    G.train()  # the EMA's network stays in evaluation mode
                if cfg.eval_every and (progress.epoch % cfg.eval_every == 0
                                       or progress.epoch == cfg.epochs):
                    sampler.eval()  # eval.csv and quality.png, from noise of its own seed
                    evaluate.log_quality(run_dir, sampler, cfg.latent_dim, cfg.dtype,
                                         cfg.eval_samples, progress.epoch, progress.global_step,
                                         data_dir=cfg.data_dir or None)  # the run's MNIST
                    G.train()
                pictures.save_curves(run_dir / "curves.png",
                                     rundir.read_rows(run_dir / "metrics.csv"))
                save_checkpoint()
                if stop.requested and progress.epoch < cfg.epochs:  # asked during the grid,
                    raise stopped(stop.signal_name)  # the scores or the curves: stop here

    # ---- the end ---------------------------------------------------------------------------------
    seconds = time.perf_counter() - session_start
    images_seen = (progress.global_step - first_step) * k * bs
    print(f"done: {progress.epoch} epochs, {progress.global_step} steps; this session "
          f"{seconds:.1f} s, {images_seen / max(seconds, 1e-9):.0f} real images/s (sampling and "
          f"saving included); {progress.elapsed:.1f} s of training in the whole run")
    print(f"outputs in {run_dir}/: samples_final.png, samples.gif, curves.png, metrics.csv, "
          "checkpoint.npz")
    print(f"next: python -m minigan.sample {run_dir} " + ("--out digits.png  # a row per digit"
          if cfg.conditional else "-n 64 --out grid.png  # 64 new samples"))
    if not cfg.images:  # minigan.evaluate compares the samples with MNIST
        print(f"      python -m minigan.evaluate {run_dir}  # how good they are (lesson 11)")
    return run_dir


def cli(argv=None):
    """Run main and turn expected failures into one clear message and exit status 2, and a run
    stopped before its last epoch (saved, and resumable) into 128 + the signal's number."""
    try:
        main(argv)
    except rundir.Stopped as e:  # main has said where it saved and how to continue
        return e.status
    except (settings.ConfigError, rundir.RunError, data.DataError, backend.DeviceError,
            checkpoint.CheckpointError, capstone.CapstoneError) as e:
        print(f"train_mnist.py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C, or one before training started
        print("\ntrain_mnist.py: interrupted; the last checkpoint, if any, is intact",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(cli())
