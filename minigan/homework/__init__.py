"""Homework: learners write minigan's backward passes, losses, optimizers, GAN steps, the
convolutions' and BatchNorm's backward and the Fréchet distance, the
gradient checks grade them, and the GAN trains on their own code (lessons/08_homework.md).

    python -m minigan.homework start DIR           # a skeleton generated from minigan's source
    python -m minigan.homework check DIR [PART..]  # the scoreboard, with hints
    python train_mnist.py --homework DIR           # the capstone: train on the learner's code

Modules: ``parts`` (what each part holds), ``skeleton`` (writes DIR), ``grader`` (grades it,
part by part: ``grade_losses``, ``grade_layers``, ``grade_optim``, ``grade_gan``,
``grade_games``, ``grade_frechet``, ``grade_conv``, over ``learner``, which loads and runs the
learner's code, and ``checks``, the comparisons and hints),
``capstone`` (builds the GAN from DIR and replays it against minigan's own), ``isolate`` and
``child`` (the learner's code runs in a child process, with a time limit, never in the grader's).
"""
