"""Float64 NumPy transcriptions of Keras 3's optimizer steps (keras/src/optimizers/*.py, base_optimizer.py),
used as the specification of convx's optimizers."""

import numpy as np


def rule(name, cfg, w, g, s, t, lr):
    """One update_step of rule ``name`` on ``w`` (in place) with state dict ``s``; ``t`` is iterations + 1."""
    if name == "sgd":
        mu = cfg.get("momentum", 0.0)
        if mu:
            s["m"] = s.get("m", 0 * w) * mu - g * lr
            w += s["m"] * mu - g * lr if cfg.get("nesterov") else s["m"]
        else:
            w -= g * lr
    elif name in ("adam", "adamw"):
        b1, b2, eps = cfg.get("beta_1", 0.9), cfg.get("beta_2", 0.999), cfg.get("epsilon", 1e-7)
        m, v = s.setdefault("m", 0 * w), s.setdefault("v", 0 * w)
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        m += (g - m) * (1 - b1)
        v += (g * g - v) * (1 - b2)
        if cfg.get("amsgrad"):
            s["vh"] = np.maximum(s.get("vh", 0 * w), v)
            v = s["vh"]
        w -= m * alpha / (np.sqrt(v) + eps)
    elif name == "adamax":
        b1, b2, eps = cfg.get("beta_1", 0.9), cfg.get("beta_2", 0.999), cfg.get("epsilon", 1e-7)
        m = s.setdefault("m", 0 * w)
        m += (g - m) * (1 - b1)
        s["u"] = np.maximum(b2 * s.get("u", 0 * w), np.abs(g))
        w -= lr * m / ((1 - b1**t) * (s["u"] + eps))
    elif name == "nadam":
        b1, b2, eps = cfg.get("beta_1", 0.9), cfg.get("beta_2", 0.999), cfg.get("epsilon", 1e-7)
        s["prod"] = s.get("prod", 1.0) * b1 * (1 - 0.5 * 0.96**t)
        u_t, u_t1 = b1 * (1 - 0.5 * 0.96**t), b1 * (1 - 0.5 * 0.96 ** (t + 1))
        m, v = s.setdefault("m", 0 * w), s.setdefault("v", 0 * w)
        m += (g - m) * (1 - b1)
        v += (g * g - v) * (1 - b2)
        m_hat = u_t1 * m / (1 - s["prod"] * u_t1) + (1 - u_t) * g / (1 - s["prod"])
        w -= m_hat * lr / (np.sqrt(v / (1 - b2**t)) + eps)
    elif name == "adagrad":
        acc = s.setdefault("acc", 0 * w + cfg.get("initial_accumulator_value", 0.1))
        acc += g * g
        w -= lr * g / np.sqrt(acc + cfg.get("epsilon", 1e-7))
    elif name == "adadelta":
        rho, eps = cfg.get("rho", 0.95), cfg.get("epsilon", 1e-7)
        s["a"] = rho * s.get("a", 0 * w) + (1 - rho) * g * g
        delta = -np.sqrt(s.get("b", 0 * w) + eps) * g / np.sqrt(s["a"] + eps)
        s["b"] = rho * s.get("b", 0 * w) + (1 - rho) * delta * delta
        w += lr * delta
    elif name == "ftrl":
        p = -cfg.get("learning_rate_power", -0.5)
        l1, l2 = cfg.get("l1_regularization_strength", 0.0), cfg.get("l2_regularization_strength", 0.0)
        l2 = l2 + cfg.get("beta", 0.0) / (2 * lr)
        acc = s.setdefault("acc", 0 * w + cfg.get("initial_accumulator_value", 0.1))
        lin = s.setdefault("lin", 0 * w)
        grad = g + 2 * cfg.get("l2_shrinkage_regularization_strength", 0.0) * w
        new_acc = acc + g * g
        lin += grad - (new_acc**p - acc**p) / lr * w
        quadratic = new_acc**p / lr + 2 * l2
        w[...] = (np.clip(lin, -l1, l1) - lin) / quadratic
        s["acc"] = new_acc
    elif name == "lion":
        b1, b2 = cfg.get("beta_1", 0.9), cfg.get("beta_2", 0.99)
        m = s.setdefault("m", 0 * w)
        w -= lr * np.sign(m * b1 + g * (1 - b1))
        s["m"] = m * b2 + g * (1 - b2)
    elif name == "rmsprop":
        rho, mu, eps = cfg.get("rho", 0.9), cfg.get("momentum", 0.0), cfg.get("epsilon", 1e-7)
        s["v"] = rho * s.get("v", 0 * w) + (1 - rho) * g * g
        if cfg.get("centered"):
            s["a"] = rho * s.get("a", 0 * w) + (1 - rho) * g
            den = s["v"] - s["a"] ** 2 + eps
        else:
            den = s["v"] + eps
        inc = lr * g / np.sqrt(den)
        if mu > 0:
            s["mb"] = mu * s.get("mb", 0 * w) + inc
            w -= s["mb"]
        else:
            w -= inc
    else:
        raise KeyError(name)


