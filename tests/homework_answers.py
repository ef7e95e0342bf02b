"""A model learner's answers to the homework, and the classic mistakes planted in them.

``fill(folder, answers)`` replaces each TODO of a fresh skeleton with the answer's body, written
plainly as a learner would (two passes of D in the discriminator step, Adam as its formula), not
copied from minigan. ``PLANTED`` holds, for each hint of the grader, one or more one-line edits
of these answers that make exactly that mistake.
"""

import textwrap
from pathlib import Path

from minigan.homework.parts import PARTS, todo_message

ANSWERS = {
    "softplus": """
        xp = backend.xp
        return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))""",
    "bce_with_logits": """
        loss = backend.xp.mean((1 - targets) * logits + softplus(-logits))
        grad = (sigmoid(logits) - targets) / logits.size
        return loss, grad""",
    "generator_loss_minimax": """
        return -backend.xp.mean(softplus(fake_logits)), -sigmoid(fake_logits) / fake_logits.size""",
    "generator_loss_nonsaturating": """
        loss = backend.xp.mean(softplus(-fake_logits))
        return loss, (sigmoid(fake_logits) - 1) / fake_logits.size""",
    "Dense.forward": """
        self.cache = x
        return x @ self.params["W"] + self.params["b"]""",
    "Dense.backward": """
        x = self.cache
        if param_grads:
            self.grads["W"] += x.T @ dout
            self.grads["b"] += dout.sum(axis=0)
        if input_grad:
            return dout @ self.params["W"].T
        return None""",
    "LeakyReLU.forward": """
        self.cache = x
        return backend.xp.where(x > 0, x, self.negative_slope * x)""",
    "LeakyReLU.backward": """
        return dout * backend.xp.where(self.cache > 0, 1.0, self.negative_slope)""",
    "Tanh.forward": """
        self.cache = backend.xp.tanh(x)
        return self.cache""",
    "Tanh.backward": """
        return dout * (1 - self.cache ** 2)""",
    "sigmoid": """
        xp = backend.xp
        e = xp.exp(-xp.abs(x))
        return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))""",
    "Sigmoid.forward": """
        self.cache = sigmoid(x)
        return self.cache""",
    "Sigmoid.backward": """
        return dout * self.cache * (1 - self.cache)""",
    "Sequential.backward": """
        for i in reversed(range(len(self.layers))):
            layer = self.layers[i]
            if layer.params:  # a layer with parameters takes the two switches
                dout = layer.backward(dout, param_grads=param_grads,
                                      input_grad=input_grad or i > 0)
            else:
                dout = layer.backward(dout)
        return dout if input_grad else None""",
    "SGD.step": """
        self.t += 1
        for p, b in zip(self.params, self.b):
            if self.momentum == 0:
                p.data[...] = p.data - self.lr * p.grad
                continue
            if self.t == 1:
                b[...] = p.grad
            else:
                b[...] = self.momentum * b + p.grad
            p.data[...] = p.data - self.lr * b""",
    "Adam.step": """
        self.t += 1
        beta1, beta2 = self.betas
        for p, m, v in zip(self.params, self.m, self.v):
            m[...] = beta1 * m + (1 - beta1) * p.grad
            v[...] = beta2 * v + (1 - beta2) * p.grad ** 2
            m_hat = m / (1 - beta1 ** self.t)
            v_hat = v / (1 - beta2 ** self.t)
            p.data[...] = p.data - self.lr * m_hat / (backend.xp.sqrt(v_hat) + self.eps)""",
    "discriminator_step": """
        xp = backend.xp
        D.zero_grad()
        fake = G.forward(z)
        logits_real = D.forward(real)
        loss_real, dlogits = bce_with_logits(logits_real, real_target)
        D.backward(dlogits, input_grad=False)
        logits_fake = D.forward(fake)
        loss_fake, dlogits = bce_with_logits(logits_fake, 0.0)
        D.backward(dlogits, input_grad=False)
        opt_D.step()
        d_real, d_fake = xp.mean(sigmoid(logits_real)), xp.mean(sigmoid(logits_fake))
        return loss_real + loss_fake, d_real, d_fake""",
    "generator_step": """
        G.zero_grad()
        logits = D.forward(G.forward(z))
        loss, dlogits = GENERATOR_LOSSES[gen_loss](logits)
        dfake = D.backward(dlogits, param_grads=False)
        G.backward(dfake, input_grad=False)
        opt_G.step()
        return loss""",
    "least_squares": """
        diff = out - target
        return 0.5 * backend.xp.mean(diff ** 2), diff / out.size""",
    "generator_loss_least_squares": """
        return least_squares(fake_out, 1.0)""",
    "hinge_real": """
        loss = backend.xp.mean(backend.xp.maximum(1 - real_out, 0))
        return loss, -1.0 * (real_out < 1) / real_out.size""",
    "hinge_fake": """
        loss = backend.xp.mean(backend.xp.maximum(1 + fake_out, 0))
        return loss, 1.0 * (fake_out > -1) / fake_out.size""",
    "wasserstein_real": """
        return -backend.xp.mean(real_out), -backend.xp.ones_like(real_out) / real_out.size""",
    "wasserstein_fake": """
        return backend.xp.mean(fake_out), backend.xp.ones_like(fake_out) / fake_out.size""",
    "generator_loss_wasserstein": """
        return -backend.xp.mean(fake_out), -backend.xp.ones_like(fake_out) / fake_out.size""",
    "SpectralNorm.backward": """
        if param_grads:
            self.inner.grads["W"].fill(0)  # the inner backward adds dL/dW_eff here
        dx = self.inner.backward(dout, param_grads=param_grads, input_grad=input_grad)
        if param_grads:
            self.add_weight_grad(self.inner.grads["W"])
        return dx""",
    "SpectralNorm.add_weight_grad": """
        sigma, u, v = self.cache, self.buffers["u"], self.buffers["v"]
        W_eff = self.inner.params["W"]
        G = as_matrix(dW_eff, self.inner)  # (out, in * k * k)
        dW = (G - backend.xp.sum(dW_eff * W_eff) * backend.xp.outer(u, v)) / sigma
        as_matrix(self.grads["W"], self.inner)[...] += dW""",
    "double_backward": """
        delta_bar = dg.reshape(dg.shape[0], -1)
        for layer, dout in zip(D.layers, douts):
            if isinstance(layer, SpectralNorm):
                layer.add_weight_grad(delta_bar.T @ dout)
                delta_bar = delta_bar @ layer.inner.params["W"]
            elif isinstance(layer, Dense):
                layer.grads["W"] += delta_bar.T @ dout
                delta_bar = delta_bar @ layer.params["W"]
            elif isinstance(layer, LeakyReLU):
                delta_bar = delta_bar * layer.cache
            elif isinstance(layer, Dropout) and layer.cache[0] is not None:
                delta_bar = delta_bar * layer.cache[0]""",
    "r1": """
        n = x.shape[0]
        g, douts = backward_of_ones(D, x)
        g = g.reshape(n, -1)
        penalty = gamma / 2 * backend.xp.mean((g * g).sum(axis=1))
        double_backward(D, gamma / n * g, douts)
        return penalty""",
    "gradient_penalty": """
        xp = backend.xp
        n = real.shape[0]
        eps = rng.random((n, 1))
        x_hat = eps * real + (1 - eps) * fake
        g, douts = backward_of_ones(D, x_hat)
        g = g.reshape(n, -1)
        norm = xp.sqrt((g * g).sum(axis=1, keepdims=True))
        penalty = lam * xp.mean((norm - 1) ** 2)
        safe = xp.where(norm > 0, norm, 1.0)
        double_backward(D, 2 * lam / n * (norm - 1) / safe * g, douts)
        return penalty""",
    "gaussian_stats": """
        feats = np.asarray(feats, dtype=np.float64)
        n = feats.shape[0]
        mu = feats.mean(axis=0)
        centred = feats - mu
        return mu, centred.T @ centred / (n - 1)""",
    "sqrtm_psd": """
        w, V = np.linalg.eigh(S)
        w = np.clip(w, 0, None)
        return V @ np.diag(np.sqrt(w)) @ V.T""",
    "frechet_distance": """
        r1 = sqrtm_psd(S1)
        middle = r1 @ S2 @ r1
        eig = np.linalg.eigvalsh((middle + middle.T) / 2)
        tr_sqrt = np.sum(np.sqrt(np.clip(eig, 0, None)))
        diff = mu1 - mu2
        return float(diff @ diff + np.trace(S1) + np.trace(S2) - 2 * tr_sqrt)""",
    "Conv2D.backward": """
        xp = backend.xp
        cols, x_pad_shape, x_shape = self.cache
        W = self.params["W"]  # (C_out, C_in, k, k)
        k, s, p = self.kernel_size, self.stride, self.padding
        n, c_out, h_out, w_out = dout.shape
        if param_grads:
            dout_flat = dout.transpose(1, 2, 3, 0).reshape(c_out, -1)  # columns (i, j, n)
            self.grads["W"] += (dout_flat @ cols.T).reshape(W.shape)
            self.grads["b"] += dout.sum(axis=(0, 2, 3))
        if not input_grad:
            return None
        dx_pad = xp.zeros(x_pad_shape, dtype=dout.dtype)
        for u in range(k):
            for v in range(k):  # offset (u, v) of window (i, j) read x_pad[..., i*s+u, j*s+v]
                dx_pad[:, :, u:u + s * h_out:s, v:v + s * w_out:s] += xp.einsum(
                    "nfij,fc->ncij", dout, W[:, :, u, v])
        return dx_pad[:, :, p:p + x_shape[2], p:p + x_shape[3]]""",
    "ConvTranspose2D.forward": """
        xp = backend.xp
        n, c_in, h, w = x.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        _, c_out, h_out, w_out = self.output_shape(x.shape)
        W = self.params["W"]  # (C_in, C_out, k, k)
        canvas = xp.zeros((n, c_out, h_out + 2 * p, w_out + 2 * p), dtype=x.dtype)
        for u in range(k):
            for v in range(k):  # pixel (i, j) paints its weights at offset (u, v): (i*s+u, j*s+v)
                canvas[:, :, u:u + s * h:s, v:v + s * w:s] += xp.einsum(
                    "ncij,cd->ndij", x, W[:, :, u, v])
        self.cache = x
        out = canvas[:, :, p:p + h_out, p:p + w_out]
        return out + self.params["b"].reshape(1, -1, 1, 1)""",
    "ConvTranspose2D.backward": """
        xp = backend.xp
        x = self.cache
        n, c_in, h, w = x.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        W = self.params["W"]
        dout_pad = xp.pad(dout, ((0, 0), (0, 0), (p, p), (p, p)))
        dx = xp.zeros_like(x)
        for u in range(k):
            for v in range(k):  # what pixel (i, j) painted at (i*s + u, j*s + v)
                seen = dout_pad[:, :, u:u + s * h:s, v:v + s * w:s]  # (N, C_out, H, W)
                if param_grads:
                    self.grads["W"][:, :, u, v] += xp.einsum("ncij,ndij->cd", x, seen)
                dx += xp.einsum("cd,ndij->ncij", W[:, :, u, v], seen)
        if param_grads:
            self.grads["b"] += dout.sum(axis=(0, 2, 3))
        return dx if input_grad else None""",
    "BatchNorm.backward": """
        x_hat, inv_std, training = self.cache
        axes = (0,) if dout.ndim == 2 else (0, 2, 3)
        gamma = self.params["gamma"].reshape(inv_std.shape)
        if param_grads:
            self.grads["gamma"] += (dout * x_hat).sum(axis=axes)
            self.grads["beta"] += dout.sum(axis=axes)
        if not input_grad:
            return None
        if not training:
            return gamma * inv_std * dout
        n = dout.size // self.num_features
        sum_dout = dout.sum(axis=axes, keepdims=True)
        sum_dout_xhat = (dout * x_hat).sum(axis=axes, keepdims=True)
        return gamma * inv_std / n * (n * dout - sum_dout - x_hat * sum_dout_xhat)""",
}

