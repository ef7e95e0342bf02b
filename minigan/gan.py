"""The GANs' layer stacks (the MLP's and the DCGAN's) and their alternating training step
(Goodfellow et al. 2014, Algorithm 1): discriminator_step and generator_step for the 2014 game,
critic_step for the other games and any D with BatchNorm, and the conditional GANs' steps.

    for each training step:
        k times:  real batch x, noise z  ->  update D to raise  log D(x) + log(1 - D(G(z)))
        once:     noise z                ->  update G to lower the generator loss of D(G(z))

D ends in a logit (no Sigmoid layer): ``D(x) = sigmoid(logit)``, and every loss works on the
logit, which stays finite however confident D becomes. Derivations: lessons/01_minimax_game.md
and lessons/02_losses.md.
"""

from dataclasses import dataclass

from minigan import backend
from minigan.conv import Conv2D, ConvTranspose2D
from minigan.batchnorm import BatchNorm, frozen_running_stats
from minigan.layers import (
    Dense, Dropout, Flatten, LeakyReLU, ReLU, Reshape, Sequential, Tanh, sigmoid,
)
from minigan import penalties
from minigan.conditional import AuxiliaryClassifierDiscriminator, one_hot, sample_labels
from minigan.losses import (
    GENERATOR_LOSSES, bce_with_logits, generator_loss_least_squares, generator_loss_wasserstein,
    hinge_fake, hinge_real, least_squares, softmax_cross_entropy, wasserstein_fake,
    wasserstein_real,
)
from minigan.tricks import InstanceNoise, MinibatchStd, Pack


def make_generator(latent_dim=100, hidden=(256, 512, 1024), out_dim=784, slope=0.2,
                   rng=None, dtype="float32"):
    """G: z (N, latent_dim) -> image (N, out_dim) in [-1, 1]; Dense + LeakyReLU, tanh at the end."""
    sizes = [latent_dim, *hidden]
    layers = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:]):
        layers += [Dense(d_in, d_out, rng=rng, dtype=dtype), LeakyReLU(slope)]
    layers += [Dense(sizes[-1], out_dim, rng=rng, dtype=dtype), Tanh()]
    return Sequential(*layers)


def make_discriminator(in_dim=784, hidden=(1024, 512, 256), slope=0.2, rng=None,
                       dtype="float32", pack=1, minibatch_std=False, dropout=0.0,
                       instance_noise=False, out_dim=1):
    """D: image (N, in_dim) -> logit (N, 1); Dense + LeakyReLU, no sigmoid (the loss applies it).
    out_dim: the outputs of the last Dense (1 + 10 for AC-GAN's two heads, minigan/conditional.py).

    The tricks of minigan/tricks.py that live in D, all off by default (--recipe improved turns
    on pack=2 and minibatch_std; instance noise and dropout have flags of their own):

    - instance_noise: an InstanceNoise layer first, whose std the training loop sets;
    - pack=m: D judges m samples at once, (N, in_dim) -> (N / m, m * in_dim) -> (N / m, 1);
    - minibatch_std: the batch's mean feature standard deviation joins the last hidden
      layer's features, (N, hidden[-1] + 1), before the final Dense;
    - dropout=p: Dropout(p) after every hidden LeakyReLU.

    InstanceNoise and Dropout draw from rng, so a checkpoint of rng's state covers them.
    """
    sizes = [in_dim * pack, *hidden]
    layers = [InstanceNoise(rng=rng)] if instance_noise else []
    if pack > 1:
        layers.append(Pack(pack))
    for d_in, d_out in zip(sizes[:-1], sizes[1:]):
        layers += [Dense(d_in, d_out, rng=rng, dtype=dtype), LeakyReLU(slope)]
        if dropout:
            layers.append(Dropout(dropout, rng=rng))
    if minibatch_std:
        layers.append(MinibatchStd())
    layers += [Dense(sizes[-1] + bool(minibatch_std), out_dim, rng=rng, dtype=dtype)]
    return Sequential(*layers)


