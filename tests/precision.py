"""One check for the float32 runs: every array a step computes is float32, not only the
parameters. Parameters and optimizer moments are updated in place (``+=``, ``-=``), so they
keep their dtype whatever precision the arithmetic used; a tolerance of 1e-4 cannot tell a
float32 run from a float64 one either. What forward returns, what backward returns and what
each layer keeps for backward (its cache) can."""

from minigan import backend, losses


def float_arrays(value):
    """The floating-point arrays in a layer's cache (an array, or a tuple holding some)."""
    if isinstance(value, (tuple, list)):
        for item in value:
            yield from float_arrays(item)
    elif hasattr(value, "dtype") and value.dtype.kind == "f":
        yield value


def assert_computes_in(dtype, G, D, z):
    """One forward and backward through G and D (G's samples as D's input, the non-saturating
    loss): the samples, the logits, the loss, both gradients and every float array each layer
    caches are of dtype."""
    xp = backend.xp
    fake = G.forward(z)
    logits = D.forward(fake)
    loss, dlogits = losses.bce_with_logits(logits, 1.0)
    dfake = D.backward(dlogits)
    dz = G.backward(dfake)
    seen = {"G(z)": fake, "D(G(z))": logits, "loss": xp.asarray(loss), "dloss/dlogits": dlogits,
            "dD/dx": dfake, "dG/dz": dz}
    for name, net in (("G", G), ("D", D)):
        for i, layer in enumerate(net.layers):
            for j, a in enumerate(float_arrays(layer.cache)):
                seen[f"{name} layer {i} ({type(layer).__name__}) cache {j}"] = a
    wrong = {name: str(a.dtype) for name, a in seen.items() if a.dtype != dtype}
    assert not wrong, f"computed in another precision than {dtype}: {wrong}"
    G.zero_grad()
    D.zero_grad()