# hint: [(function, the answer's text, the mistake's text[, text, mistake's text ...]), ...]:
# each tuple is one planted mistake, the only one in its part (tests/test_homework.py plants
# one a part in each grading)
PLANTED = {
    "transpose": [("Dense.backward", 'dout @ self.params["W"].T', 'dout @ self.params["W"]'),
                  ("Dense.backward", "x.T @ dout", "dout.T @ x")],
    "mean": [("bce_with_logits", " / logits.size", ""),
             ("Dense.backward", "dout.sum(axis=0)", "dout.mean(axis=0)"),
             ("discriminator_step", "return loss_real + loss_fake,",
              "return (loss_real + loss_fake) / 2,"),
             ("wasserstein_fake", " / fake_out.size", ""),
             ("r1", "gamma / n * g", "gamma * g")],
    "sign": [("bce_with_logits", "(sigmoid(logits) - targets)", "(targets - sigmoid(logits))"),
             ("SGD.step", "p.data - self.lr * p.grad", "p.data + self.lr * p.grad"),
             ("hinge_real", "-1.0 * (real_out < 1)", "1.0 * (real_out < 1)")],
    "derivative": [("Tanh.backward", "dout * (1 - self.cache ** 2)", "dout"),
                   ("LeakyReLU.backward", "dout * backend.xp.where(self.cache > 0, 1.0, "
                    "self.negative_slope)", "dout")],
    "no_dout": [("Tanh.backward", "dout * (1 - self.cache ** 2)", "(1 - self.cache ** 2)"),
                ("LeakyReLU.backward", "dout * backend.xp.where(", "backend.xp.where(")],
    "assign": [("Dense.backward", 'self.grads["W"] += x.T @ dout',
                'self.grads["W"] = x.T @ dout'),
               ("Dense.backward", 'self.grads["b"] += dout.sum(axis=0)',
                'self.grads["b"][...] = dout.sum(axis=0)')],
    "overflow": [("sigmoid", "return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))",
                  "return 1 / (1 + xp.exp(-x))"),
                 ("softplus", "return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))",
                  "return xp.log(1 + xp.exp(x))")],
    # the losses written as logs of the given (stable) sigmoid: right gradients, log(0) at +-1e4
    "log_prob": [("bce_with_logits", "loss = backend.xp.mean((1 - targets) * logits + "
                  "softplus(-logits))", "loss = -backend.xp.mean(targets * backend.xp.log("
                  "sigmoid(logits)) + (1 - targets) * backend.xp.log(1 - sigmoid(logits)))"),
                 ("generator_loss_nonsaturating", "backend.xp.mean(softplus(-fake_logits))",
                  "-backend.xp.mean(backend.xp.log(sigmoid(fake_logits)))")],
    "adam_t0": [("Adam.step", "self.t += 1\nbeta1", "beta1",
                 "+ self.eps)", "+ self.eps)\nself.t += 1  # after the update: t from 0"),
                ("Adam.step", "self.t += 1\nbeta1", "beta1",
                 "+ self.eps)", "+ self.eps)\nself.t += 1",
                 "m_hat = m / (1 - beta1 ** self.t)", "m_hat = m * (1 / (1 - beta1 ** self.t))")],
    "adam_no_correction": [("Adam.step", "m_hat = m / (1 - beta1 ** self.t)", "m_hat = m",
                            "v_hat = v / (1 - beta2 ** self.t)", "v_hat = v")],
    "leaky_slope": [("LeakyReLU.backward", "self.negative_slope)", "0.0)")],
    "r1_half": [("r1", "gamma / 2 *", "gamma *"),
                ("r1", "gamma / 2 *", "gamma *", "gamma / n * g", "2 * gamma / n * g")],
    "eps_sqrt": [("Adam.step", "backend.xp.sqrt(v_hat) + self.eps",
                  "backend.xp.sqrt(v_hat + self.eps)")],
    "d_touched": [("generator_step", "D.backward(dlogits, param_grads=False)",
                   "D.backward(dlogits)"),
                  ("generator_step", "G.zero_grad()", "G.zero_grad()\nD.zero_grad()")],
    "zero_grad": [("discriminator_step", "D.zero_grad()\n", "")],
    "lsq_half": [("least_squares", "0.5 * ", ""),
                 ("least_squares", "0.5 * ", "", "diff / out.size", "2 * diff / out.size")],
    "kink": [("hinge_real", "(real_out < 1)", "(real_out <= 1)"),
             ("hinge_fake", "(fake_out > -1)", "(fake_out >= -1)")],
    "sn_term": [("SpectralNorm.add_weight_grad",
                 "(G - backend.xp.sum(dW_eff * W_eff) * backend.xp.outer(u, v)) / sigma",
                 "G / sigma")],
    "sn_layout": [("SpectralNorm.add_weight_grad", "G = as_matrix(dW_eff, self.inner)",
                   "G = dW_eff", 'as_matrix(self.grads["W"], self.inner)[...] +=',
                   'self.grads["W"] +=')],
    "norm_axis": [("r1", "(g * g).sum(axis=1)", "(g * g).sum(axis=0)"),
                  ("gradient_penalty", "sum(axis=1, keepdims=True)",
                   "sum(axis=0, keepdims=True)")],
    "sqrt_deriv": [("gradient_penalty", "(norm - 1) / safe * g", "(norm - 1) * g")],
    "eps_swapped": [("gradient_penalty", "eps * real + (1 - eps) * fake",
                     "eps * fake + (1 - eps) * real")],
    "per_pixel": [("gradient_penalty", "rng.random((n, 1))", "rng.random(real.shape)")],
    "cov_n": [("gaussian_stats", "/ (n - 1)", "/ n")],
    "elementwise_sqrt": [("sqrtm_psd", "return V @ np.diag(np.sqrt(w)) @ V.T",
                          "return np.sqrt(S)")],
    "sqrt_product": [("frechet_distance", "middle = r1 @ S2 @ r1",
                      "middle = r1 @ sqrtm_psd(S2)",
                      "np.sqrt(np.clip(eig, 0, None))", "eig")],
    "fd_squared": [("frechet_distance", "return float(diff @ diff + np.trace(S1) + np.trace(S2) "
                    "- 2 * tr_sqrt)", "return float(np.sqrt(diff @ diff + np.trace(S1) + "
                    "np.trace(S2) - 2 * tr_sqrt))")],
    "eig_clip": [("sqrtm_psd", "w = np.clip(w, 0, None)\n", "")],
    "flip": [("Conv2D.backward", "W[:, :, u, v]", "W[:, :, k - 1 - u, k - 1 - v]"),
             ("ConvTranspose2D.forward", "W[:, :, u, v]", "W[:, :, k - 1 - u, k - 1 - v]")],
    "overlap": [("Conv2D.backward", "v:v + s * w_out:s] +=", "v:v + s * w_out:s] ="),
                ("ConvTranspose2D.forward", "v:v + s * w:s] +=", "v:v + s * w:s] =")],
    "stride": [("Conv2D.backward", "u:u + s * h_out:s, v:v + s * w_out:s]",
                "u:u + h_out, v:v + w_out]"),
               ("ConvTranspose2D.forward", "u:u + s * h:s, v:v + s * w:s]", "u:u + h, v:v + w]")],
    "pad_crop": [("Conv2D.backward", "return dx_pad[:, :, p:p + x_shape[2], p:p + x_shape[3]]",
                  "return dx_pad"),
                 ("ConvTranspose2D.forward", "out = canvas[:, :, p:p + h_out, p:p + w_out]",
                  "out = canvas")],
    "bn_mean": [("BatchNorm.backward", "(n * dout - sum_dout - ", "(n * dout - ")],
    "bn_var": [("BatchNorm.backward", " - x_hat * sum_dout_xhat)", ")")],
    "bn_constant": [("BatchNorm.backward", "return gamma * inv_std / n * (n * dout - sum_dout - "
                     "x_hat * sum_dout_xhat)", "return gamma * inv_std * dout")],
    "bn_eval": [("BatchNorm.backward", "if not training:\n    return gamma * inv_std * dout\n",
                 "")],
    "in_place": [("SGD.step", "p.data[...] = p.data - self.lr * p.grad",
                  "data = p.data - self.lr * p.grad"),
                 ("SGD.step", "p.data[...] = p.data - self.lr * p.grad",
                  "p.data -= self.lr * p.grad")],
}


