"""minigan: a from-scratch, autograd-free GAN library on NumPy (CPU) or CuPy (GPU).

Modules, one idea each: ``backend`` (the array module), ``layers``, ``losses``, ``optim``,
``gradcheck``; the GAN training step, data, pictures and checkpoints build on them.
"""

__version__ = "0.1.0"