def make_dcgan_generator(latent_dim=100, channels=(128, 64), rng=None, dtype="float32"):
    """The DCGAN's G: z (N, latent_dim) -> image (N, 784) in [-1, 1], upsampling 7 -> 14 -> 28.

    Dense(latent_dim -> 7*7*128), Reshape, BatchNorm, ReLU, ConvTranspose2D(128 -> 64, 5x5,
    stride 2), BatchNorm, ReLU, ConvTranspose2D(64 -> 1, 5x5, stride 2), Tanh, Flatten.
    padding=2 and output_padding=1 give Keras's 'same' sizes: (7 - 1) * 2 - 4 + 5 + 1 = 14.
    The last Flatten hands out (N, 784) rows like the MLP's G, so data, pictures and
    checkpoints treat both models alike. channels: the two hidden channel counts.
    """
    c1, c2 = channels
    return Sequential(
        Dense(latent_dim, c1 * 7 * 7, rng=rng, dtype=dtype),  # (N, c1*49)
        Reshape((c1, 7, 7)),  # (N, c1, 7, 7)
        BatchNorm(c1, dtype=dtype), ReLU(),
        ConvTranspose2D(c1, c2, 5, stride=2, padding=2, output_padding=1, rng=rng,
                        dtype=dtype),  # (N, c2, 14, 14)
        BatchNorm(c2, dtype=dtype), ReLU(),
        ConvTranspose2D(c2, 1, 5, stride=2, padding=2, output_padding=1, rng=rng,
                        dtype=dtype),  # (N, 1, 28, 28)
        Tanh(),
        Flatten(),  # (N, 784)
    )


def make_dcgan_discriminator(channels=(64, 128), slope=0.2, rng=None, dtype="float32",
                             instance_noise=False, in_channels=1, out_dim=1):
    """The DCGAN's D: image (N, 784) -> logit (N, 1), downsampling 28 -> 14 -> 7.

    Reshape to (N, 1, 28, 28), Conv2D(1 -> 64, 5x5, stride 2, padding 2), LeakyReLU, BatchNorm,
    Conv2D(64 -> 128, 5x5, stride 2, padding 2), BatchNorm, LeakyReLU, Flatten, Dense(6272 -> 1).
    No sigmoid at the end, like the MLP's D: the losses work on the logit. instance_noise: an
    InstanceNoise layer first, as in make_discriminator (the only one of minigan/tricks.py's D
    layers that fits this D; --recipe improved is the MLP's, and the DCGAN takes --ema,
    --label-smoothing and --instance-noise as flags). For the conditional Ds
    (minigan/conditional.py): in_channels, the image's channel and the label's constant ones, from
    rows (N, in_channels * 784); out_dim, the outputs of the last Dense.
    """
    c1, c2 = channels
    return Sequential(
        *([InstanceNoise(rng=rng)] if instance_noise else []),
        Reshape((in_channels, 28, 28)),  # (N, in_channels, 28, 28)
        Conv2D(in_channels, c1, 5, stride=2, padding=2, rng=rng, dtype=dtype),  # (N, c1, 14, 14)
        LeakyReLU(slope), BatchNorm(c1, dtype=dtype),
        Conv2D(c1, c2, 5, stride=2, padding=2, rng=rng, dtype=dtype),  # (N, c2, 7, 7)
        BatchNorm(c2, dtype=dtype), LeakyReLU(slope),
        Flatten(),  # (N, c2*49)
        Dense(c2 * 7 * 7, out_dim, rng=rng, dtype=dtype),  # (N, out_dim): the logit
    )


@dataclass
class StepMetrics:
    """What one training step reports, as 0-d device arrays (read them with float() at log
    steps only: on the GPU each read is a sync)."""

    d_loss: object  # D's loss L_D (penalties included), last D step
    g_loss: object  # the generator loss
    d_real: object  # mean sigmoid(D's logit) on the real batch: mean D(x), last D step
    d_fake: object  # mean sigmoid(D's logit) on the fake batch, last D step (before its update)

    def read(self):
        """The four numbers as Python floats: a copy to the host, so on the GPU a sync (the
        training loop calls it at log steps only)."""
        return {name: float(getattr(self, name)) for name in ("d_loss", "g_loss", "d_real",
                                                               "d_fake")}


