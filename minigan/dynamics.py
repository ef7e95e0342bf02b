"""The dynamics lab: the smallest games where gradient steps near an equilibrium can be watched.

    python -m minigan.dynamics                          # pictures and GIFs in runs/dynamics
    python -m minigan.dynamics --update alternating --lr 0.2 --steps 500 --json
    python -m minigan.dynamics --methods gan,r1 --gamma 0.3 --out runs/r1-weak

It runs (minigan/dynamics_games.py holds the games; lessons/15_games_and_equilibria.md derives
every number):

- the bilinear game f(x, y) = x y from (1, 1) under simultaneous and alternating steps, and the
  averaged iterate of each (lesson 13's EMA, decay 0.999): bilinear.png, bilinear.gif;
- the Dirac-GAN from (theta, psi) = (1, 1) under each method (--methods), built from minigan's
  Dense layers, losses and penalties: its vector field and trajectory, dirac.png, dirac.gif;

and prints, for each method, the eigenvalues of the field's Jacobian at the equilibrium (central
differences), the largest eigenvalue modulus of one step there, the distance to the equilibrium
after --steps steps and what the run did; with --json, one JSON object on the last line.
Everything goes to dynamics.json in the run folder too.
"""

import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from minigan import files, pictures, rundir, settings
from minigan.dynamics_games import (
    METHODS, UPDATES, Bilinear, DiracGAN, averaged, differentiable, jacobian, run,
    spectral_radius, step_matrix, verdict)
from minigan.rules import ConfigError, explained, folder, integer, number, one_of
from minigan.tricks import IMPROVED

START = (1.0, 1.0)  # every run starts here: (x, y) for xy, (theta, psi) for the Dirac-GAN
EMA_DECAY = IMPROVED["ema"]  # lesson 13's averaged G: 0.999


@dataclass
class DynamicsConfig:
    """The lab's settings (python -m minigan.dynamics)."""

    steps: int = 1000
    lr: float = 0.1
    update: str = "simultaneous"  # the Dirac-GAN's steps; xy is drawn under both
    methods: str = ",".join(METHODS)
    gamma: float = 1.0  # R1's weight
    gp: float = 1.0  # WGAN-GP's weight
    clip: float = 0.5  # WGAN's box: psi in [-clip, clip]
    frames: int = 12  # GIF frames (0: no GIFs)
    out: str = ""  # "": runs/dynamics


def methods_ok(value):
    names = value.split(",") if isinstance(value, str) else []
    return bool(names) and all(n in METHODS for n in names) and len(set(names)) == len(names)


RULES = {
    "steps": integer(1, 100_000),
    "lr": explained(number(0, 1, lo_open=True), "a number in (0, 1): the step size of both "
                    "players"),
    "update": one_of(*UPDATES),
    "methods": (methods_ok, "comma-separated names from " + ", ".join(METHODS) +
                ", each at most once"),
    "gamma": explained(number(0, 100), "a number in [0, 100): R1's weight gamma"),
    "gp": explained(number(0, 100), "a number in [0, 100): WGAN-GP's weight lambda"),
    "clip": explained(number(0, 100, lo_open=True), "a number in (0, 100): WGAN's box, psi in "
                      "[-clip, clip]"),
    "frames": explained(integer(0, 200), "an integer from 0 to 200, at most --steps: GIF frames"),
    "out": explained(folder(want_dir=False), "a folder name (created if missing), not a file, "
                     "or empty for runs/dynamics"),
}


def dynamics_config(given):
    """The lab's DynamicsConfig from the flags given; raises ConfigError, writes nothing."""
    cfg = settings.validate(DynamicsConfig(**given), flags=given, rules=RULES)
    if cfg.frames > cfg.steps:
        raise ConfigError(f"--frames {cfg.frames}: not allowed; use an integer from 0 to --steps "
                          f"({cfg.steps}), or raise --steps.")
    cfg.out = cfg.out or "runs/dynamics"
    return cfg


# ---- the runs --------------------------------------------------------------------------------


def bilinear_runs(lr, steps):
    """The xy game from START: {name: iterates (T + 1, 2)} for simultaneous and alternating
    steps and the EMA of each ("averaged simultaneous", "averaged alternating")."""
    runs = {update: run(Bilinear(), START, lr, steps, update) for update in UPDATES}
    for update in UPDATES:
        runs[f"averaged {update}"] = averaged(runs[update], EMA_DECAY)
    return runs


def dirac_games(methods, gamma=1.0, gp=1.0, clip=0.5):
    """{method: DiracGAN} for a list of method names."""
    return {m: DiracGAN(m, gamma=gamma, gp=gp, clip=clip) for m in methods}


