"""G and D from a run's settings: the one place a Config becomes networks.

Training (train_mnist.py), sampling (minigan.sample), scoring (minigan.evaluate), the 2-D lab
(minigan.toy), the capstone and the benchmarks all build their networks here, so a run's
config.json always rebuilds the networks its checkpoint holds. The layer stacks themselves are
in minigan/gan.py (the MLP of the 2014 paper, the DCGAN); this module only chooses among them.

``cfg`` is any object with the fields of settings.Config that a network depends on: model,
latent_dim, g_hidden, d_hidden, slope, dtype and the tricks of D (pack, minibatch_std,
d_dropout, instance_noise) and conditional; the 2-D lab's toy_settings.ToyConfig has them too
(but conditional).
A conditional run (cfg.conditional: "concat", "projection" or "acgan") gets G(z, y) and D(x, y)
from minigan/conditional.py, wrapped around the same layer stacks.
"""

from types import SimpleNamespace

from minigan import conditional, gan, optim, rules, spectral
from minigan.layers import Sequential
from minigan.tricks import InstanceNoise

# The functions a run is built and trained with: minigan's own, or (train_mnist.py --homework)
# the learner's, from minigan.homework.capstone.load, which has the same names.
MINIGAN = SimpleNamespace(
    make_generator=gan.make_generator, make_discriminator=gan.make_discriminator,
    Adam=optim.Adam, train_step=gan.train_step,
    discriminator_step=gan.discriminator_step, generator_step=gan.generator_step)


def code_for(cfg):
    """minigan's functions, or the learner's homework with --homework (lessons/08_homework.md)."""
    if getattr(cfg, "homework", ""):
        from minigan.homework import capstone  # the homework imports minigan: load it late

        return capstone.load(cfg.homework)
    return MINIGAN


def build_generator(cfg, rng, data_dim=784, code=MINIGAN):
    """G: z (N, latent_dim) -> sample (N, data_dim) in [-1, 1]. Conditional: G(z, y), the
    one-hot label y (N, 10) concatenated to z (conditional.ConditionalGenerator)."""
    if getattr(cfg, "conditional", ""):  # the label's 10 one-hot columns join z at G's input
        width = cfg.latent_dim + conditional.NUM_CLASSES
        net = (gan.make_dcgan_generator(width, rng=rng, dtype=cfg.dtype) if cfg.model == "dcgan"
               else gan.make_generator(width, tuple(cfg.g_hidden), data_dim, cfg.slope, rng,
                                       cfg.dtype))
        return conditional.ConditionalGenerator(net, cfg.latent_dim)
    if cfg.model == "dcgan":  # convolutions: minigan/conv.py (g_hidden does not apply)
        return gan.make_dcgan_generator(cfg.latent_dim, rng=rng, dtype=cfg.dtype)
    return code.make_generator(cfg.latent_dim, tuple(cfg.g_hidden), data_dim, cfg.slope, rng,
                               cfg.dtype)


def build_conditional_discriminator(cfg, rng, data_dim=784):
    """D(x, y) of cfg.conditional (minigan/conditional.py), on the MLP's or the DCGAN's layers,
    with D's tricks where they meet the label as minigan/conditional.py's docstring says: the
    MLP takes pack, minibatch_std, d_dropout and instance_noise, the DCGAN instance_noise (the
    rest is refused by settings.py). Instance noise goes on the image only: concat's D adds it
    before the label joins, the others' nets start with it."""
    classes, dcgan = conditional.NUM_CLASSES, cfg.model == "dcgan"
    pack = getattr(cfg, "pack", 1)
    noise = bool(getattr(cfg, "instance_noise", 0.0))
    tricks = dict(pack=pack, minibatch_std=bool(getattr(cfg, "minibatch_std", 0)),
                  dropout=getattr(cfg, "d_dropout", 0.0))
    if cfg.conditional == "concat":  # the MLP: 784 + 10 inputs; the DCGAN: 1 + 10 channels
        if dcgan:
            net = gan.make_dcgan_discriminator(slope=cfg.slope, rng=rng, dtype=cfg.dtype,
                                               in_channels=1 + classes)
        else:  # Pack(m) first in net: a pack is m rows [x_i, onehot(y_i)]
            net = gan.make_discriminator(data_dim + classes, tuple(cfg.d_hidden), cfg.slope, rng,
                                         cfg.dtype, **tricks)
        return conditional.ConcatDiscriminator(
            net, spatial=data_dim if dcgan else 1,
            noise=InstanceNoise(rng=rng) if noise else None)
    # AC-GAN: a logit for each input of D, and 10 class logits for each sample in it
    out_dim = 1 + pack * classes if cfg.conditional == "acgan" else 1
    if dcgan:
        net = gan.make_dcgan_discriminator(slope=cfg.slope, rng=rng, dtype=cfg.dtype,
                                           out_dim=out_dim, instance_noise=noise)
    else:
        net = gan.make_discriminator(data_dim, tuple(cfg.d_hidden), cfg.slope, rng, cfg.dtype,
                                     out_dim=out_dim, instance_noise=noise, **tricks)
    if cfg.conditional == "acgan":
        return conditional.AuxiliaryClassifierDiscriminator(net)
    # projection: the trunk phi is D's stack up to its last Dense, which is psi; then the
    # embedding, one table of C rows for each position of a pack, drawn last from rng
    psi = net.layers[-1]
    return conditional.ProjectionDiscriminator(
        Sequential(*net.layers[:-1]), psi,
        conditional.Embedding(pack * classes, psi.in_features, rng=rng, dtype=cfg.dtype), pack)