def discriminator_step(G, D, opt_D, real, z, real_target=1.0):
    """One update of D: BCE on real images (target real_target) plus BCE on G(z) (target 0).

    real: (N, 784), z: (N, latent_dim). D's grads are zeroed first (D.zero_grad()), so the
    step uses this batch's gradients only. G is only run forward; its grads are not touched.
    Returns (d_loss, mean D(x), mean D(G(z))) as 0-d device arrays.
    """
    if D.uses_batch_statistics or D.steps_in_forward:  # two batches of N: see critic_step
        return critic_step(G, D, opt_D, real, z, rng=None, loss="bce", real_target=real_target)
    xp = backend.xp
    n = real.shape[0]
    fake = G.forward(z)  # (N, 784); no backward through G in this step
    # One pass of D over real and fake stacked (2N, 784) instead of two passes of N: the same
    # gradients, as no row depends on another and the forward changes nothing in D, with
    # bigger matrix products and half the calls (1.17x, benchmarks/bench_levers.py mlp).
    x = xp.concatenate([real, fake])  # (2N, 784): rows 0..N-1 real, N..2N-1 fake
    targets = xp.concatenate([xp.full((n, 1), real_target, dtype=x.dtype),
                              xp.zeros((n, 1), dtype=x.dtype)])  # (2N, 1)
    D.zero_grad()
    logits = D.forward(x)  # (2N, 1)
    # The mean over 2N rows is half of BCE(real) + BCE(fake), each a mean over N rows.
    loss, dlogits = bce_with_logits(logits, targets)
    D.backward(2 * dlogits, input_grad=False)  # grads of BCE(real) + BCE(fake)
    opt_D.step()
    d_real = xp.mean(sigmoid(logits[:n]))
    d_fake = xp.mean(sigmoid(logits[n:]))
    return 2 * loss, d_real, d_fake


def generator_step(G, D, opt_G, z, gen_loss="nonsaturating"):
    """One update of G through a fixed D: backprop the generator loss through D into G.

    D's parameters, grads and optimizer state are left exactly as they were: D.backward runs
    with param_grads=False and only opt_G steps. D's BatchNorm layers (if any) normalise the
    fake batch by its own statistics, as in training, but keep their running statistics: the
    G step reads D's weights and changes none of them (the PyTorch twin matches this by setting
    its BatchNorms' momentum to 0 for the step). What a training forward always changes, it
    changes here too: the layers' caches (overwritten, as by any forward), a Dropout's fresh mask
    (drawn from D's generator, which moves on), and spectral norm's u and v, as torch's
    spectral_norm does. Returns the generator loss (0-d array).
    """
    loss_fn = G_LOSSES[gen_loss]
    G.zero_grad()
    fake = G.forward(z)  # (N, 784)
    with frozen_running_stats(D):
        logits = D.forward(fake)  # (N, 1)
    loss, dlogits = loss_fn(logits)
    dfake = D.backward(dlogits, param_grads=False)  # (N, 784): dL/dG(z), D's grads untouched
    G.backward(dfake, input_grad=False)  # nobody needs dL/dz
    opt_G.step()
    return loss


# ---- beyond Jensen-Shannon: the other games (minigan/losses.py, penalties.py) -----------------

# D's loss as two (loss, grad) pairs, on its output for real x (with the real target, where the
# loss has one) and for G(z); and G's loss in each game.
D_LOSSES = {
    "bce": (bce_with_logits, lambda out: bce_with_logits(out, 0.0)),
    "lsgan": (least_squares, lambda out: least_squares(out, 0.0)),
    "hinge": (lambda out, target: hinge_real(out), hinge_fake),
    "wgan": (lambda out, target: wasserstein_real(out), wasserstein_fake),
}
G_LOSSES = {**GENERATOR_LOSSES,  # the 2014 game's, which --gen-loss chooses from
            "lsgan": generator_loss_least_squares, "hinge": generator_loss_wasserstein,
            "wgan": generator_loss_wasserstein}


def clip_weights(D, clip):
    """WGAN's constraint (Arjovsky et al. 2017): every parameter of D clipped to [-clip, clip]."""
    for p in D.parameters():
        backend.xp.clip(p.data, -clip, clip, out=p.data)  # in place: the layers hold these arrays


