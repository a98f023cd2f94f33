"""Checking a student's ``nn.Module``, layer by layer: what lessons 2 and 3 (and any lesson
that has students write layers) share.

- NumPy versions of the steps between layers (ReLU, pooling, sigmoid, softmax), for judging;
- collecting from a module: its parameters, known weights loaded into its layers, forward hooks
  recording what goes into and comes out of each layer (``layer_forward``, ``chain``);
- judging modules: their kind, parameter names and shapes, conv settings, and each step
  between layers against the NumPy step of the layer before (``judge_stage``).
"""
from __future__ import annotations

import re
from typing import Dict, Sequence

import numpy as np

from coursekit.checks import close, describe, doing, fail, fmt_shape, kind, where_differs


# --- NumPy versions of the steps between layers (for judging, not for the notebook) ---


def relu(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0)


def _pool(a: np.ndarray, reduce) -> np.ndarray:
    """2 × 2 windows, stride 2, over the last two axes (an odd last row / column is dropped)."""
    *lead, h, w = a.shape
    a = a[..., : h // 2 * 2, : w // 2 * 2]
    return reduce(a.reshape(*lead, h // 2, 2, w // 2, 2), axis=(-3, -1))


def max_pool2(a: np.ndarray) -> np.ndarray:
    return _pool(a, np.max)


def avg_pool2(a: np.ndarray) -> np.ndarray:
    return _pool(a, np.mean)


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-a))


def softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def tolerance(ref: np.ndarray) -> float:
    return 1e-5 * max(1.0, float(np.abs(ref).max()) if np.size(ref) else 1.0)


def random_images(rng, n: int) -> np.ndarray:
    """(n, 1, 28, 28) float32 in [0, 1]: blotchy strokes on a black background, like scaled digits."""
    x = rng.random((n, 1, 28, 28), dtype=np.float32)
    x *= rng.random((n, 1, 28, 28)) < 0.35
    x[:, :, :3] = 0
    x[:, :, -3:] = 0
    return x


def random_weights(rng, shapes: Dict[str, tuple], *, bias_scale: float = 0.3) -> Dict[str, np.ndarray]:
    """{"w.<name>": float32 array}: weights ~ N(0, 2 / fan_in), biases ~ N(0, bias_scale²), so
    every layer's output has both signs (a missing ReLU shows) and keeps a size of about 1."""
    out = {}
    for name, shape in shapes.items():
        if name.endswith("bias"):
            out[f"w.{name}"] = (rng.normal(0, bias_scale, shape)).astype(np.float32)
        else:
            fan_in = int(np.prod(shape[1:]))
            out[f"w.{name}"] = (rng.normal(0, np.sqrt(2 / fan_in), shape)).astype(np.float32)
    return out


def weights_of(inputs: dict) -> Dict[str, np.ndarray]:
    """{"conv1.weight": array, ...} from the "w.*" entries of ``inputs``."""
    return {k[2:]: v for k, v in inputs.items() if k.startswith("w.")}


# --- collecting from an nn.Module: parameters, layers, hooks -------------------------

# A method that was meant to be __init__: init, _init_, __init, __int__, __innit__, __inti__ ...
MISSPELT_INIT = re.compile(r"_*(?:init|int|innit|inti|intit|initt|iint)_*")


def make_module(cls, name: str):
    """``cls()`` with a fixed seed, without touching the notebook's random state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        doing(f"creating {name}()")
        return cls()


def record_module(net, layer_names: Sequence[str], data: dict) -> bool:
    """Record what ``net`` is: its parameters (names, shapes) and each named layer's kind and settings.
    Returns whether it is an ``nn.Module``."""
    import torch

    data["net.kind"] = kind(net)
    data["net.is_module"] = isinstance(net, torch.nn.Module)
    if not data["net.is_module"]:
        return False
    misspelt = [n for n in vars(type(net)) if n != "__init__" and MISSPELT_INIT.fullmatch(n)]
    if misspelt:
        data["net.misspelt_init"] = misspelt[0]          # def init(self): Python never calls it
    params = list(net.named_parameters())
    data["params.names"] = np.array([n for n, _ in params] or [""], dtype=str)[: len(params)]
    data["params.shapes"] = np.array([fmt_shape(tuple(p.shape)) for _, p in params] or [""], dtype=str)[: len(params)]
    for name in layer_names:
        layer = getattr(net, name, None)
        data[f"{name}.kind"] = kind(layer)
        for attr in ("kernel_size", "stride", "padding", "dilation", "groups", "in_features", "out_features"):
            if hasattr(layer, attr):
                data[f"{name}.{attr}"] = str(getattr(layer, attr))
    return True


def load_weights(net, weights: Dict[str, np.ndarray], data: dict) -> bool:
    """Load ``weights`` into ``net`` if it has exactly those parameter names and shapes."""
    import torch

    have = {n: tuple(p.shape) for n, p in net.named_parameters()}
    ok = all(have.get(n) == tuple(w.shape) for n, w in weights.items())
    if ok:
        net.load_state_dict({n: torch.from_numpy(w.copy()) for n, w in weights.items()}, strict=False)
    data["loaded"] = bool(ok)
    return ok


COURSE_CONV = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1}


def _is_course_layer(layer, weight: tuple, bias: tuple) -> bool:
    import torch

    if len(weight) == 4:
        ok = isinstance(layer, torch.nn.Conv2d) and all(
            getattr(layer, k) == v for k, v in COURSE_CONV.items()) and layer.padding_mode == "zeros"
    else:
        ok = isinstance(layer, torch.nn.Linear)
    return ok and tuple(layer.weight.shape) == weight and layer.bias is not None and tuple(layer.bias.shape) == bias


def repair_layers(net, shapes: Dict[str, tuple], data: dict) -> None:
    """Give ``net`` the course's layers where its ``__init__`` made others, so that its ``forward`` can
    be judged on its own (a wrong layer size costs the __init__ part only).

    shapes: the course's parameter shapes, e.g. {"conv1.weight": (6, 1, 5, 5), "conv1.bias": (6,), ...}.
    Each layer whose kind, parameter shapes or settings differ (or that is missing) is replaced by
    a fresh ``nn.Conv2d(in, out, k)`` / ``nn.Linear(in, out)``; their names go to ``data["repaired"]``.
    """
    import torch

    repaired = []
    for layer in dict.fromkeys(n.split(".")[0] for n in shapes):
        weight, bias = tuple(shapes[f"{layer}.weight"]), tuple(shapes[f"{layer}.bias"])
        if _is_course_layer(getattr(net, layer, None), weight, bias):
            continue
        fresh = (torch.nn.Conv2d(weight[1], weight[0], weight[2:]) if len(weight) == 4
                 else torch.nn.Linear(weight[1], weight[0]))
        try:
            setattr(net, layer, fresh)
        except Exception:  # a property, __slots__ ...: forward will be judged with what there is
            continue
        repaired.append(layer)
    data["repaired"] = np.array(repaired or [""], dtype=str)[: len(repaired)]


def layer_forward(net, x: np.ndarray, layer_names: Sequence[str], data: dict, call: str) -> None:
    """Call ``net(x)`` with hooks on the named layers; record each layer's first input (``<layer>.in``),
    first output (``<layer>.out``) and number of calls, and the result (``out``), then ``net(x[:1])``
    (``single``)."""
    import torch

    hooks, handles = {}, []

    def pre(name):
        def hook(module, args):
            hooks[f"{name}.calls"] = hooks.get(f"{name}.calls", 0) + 1
            if f"{name}.in" not in hooks and args and isinstance(args[0], torch.Tensor):
                hooks[f"{name}.in"] = args[0].detach().float().cpu().numpy().copy()
        return hook

    def post(name):
        def hook(module, args, output):
            if f"{name}.out" not in hooks and isinstance(output, torch.Tensor):
                hooks[f"{name}.out"] = output.detach().float().cpu().numpy().copy()
        return hook

    for name in layer_names:
        layer = getattr(net, name, None)
        if isinstance(layer, torch.nn.Module):
            handles += [layer.register_forward_pre_hook(pre(name)), layer.register_forward_hook(post(name))]
    try:
        with torch.no_grad():
            doing(f"calling {call}(x) with x of shape {fmt_shape(x.shape)} float32")
            out = net(torch.from_numpy(x.copy()))
    finally:
        for h in handles:
            h.remove()
    data.update(hooks)
    describe(out, "out", data)
    with torch.no_grad():
        doing(f"calling {call}(x) with a batch of one image, x of shape {fmt_shape(x[:1].shape)} float32")
        describe(net(torch.from_numpy(x[:1].copy())), "single", data)


def chain(net, x: np.ndarray, steps: Sequence[str], data: dict) -> None:
    """What the network should compute, built from the student's own layers: ``steps`` are layer
    names, "relu_pool" or "flatten"; the result goes to ``chain.value`` (nothing if a layer fails)."""
    import torch

    a = x.copy()
    try:
        with torch.no_grad():
            for step in steps:
                if step == "relu_pool":
                    a = max_pool2(relu(a))
                elif step == "relu":
                    a = relu(a)
                elif step == "flatten":
                    a = a.reshape(len(a), -1)
                else:
                    a = getattr(net, step)(torch.from_numpy(np.ascontiguousarray(a))).float().numpy()
    except Exception:  # the student's layer does not take this shape: the judges say why
        return
    data["chain.value"] = a


# --- judging modules: parameters, layers, steps ---------------------------------------

def _have(found) -> Dict[str, tuple]:
    names = [str(n) for n in np.atleast_1d(found.get("params.names", np.array([], dtype=str)))]
    shapes = [str(s) for s in np.atleast_1d(found.get("params.shapes", np.array([], dtype=str)))]
    return dict(zip(names, shapes))


def judge_module_kind(found, what: str, cls: str) -> None:
    if not found.get("net.is_module"):
        fail(f"{what} should create a torch.nn.Module, but it made {KIND(found.get('net.kind'))}.",
             f"write `class {cls}(nn.Module):` and call super().__init__() first thing in __init__.")


def KIND(k) -> str:
    from coursekit.checks import KIND_NAMES

    return KIND_NAMES.get(str(k), f"a {k}")


def _layer_call(layer: str, shape: tuple) -> str:
    if len(shape) == 4:
        return f"nn.Conv2d(in_channels={shape[1]}, out_channels={shape[0]}, kernel_size={shape[2]})"
    return f"nn.Linear(in_features={shape[1]}, out_features={shape[0]})"


def judge_params(found, expected: Dict[str, tuple], what: str, shape_hints: Dict[tuple, str] = None) -> None:
    """The module's parameters are exactly ``expected`` (name -> shape); messages name the layer."""
    have = _have(found)
    listing = ", ".join(f"{n} {s}" for n, s in have.items()) or "none"
    layers = list(dict.fromkeys(n.split(".")[0] for n in expected))
    for layer in layers:
        mine = [n for n in have if n.split(".")[0] == layer]
        if f"{layer}.weight" in have:
            continue
        if mine:
            fail(f"{what}.{layer} should be the layer itself, with parameters {layer}.weight and {layer}.bias; "
                 f"found {', '.join(mine)}.",
                 f"assign the nn.Conv2d / nn.Linear layer directly to self.{layer}, not a container (nn.Sequential) "
                 f"holding it: later lessons load trained weights by these names.")
        if found.get("net.misspelt_init"):
            name = found["net.misspelt_init"]
            fail(f"{what} has no layer called {layer}: its class defines {name}(), not __init__(), so Python "
                 f"never calls it and the layers are never created.",
                 "spell it __init__: two underscores, the word init, two underscores.")
        kinds = found.get(f"{layer}.kind", "nothing")
        fail(f"{what} has no layer called {layer} (found {KIND(kinds) if kinds != 'nothing' else 'no such attribute'}; "
             f"parameters: {listing}).",
             f"create it in __init__ as self.{layer} = ... (the names {', '.join(layers)} are the course's: "
             f"later lessons load trained weights by these names); call super().__init__() before that.")
    for name, shape in expected.items():
        layer = name.split(".")[0]
        if name not in have:
            fail(f"{what}.{layer} has no bias ({name} is missing).",
                 "keep the bias, the default of the layer (don't pass bias=False).")
        got = tuple(int(s) for s in have[name].strip("(),").split(",") if s.strip())
        if got == tuple(shape):
            continue
        msg = f"{what}.{name} should have shape {fmt_shape(shape)}, but it has shape {fmt_shape(got)}."
        hint = (shape_hints or {}).get((name, got))
        if hint is None and name.endswith("weight") and len(got) == len(shape) and got[:2] == shape[1::-1] \
                and got[2:] == shape[2:]:
            hint = (f"the numbers of input and output {'channels' if len(shape) == 4 else 'features'} are swapped: "
                    f"the layer takes {shape[1]} and gives {shape[0]}: {_layer_call(layer, shape)}.")
        if hint is None and len(shape) == 4 and len(got) == 4 and got[:2] == shape[:2]:
            hint = (f"{layer}'s kernels should be {shape[2]} × {shape[3]}: kernel_size={shape[2]}.")
        if hint is None:
            hint = (f"{_layer_call(layer, shape).split('(')[0]} has a weight of shape "
                    f"{'(out_channels, in_channels, k, k)' if len(shape) == 4 else '(out_features, in_features)'}"
                    f" and a bias of shape (out,): {layer} is {_layer_call(layer, expected[f'{layer}.weight'])}.")
        fail(msg, hint)
    extra = [n for n in have if n not in expected]
    if extra:
        fail(f"{what} has parameters the course's network does not have: {', '.join(extra)}.",
             f"the network has exactly the layers {', '.join(layers)}; ReLU and pooling have no parameters.")


def judge_conv_settings(found, layer: str) -> None:
    """No padding, stride 1, no dilation, groups 1: the course's convolutions."""
    for attr, want, hint in (
            ("padding", "(0, 0)", "this network uses no padding: each 5 × 5 convolution trims 2 pixels on every "
                                  "side (28 → 24), and the layer sizes after it count on that."),
            ("stride", "(1, 1)", "the kernel moves one pixel at a time (stride 1, the default); the 2 × 2 pooling "
                                 "does the shrinking."),
            ("dilation", "(1, 1)", "keep the default dilation of 1."),
            ("groups", "1", "keep the default groups=1: every output channel looks at all input channels.")):
        got = found.get(f"{layer}.{attr}")
        if got is not None and got not in (want, want.strip("()").split(",")[0]):
            fail(f"{layer} has {attr}={got}, expected {attr}={want}.", hint)


def _describe_stage(before: np.ndarray, layer: str) -> Dict[str, np.ndarray]:
    """What can come after a conv layer: the right step and the usual mistakes."""
    return {
        "no ReLU": max_pool2(before),
        "average pooling": avg_pool2(relu(before)),
        "average pooling, no ReLU": avg_pool2(before),
        "sigmoid": max_pool2(sigmoid(before)),
        "tanh": max_pool2(np.tanh(before)),
    }


STAGE_HINTS = {
    "no ReLU": ("the ReLU after {layer} is missing: {after} has negative values (down to {low:.3g}).",
                "apply ReLU to {layer}'s output (before or after the pooling: for max-pooling both give the same "
                "numbers). Without it, conv2 after conv1 is just one bigger linear filter."),
    "average pooling": ("{after} is the 2 × 2 *average* of {layer}'s output after ReLU: average pooling instead of "
                        "max pooling.",
                        "this network keeps the largest value of each 2 × 2 block: max-pooling."),
    "average pooling, no ReLU": ("{after} is the 2 × 2 *average* of {layer}'s output, without ReLU: average pooling "
                                 "instead of max pooling, and the ReLU is missing.",
                                 "after {layer}: ReLU, then keep the largest value of each 2 × 2 block."),
    "sigmoid": ("{after} went through a sigmoid after {layer}, not a ReLU (values squeezed into (0, 1)).",
                "the course's network uses ReLU: max(0, v)."),
    "tanh": ("{after} went through tanh after {layer}, not a ReLU (values squeezed into (-1, 1)).",
             "the course's network uses ReLU: max(0, v)."),
}


def judge_stage(before: np.ndarray, after: np.ndarray, *, layer: str, after_what: str) -> None:
    """``after`` should be ReLU + 2 × 2 max-pooling of ``before`` (a conv layer's output)."""
    want = max_pool2(relu(before))
    if after.shape != want.shape:
        n, c, h, w = before.shape
        hint = {
            before.shape: f"that is the shape of {layer}'s output itself: the 2 × 2 max-pooling after {layer} is "
                          f"missing (it halves the height and the width).",
            (n, c, h - 1, w - 1): "a 2 × 2 pooling window that moves 1 pixel at a time (stride 1) barely shrinks "
                                  "the maps; it should jump 2 pixels (stride 2, a pooling layer's default).",
            (n, c, h // 4, w // 4): f"the maps shrank 4 times: pooled twice, or with a 4 × 4 window, after {layer}.",
        }.get(after.shape, f"after {layer} ({fmt_shape(before.shape)}) come ReLU and 2 × 2 max-pooling, which "
                           f"halves the height and the width: {fmt_shape(want.shape)}.")
        fail(f"{after_what} should have shape {fmt_shape(want.shape)}, but it has shape {fmt_shape(after.shape)}.",
             hint)
    tol = tolerance(want)
    if close(after, want, atol=tol):
        return
    for name, alt in _describe_stage(before, layer).items():
        if close(after, alt, atol=tol):
            msg, hint = STAGE_HINTS[name]
            fail(msg.format(layer=layer, after=after_what, low=float(after.min())), hint.format(layer=layer))
    if close(after, before[..., : want.shape[-2], : want.shape[-1]], atol=tol):
        fail(f"{after_what} is a corner of {layer}'s output, not its 2 × 2 max-pooling.",
             "pool with a 2 × 2 window and stride 2.")
    fail(f"{after_what} is not ReLU + 2 × 2 max-pooling of {layer}'s output: {where_differs(after, want, atol=tol)}.",
         f"after {layer}: ReLU (max(0, v)) and 2 × 2 max-pooling with stride 2, nothing else "
         f"(no normalization, no dropout, no other layer).")