def body(name, text=None):
    return textwrap.dedent(ANSWERS[name] if text is None else text).strip("\n")


def fill(folder, answers=None, names=None):
    """Replace the TODO of every function in ``names`` (default: all) with its answer.

    answers: {function: body text} overriding ANSWERS (a planted mistake)."""
    answers = answers or {}
    folder = Path(folder)
    for part in PARTS:
        path = folder / part.file
        text = path.read_text()
        for name in part.functions:
            if names is not None and name not in names:
                continue
            line = f'raise NotImplementedError("{todo_message(part, name)}")'
            start = text.index(line)
            indent = text[text.rindex("\n", 0, start) + 1:start]
            code = textwrap.indent(answers.get(name, body(name)), indent)[len(indent):]
            text = text[:start] + code + text[start + len(line):]
        path.write_text(text)


def edited(name, *edits):
    """{name: the answer to name with each edit (old, new, old, new, ...) made once}."""
    text = body(name)
    for old, new in zip(edits[::2], edits[1::2]):
        assert old in text, f"{old!r} is not in the answer to {name}"
        text = text.replace(old, new, 1)
    return {name: text}


def planted(hint, i):
    """The answers with the i-th planted mistake of ``hint``: {function: body}."""
    return edited(*PLANTED[hint][i])