def critic_step(G, D, opt_D, real, z, rng, loss="wgan", real_target=1.0, r1=0.0, gp=0.0,
                clip=0.0):
    """One update of D in any game of D_LOSSES, with its Lipschitz constraints:

        L_D = loss_real(D(x)) + loss_fake(D(G(z)))                     (D_LOSSES[loss])
              + r1 / 2 * E ||grad_x D(x)||^2                            (R1, if r1 > 0)
              + gp * E (||grad_x D(x_hat)|| - 1)^2                      (WGAN-GP, if gp > 0)
        then every parameter of D clipped to [-clip, clip]              (WGAN, if clip > 0)

    Real and fake go through D as two batches of N, each backward right after its forward (the
    next forward overwrites the layers' caches). A D with BatchNorm needs it: BatchNorm
    normalises each batch by its own statistics, so a stacked (2N) batch would mix real and fake
    and give other gradients than the PyTorch twin, which calls D(real) and D(fake) separately
    (lessons/12_convolutions.md); so does a D under spectral norm, whose every training forward
    takes a power step (the twin's two calls take two). discriminator_step sends both here with
    loss "bce". The penalties run D again, after both backwards. rng draws the interpolation
    weights of WGAN-GP. Returns (L_D, mean sigmoid(D(x)), mean sigmoid(D(G(z)))); for lsgan,
    hinge and wgan D's output is a score, not a logit, and these are only a squashed view of it
    (above 0.5 where the score is positive).
    """
    xp = backend.xp
    loss_real_fn, loss_fake_fn = D_LOSSES[loss]
    fake = G.forward(z)  # (N, 784); no backward through G in this step
    D.zero_grad()
    out_real = D.forward(real)  # (N, 1)
    loss_real, dout = loss_real_fn(out_real, real_target)
    D.backward(dout, input_grad=False)
    out_fake = D.forward(fake)
    loss_fake, dout = loss_fake_fn(out_fake)
    D.backward(dout, input_grad=False)  # grads add up: those of loss_real + loss_fake
    d_loss = loss_real + loss_fake
    if r1:
        d_loss = d_loss + penalties.r1(D, real, r1)  # adds its gradient into D's grads
    if gp:
        d_loss = d_loss + penalties.gradient_penalty(D, real, fake, gp, rng)
    opt_D.step()
    if clip:
        clip_weights(D, clip)
    return d_loss, xp.mean(sigmoid(out_real)), xp.mean(sigmoid(out_fake))


# ---- conditional GANs: G(z, y), D(x, y) (minigan/conditional.py) ---------------------------------


def conditional_d_loss(D, out, labels, adversarial):
    """(loss, dL/dout) of a conditional D's output on one batch.

    adversarial(logit) -> (loss, grad): the game's loss on column 0, D's logit. AC-GAN's D adds
    the softmax cross-entropy of its class logits (columns 1..10) against labels: the digit of
    a real image, the digit G was asked for on a fake. Which samples, as in the paper (Odena et
    al. 2017, L_C over real and fake): D's class loss on both, G's on its fakes. On real images
    D's classifier learns the digits; on fakes G learns to draw what that classifier reads as
    the digit asked. D's classifier also trains on fakes, as the paper does, so that its class
    loss and G's are one quantity; the price is the bias Shu et al. 2017 describe: both players
    lower it most easily with fakes that are easy to classify, so G drifts towards the most
    typical digit of each class.

    A packed AC-GAN D (m samples a row, out (N / m, 1 + m * 10)) gives each member's 10 class
    logits in the member's order, so they reshape to the (N, 10) rows of the N samples: the
    class loss is a mean over samples, the adversarial one a mean over packs.
    """
    loss, dout = adversarial(out[:, :1])  # (N / m, 1); unpacked, m = 1
    if isinstance(D, AuxiliaryClassifierDiscriminator):
        logits = out[:, 1:].reshape(labels.shape[0], D.num_classes)  # (N, 10), one per sample
        class_loss, dclass = softmax_cross_entropy(logits, labels)
        dclass = dclass.reshape(out.shape[0], -1)  # (N / m, m * 10), back to D's rows
        loss, dout = loss + class_loss, backend.xp.concatenate([dout, dclass], axis=1)
    return loss, dout


def conditional_discriminator_step(G, D, opt_D, real, labels, z, fake_labels, real_target=1.0,
                                   loss="bce", clip=0.0):
    """One update of a conditional D: the game's loss on (x, its label) and on (G(z, y), y),

        L_D = loss_real(D(x, y_x)) + loss_fake(D(G(z, y), y))       (+ AC-GAN's class losses)

    real: (N, 784), labels: (N,) its digits; z: (N, latent_dim), fake_labels: (N,) the digits
    asked of G. Real and fake go through D as two batches, each backward after its forward, as
    in critic_step. Returns (L_D, mean sigmoid(D's logit) on real, on fake), 0-d arrays.
    """
    xp = backend.xp
    loss_real_fn, loss_fake_fn = D_LOSSES[loss]
    fake = G.forward(z, one_hot(fake_labels, dtype=z.dtype))  # (N, 784); no backward through G
    D.zero_grad()
    out_real = D.forward(real, labels)  # (N, 1), AC-GAN (N, 11)
    loss_real, dout = conditional_d_loss(D, out_real, labels,
                                         lambda logit: loss_real_fn(logit, real_target))
    D.backward(dout, input_grad=False)
    out_fake = D.forward(fake, fake_labels)
    loss_fake, dout = conditional_d_loss(D, out_fake, fake_labels, loss_fake_fn)
    D.backward(dout, input_grad=False)  # grads add up: those of loss_real + loss_fake
    opt_D.step()
    if clip:
        clip_weights(D, clip)
    return (loss_real + loss_fake, xp.mean(sigmoid(out_real[:, :1])),
            xp.mean(sigmoid(out_fake[:, :1])))