def equilibrium_report(game, lr, update):
    """What the linearisation at (0, 0) says: {"eigenvalues": [[re, im], ...] of the field's
    Jacobian (None where the field jumps there and has none), "step_radius": the largest
    eigenvalue modulus of one step (None likewise)}."""
    if not differentiable(game.field, (0.0, 0.0)):
        return {"eigenvalues": None, "step_radius": None}
    eig = sorted(np.linalg.eigvals(jacobian(game.field, (0.0, 0.0))), key=lambda e: -e.imag)
    return {"eigenvalues": [[float(e.real), float(e.imag)] for e in eig],
            "step_radius": spectral_radius(step_matrix(game, lr, update))}


def dirac_results(games, lr, steps, update):
    """Run every game from START; returns ({method: iterates}, {method: report}) with the
    report of :func:`equilibrium_report` plus "distance" after the run and "verdict"."""
    paths, reports = {}, {}
    for name, game in games.items():
        paths[name] = run(game, START, lr, steps, update)
        reports[name] = {**equilibrium_report(game, lr, update),
                         "distance": float(np.hypot(*paths[name][-1])),
                         "verdict": verdict(paths[name], steps)}
    return paths, reports


# ---- pictures ----------------------------------------------------------------------------------

LIM = 2.5  # every phase portrait shows [-LIM, LIM]^2


def field_grid(game, n=13):
    """The game's field on an n x n grid of [-LIM, LIM]^2: (X, Y, U, V) for quiver."""
    ticks = np.linspace(-LIM, LIM, n)
    X, Y = np.meshgrid(ticks, ticks)
    UV = np.array([game.field((a, b)) for a, b in zip(X.ravel(), Y.ravel())])
    return X, Y, UV[:, 0].reshape(X.shape), UV[:, 1].reshape(X.shape)


def draw_phase(ax, grid, paths, title, names=("x", "y"), color=None):
    """One phase portrait: the field as arrows (direction only) and each path {label: (T, 2)}."""
    X, Y, U, V = grid
    norm = np.hypot(U, V) + 1e-12
    ax.quiver(X, Y, U / norm, V / norm, color="0.7", angles="xy", width=0.004)
    for label, path in paths.items():
        ax.plot(path[:, 0], path[:, 1], lw=1, label=label, color=color)
        ax.plot(*path[-1], "o", ms=3, color=ax.lines[-1].get_color())
    ax.plot(*START, "ks", ms=4)
    ax.plot(0, 0, "k*", ms=9)
    ax.set(xlim=(-LIM, LIM), ylim=(-LIM, LIM), aspect="equal", xlabel=names[0], ylabel=names[1])
    ax.set_title(title, fontsize=9)


def draw_distance(ax, paths, steps, upto):
    """Distance to (0, 0) against the step, log scale, for every path {label: (T, 2)} up to step
    upto, on the axes of the whole run (so that a GIF's frames do not jump)."""
    distances = {label: np.maximum(np.hypot(*path.T), 1e-20) for label, path in paths.items()}
    for label, d in distances.items():
        ax.semilogy(d[:upto + 1], lw=1, label=label)
    low = min(d.min() for d in distances.values())
    high = max(d.max() for d in distances.values())
    ax.set(xlim=(0, steps), ylim=(low / 2, high * 2), xlabel="step", ylabel="distance to (0, 0)")
    ax.legend(fontsize=7)


def bilinear_figure(runs, lr, upto=None):
    """xy's phase portrait and distances (runs from :func:`bilinear_runs`), up to step upto."""
    plt = pictures.pyplot()
    steps = len(runs["alternating"]) - 1
    upto = steps if upto is None else upto
    shown = {k: v[:upto + 1] for k, v in runs.items()}
    fig, (ax_p, ax_d) = plt.subplots(1, 2, figsize=(10, 4.4))
    draw_phase(ax_p, field_grid(Bilinear()), shown, f"f(x, y) = xy, lr {lr:g}, step {upto}")
    ax_p.legend(fontsize=7, loc="lower left")
    draw_distance(ax_d, runs, steps, upto)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.92, wspace=0.25)
    return fig


def dirac_figure(games, paths, reports, lr, update, upto=None, grids=None):
    """One phase portrait per Dirac-GAN method, and every distance in the last panel."""
    plt = pictures.pyplot()
    steps = max(len(p) for p in paths.values()) - 1
    upto = steps if upto is None else upto
    grids = grids or {name: field_grid(game) for name, game in games.items()}
    cols = 4 if len(games) > 2 else len(games) + 1
    rows = math.ceil((len(games) + 1) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.3 * rows), squeeze=False)
    for i, (ax, (name, game)) in enumerate(zip(axes.flat, games.items())):
        draw_phase(ax, grids[name], {name: paths[name][:upto + 1]},
                   f"{name}: {reports[name]['verdict']}", names=game.names, color=f"C{i}")
    draw_distance(axes.flat[len(games)], paths, steps, upto)
    for ax in axes.flat[len(games) + 1:]:
        ax.axis("off")
    fig.suptitle(f"Dirac-GAN, {update} steps of lr {lr:g}, step {upto}", fontsize=10)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.1, top=0.9, wspace=0.35, hspace=0.4)
    return fig