DEFAULT_LR = {"sgd": 0.01}
WEIGHT_DECAY_DEFAULT = {"adamw": 0.004}


def run(name, cfg, weights, grad_steps, lr_at=None):
    """Keras' apply() for several steps on a list of float64 variables; returns the new weights.

    ``grad_steps``: one list of per-variable gradients per call. ``lr_at(iterations)``
    gives the learning rate (default: the configured float, rounded to float32 as
    Keras stores it in a float32 variable).
    """
    cfg = dict(cfg)
    lr_value = float(np.float32(cfg.get("learning_rate", DEFAULT_LR.get(name, 0.001))))
    ws = [w.astype(np.float64).copy() for w in weights]
    states = [{} for _ in ws]
    shared = {}
    acc = [0 * w for w in ws]
    avg = [0 * w for w in ws]
    steps = cfg.get("gradient_accumulation_steps")
    wd = cfg.get("weight_decay", WEIGHT_DECAY_DEFAULT.get(name))
    for raw_iterations, grads in enumerate(grad_steps):
        iterations = raw_iterations // steps if steps else raw_iterations
        grads = [np.asarray(g, np.float64) for g in grads]
        if cfg.get("loss_scale_factor"):
            grads = [g / cfg["loss_scale_factor"] for g in grads]
        update = True
        if steps:
            update = (raw_iterations + 1) % steps == 0
            if update:
                grads = [(g + a) / steps for g, a in zip(grads, acc)]
                acc = [0 * w for w in ws]
            else:
                acc = [a + g for a, g in zip(acc, grads)]
        if update:
            lr = lr_at(raw_iterations) if lr_at else lr_value
            grads = clip(cfg, grads)
            for w in ws:
                if wd is not None:
                    w -= w * wd * lr
            for k, (w, g) in enumerate(zip(ws, grads)):
                # Nadam's product is per optimizer, not per variable
                state = states[k]
                if name == "nadam":
                    state["prod"] = shared.get("prod", 1.0)
                rule(name, cfg, w, g, state, iterations + 1, lr)
            if name == "nadam":
                shared["prod"] = states[0]["prod"]
        if cfg.get("use_ema"):
            mu = cfg.get("ema_momentum", 0.99) if iterations != 0 else 0.0
            avg = [mu * a + (1 - mu) * w for a, w in zip(avg, ws)]
            freq = cfg.get("ema_overwrite_frequency")
            if freq and (iterations + 1) % freq == 0:
                ws = [a.copy() for a in avg]
    return ws, avg


def clip(cfg, grads):
    if cfg.get("clipnorm"):
        c = cfg["clipnorm"]
        return [g * c / max(np.sqrt(np.sum(g * g)), c) for g in grads]
    if cfg.get("global_clipnorm"):
        c = cfg["global_clipnorm"]
        norm = np.sqrt(sum(np.sum(g * g) for g in grads))
        return [g * c * min(1.0 / norm, 1.0 / c) for g in grads]
    if cfg.get("clipvalue"):
        return [np.clip(g, -cfg["clipvalue"], cfg["clipvalue"]) for g in grads]
    return grads