def conditional_generator_step(G, D, opt_G, z, fake_labels, gen_loss="nonsaturating"):
    """One update of G(z, y) through a fixed D(x, y), as generator_step: G's loss on
    D(G(z, y), y), AC-GAN's plus the class cross-entropy. Returns the loss (0-d array)."""
    G.zero_grad()
    fake = G.forward(z, one_hot(fake_labels, dtype=z.dtype))  # (N, 784)
    with frozen_running_stats(D):
        out = D.forward(fake, fake_labels)
    loss, dout = conditional_d_loss(D, out, fake_labels, G_LOSSES[gen_loss])
    dfake = D.backward(dout, param_grads=False)  # (N, 784); D's grads untouched
    G.backward(dfake, input_grad=False)
    opt_G.step()
    return loss


def conditional_train_step(G, D, opt_G, opt_D, next_real, rng, k=1, gen_loss="nonsaturating",
                           real_target=1.0, latent_dim=100, loss="bce", clip=0.0):
    """train_step for a conditional GAN: next_real() returns (real (N, 784), labels (N,)); each
    step draws z and then the fake labels, uniform over the digits, from rng."""
    dtype = G.parameters()[0].data.dtype
    for _ in range(k):
        real, labels = next_real()
        n = real.shape[0]
        z = sample_noise(rng, n, latent_dim, dtype)
        fake_labels = sample_labels(rng, n)
        d_loss, d_real, d_fake = conditional_discriminator_step(
            G, D, opt_D, real, labels, z, fake_labels, real_target, loss, clip)
    z = sample_noise(rng, n, latent_dim, dtype)
    fake_labels = sample_labels(rng, n)
    g_loss = conditional_generator_step(G, D, opt_G, z, fake_labels,
                                        gen_loss if loss == "bce" else loss)
    return StepMetrics(d_loss, g_loss, d_real, d_fake)


def sample_noise(rng, n, latent_dim, dtype="float32"):
    """z ~ N(0, 1), shape (n, latent_dim), drawn from the explicit generator on the device."""
    return rng.standard_normal((n, latent_dim), dtype=dtype)


def train_step(G, D, opt_G, opt_D, next_real, rng, k=1, gen_loss="nonsaturating",
               real_target=1.0, latent_dim=100, loss="bce", r1=0.0, gp=0.0, clip=0.0,
               conditional=""):
    """Algorithm 1's inner loop: k discriminator steps, then one generator step.

    next_real: a function returning the next real batch (N, 784) of the device.
    Fresh noise is drawn from rng for every step. Returns StepMetrics (device arrays).
    The 2014 game (loss "bce", no penalty, no clipping) takes discriminator_step; the others
    (loss, r1, gp, clip: minigan/settings.py's GAME) take critic_step, and G the game's loss.
    conditional ("concat", "projection" or "acgan": G and D from minigan/conditional.py):
    next_real returns (real, labels), and conditional_train_step plays the step.
    """
    check_step_args(k, conditional, r1, gp)
    paper = loss == "bce" and not (r1 or gp or clip)
    if conditional:
        return conditional_train_step(G, D, opt_G, opt_D, next_real, rng, k, gen_loss,
                                      real_target, latent_dim, loss, clip)
    dtype = G.parameters()[0].data.dtype  # the noise in G's own float type
    for _ in range(k):
        real = next_real()
        z = sample_noise(rng, real.shape[0], latent_dim, dtype)
        if paper:
            d_loss, d_real, d_fake = discriminator_step(G, D, opt_D, real, z, real_target)
        else:
            d_loss, d_real, d_fake = critic_step(G, D, opt_D, real, z, rng, loss, real_target,
                                                 r1, gp, clip)
    z = sample_noise(rng, real.shape[0], latent_dim, dtype)
    g_loss = generator_step(G, D, opt_G, z, gen_loss if loss == "bce" else loss)
    return StepMetrics(d_loss, g_loss, d_real, d_fake)


def check_step_args(k, conditional, r1, gp):
    """train_step's own guard, for code that calls it directly (the commands check their flags
    in minigan/settings.py first): k >= 1, and no penalty on a conditional D."""
    if k < 1:
        raise ValueError(f"train_step: k must be at least 1 discriminator step, got {k}")
    if conditional and (r1 or gp):
        raise ValueError("train_step: the R1 and WGAN-GP penalties are not derived through a "
                         "conditional D")