def save_gif(out, name, make_figure, steps, frames):
    """frames + 1 pictures at evenly spaced steps, out/frames/NAME_STEP.png, and out/NAME.gif."""
    from minigan.toy import save_color_gif  # the 2-D lab's colour GIF writer

    (out / "frames").mkdir(exist_ok=True)
    paths = []
    for upto in frame_steps(steps, frames):
        paths.append(frame_path(out, name, upto))
        pictures.save_figure(make_figure(upto), paths[-1], dpi=60)
    save_color_gif(out / f"{name}.gif", paths, ms_per_frame=300)


def frame_steps(steps, frames):
    """The frames + 1 steps a GIF shows, evenly spaced from 0 to steps."""
    return [int(t) for t in np.linspace(0, steps, frames + 1).round()]


def frame_path(out, name, step):
    return out / "frames" / f"{name}_{step:06d}.png"


# ---- the command -------------------------------------------------------------------------------


def describe(report):
    """A method's eigenvalues in words, e.g. '0 +- 0.5i' or '-0.5, -0.5'."""
    eig = report["eigenvalues"]
    if eig is None:
        return "none: the field jumps there"
    (a, b), (c, d) = eig
    if abs(b) > 1e-9 and abs(a - c) < 1e-9 and abs(b + d) < 1e-9:
        return f"{a:.4g} +- {abs(b):.4g}i"
    return f"{a:.4g}, {c:.4g}"


def parse_args(argv):
    p = settings.parser(DynamicsConfig, RULES, "python -m minigan.dynamics",
                        "Watch gradient steps near a game's equilibrium: the bilinear game xy "
                        "and the Dirac-GAN (lessons/15_games_and_equilibria.md).")
    p.add_argument("--json", action="store_true",
                   help="print the eigenvalues, distances and verdicts as one JSON object on "
                        "the last line")
    given = vars(p.parse_args(argv))
    as_json = given.pop("json")
    try:
        cfg = dynamics_config(given)
    except ConfigError as e:
        p.error(str(e))
    return cfg, as_json


def main(argv=None):
    cfg, as_json = parse_args(argv)
    out = Path(cfg.out)
    try:
        rundir.refuse_taken(out)  # a new or empty folder: nothing there is replaced
        rundir.create(out)
    except rundir.RunError as e:
        print(f"python -m minigan.dynamics: error: {e}", file=sys.stderr)
        return 2
    methods = cfg.methods.split(",")
    xy = bilinear_runs(cfg.lr, cfg.steps)
    games = dirac_games(methods, cfg.gamma, cfg.gp, cfg.clip)
    paths, reports = dirac_results(games, cfg.lr, cfg.steps, cfg.update)
    norms = {k: float(np.hypot(*v[-1])) for k, v in xy.items()}
    result = {"steps": cfg.steps, "lr": cfg.lr, "update": cfg.update, "bilinear": norms,
              "dirac": reports}

    pictures.save_figure(bilinear_figure(xy, cfg.lr), out / "bilinear.png", dpi=80)
    grids = {name: field_grid(game) for name, game in games.items()}
    pictures.save_figure(dirac_figure(games, paths, reports, cfg.lr, cfg.update, grids=grids),
                         out / "dirac.png", dpi=80)
    if cfg.frames:
        save_gif(out, "bilinear", lambda t: bilinear_figure(xy, cfg.lr, t), cfg.steps, cfg.frames)
        save_gif(out, "dirac", lambda t: dirac_figure(games, paths, reports, cfg.lr, cfg.update,
                                                      t, grids), cfg.steps, cfg.frames)
    files.write_text(out / "dynamics.json", json.dumps({**result, "config": asdict(cfg)},
                                                       indent=1))

    print(f"minigan.dynamics: {cfg.steps} steps of lr {cfg.lr:g} from (1, 1)")
    print("xy: distance to (0, 0) after the steps: " + ", ".join(
        f"{k} {v:.4g}" for k, v in norms.items()) + f" (averages: EMA {EMA_DECAY})")
    print(f"Dirac-GAN, {cfg.update} steps:")
    print(f"{'method':10s} {'eigenvalues of J at (0, 0)':28s} {'step radius':>11s} "
          f"{'distance':>10s}  verdict")
    for name, r in reports.items():
        radius = "-" if r["step_radius"] is None else f"{r['step_radius']:.6f}"
        print(f"{name:10s} {describe(r):28s} {radius:>11s} {r['distance']:10.4g}  "
              f"{r['verdict']}")
    print(f"pictures in {out}/")
    if as_json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