def build_discriminator(cfg, rng, data_dim=784, code=MINIGAN):
    """D: sample (N, data_dim) -> logit (N, 1), with the tricks of D that cfg turns on.
    Conditional: D(x, y) (build_conditional_discriminator)."""
    if getattr(cfg, "conditional", ""):
        return build_conditional_discriminator(cfg, rng, data_dim)
    if cfg.model == "dcgan":  # d_hidden does not apply; of D's tricks, instance noise fits
        return gan.make_dcgan_discriminator(slope=cfg.slope, rng=rng, dtype=cfg.dtype,
                                            instance_noise=bool(cfg.instance_noise))
    if code is not MINIGAN:  # the learner's make_discriminator takes the default recipe only
        return code.make_discriminator(data_dim, tuple(cfg.d_hidden), cfg.slope, rng, cfg.dtype)
    return gan.make_discriminator(data_dim, tuple(cfg.d_hidden), cfg.slope, rng, cfg.dtype,
                                  pack=cfg.pack, minibatch_std=bool(cfg.minibatch_std),
                                  dropout=cfg.d_dropout, instance_noise=bool(cfg.instance_noise))


def build(cfg, rng, data_dim=784, code=MINIGAN):
    """(G, D), G first, both drawing their initial weights from rng: one seed, one pair.
    With spectral_norm, D's Dense and Conv2D layers are wrapped last (their u and v drawn
    from rng after every weight)."""
    G = build_generator(cfg, rng, data_dim, code)
    D = build_discriminator(cfg, rng, data_dim, code)
    if getattr(cfg, "spectral_norm", 0):
        D = (conditional.with_spectral_norm(D, rng) if getattr(cfg, "conditional", "")
             else spectral.apply(D, rng))
    return G, D


def optimizers(cfg, G, D, code=MINIGAN):
    """(opt_G, opt_D), each player with its own learning rate: Adam (lessons/05), or RMSprop
    (the WGAN paper's optimizer) with --optimizer rmsprop."""
    if getattr(cfg, "optimizer", "adam") == "rmsprop":
        return (optim.RMSprop(G.parameters(), lr=cfg.lr_g),
                optim.RMSprop(D.parameters(), lr=cfg.lr_d))
    betas = (cfg.beta1, getattr(cfg, "beta2", 0.999))
    return (code.Adam(G.parameters(), lr=cfg.lr_g, betas=betas),
            code.Adam(D.parameters(), lr=cfg.lr_d, betas=betas))


# what a run whose networks do not fit in memory is told (here, and by train_mnist.py)
NETWORKS_ADVICE = "choose smaller --latent-dim, --g-hidden or --d-hidden"


def mlp_parameters(cfg, data_dim=784):
    """How many numbers the MLP GAN's dense layers hold (G's and D's weights and biases), at
    the least: a conditional D's label weights, which differ by --conditional, are left out."""
    labels = conditional.NUM_CLASSES if cfg.conditional else 0  # G reads z and y, as built above
    g = [cfg.latent_dim + labels, *cfg.g_hidden, data_dim]
    d = [data_dim, *cfg.d_hidden, 1]
    return sum(a * b + b for sizes in (g, d) for a, b in zip(sizes, sizes[1:]))


def check_networks_fit(cfg):
    """Raise ConfigError if the MLP's weights and their gradients alone cannot fit in the
    machine's memory (on the CPU; on the GPU, CuPy refuses an allocation with a MemoryError)."""
    if cfg.model != "mlp" or cfg.device != "cpu":
        return
    itemsize = 8 if cfg.dtype == "float64" else 4
    rules.check_fits_in_memory(2 * itemsize * mlp_parameters(cfg), "the networks",
                               NETWORKS_ADVICE)
