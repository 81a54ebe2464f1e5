"""PyTorch reference of jaxstyle's transform net and its training loss, for ``bench/transform_vs_torch.py``.

Runs in the throwaway venv ``.bench-venv-pastiche/`` (torch CPU + numpy), so it imports nothing from
this repository: the architecture and the loss are written out here from ``jaxstyle/methods/transform/net.py``
and ``jaxstyle/train.py`` (``perceptual_loss``), and the weights arrive as .npz files written by the
benchmark (our Flax params and our VGG19, converted here: HWIO -> OIHW, instance-norm scale/bias ->
weight/bias).

It is a server so the benchmark can interleave its timings with ours: one JSON command per line on
stdin, one JSON reply per line on stdout (arrays go through .npz files named in the commands).
Commands: ``setup_infer``, ``infer``, ``setup_train``, ``train``, ``stylise``, ``profile_infer``,
``profile_train``, ``profile_vgg``, ``quit``. Timings are ``time.perf_counter`` seconds around one call each.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _jsonl_server import serve, timed  # bench/, next to this file
from torch import nn

LAYOUTS = ("contiguous", "channels_last")

# -- the transform net (jaxstyle.methods.transform.net.TransformNet) -------------------------------------------


class ConvLayer(nn.Module):
    """Optional nearest x2, reflection pad k//2, k x k conv, then optionally instance norm + ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, norm_relu: bool = True,
                 upsample: bool = False) -> None:
        super().__init__()
        self.upsample = upsample
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(cin, cout, kernel, stride)
        self.norm = nn.InstanceNorm2d(cout, eps=1e-5, affine=True) if norm_relu else None

    def conv_part(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(self.pad(x))

    def norm_part(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(x)) if self.norm is not None else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm_part(self.conv_part(x))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3)
        self.conv2 = ConvLayer(channels, channels, 3, norm_relu=False)
        self.norm2 = nn.InstanceNorm2d(channels, eps=1e-5, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.norm2(self.conv2(self.conv1(x)))


class TransformNet(nn.Module):
    """float32[N,3,H,W] in [0,1] -> float32[N,3,H,W], unclipped (as ``TransformNet.__call__``)."""

    def __init__(self, width: int = 32, residual_blocks: int = 5) -> None:
        super().__init__()
        c = width
        self.down1 = ConvLayer(3, c, 9)
        self.down2 = ConvLayer(c, 2 * c, 3, stride=2)
        self.down3 = ConvLayer(2 * c, 4 * c, 3, stride=2)
        self.res_names = [f"res{i + 1}" for i in range(residual_blocks)]
        for name in self.res_names:
            self.add_module(name, ResidualBlock(4 * c))
        self.up1 = ConvLayer(4 * c, 2 * c, 3, upsample=True)
        self.up2 = ConvLayer(2 * c, c, 3, upsample=True)
        self.out = ConvLayer(c, 3, 9, norm_relu=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        pad_h, pad_w = (-h) % 4, (-w) % 4
        x = images
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if min(h, w) > 4 else "replicate")
        x = self.down3(self.down2(self.down1(x)))
        for name in self.res_names:
            x = getattr(self, name)(x)
        x = self.out(self.up2(self.up1(x)))
        return x[..., :h, :w]

    def parts(self) -> list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]]:
        """The forward pass as (name, fn) pieces, conv and norm separately, for per-layer timings."""
        out: list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = []
        for name in ("down1", "down2", "down3"):
            layer = getattr(self, name)
            out += [(f"{name}.conv", layer.conv_part), (f"{name}.norm+relu", layer.norm_part)]
        for name in self.res_names:
            block = getattr(self, name)
            out += [(f"{name}.conv1.conv", block.conv1.conv_part), (f"{name}.conv1.norm+relu", block.conv1.norm_part),
                    (f"{name}.conv2.conv", block.conv2.conv_part)]
            out.append((f"{name}.norm2+skip", _skip_norm(block)))
        for name in ("up1", "up2"):
            layer = getattr(self, name)
            out += [(f"{name}.upsample+conv", layer.conv_part), (f"{name}.norm+relu", layer.norm_part)]
        out.append(("out.conv+clip", lambda x: self.out.conv_part(x).clamp(0.0, 1.0)))
        return out


def _skip_norm(block: ResidualBlock) -> Callable[[torch.Tensor], torch.Tensor]:
    # The skip needs the block's input; for timing, the conv2 output stands in for it (same shape).
    return lambda y: y + block.norm2(y)


def flax_to_torch(flat: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Flax paths ``params/down1/conv/conv/kernel`` (HWIO) -> ``down1.conv.weight`` (OIHW) etc."""
    state = {}
    for path, value in flat.items():
        parts = path.split("/")
        if parts[0] == "params":
            parts = parts[1:]
        if parts[-3:-1] == ["conv", "conv"]:  # ConvLayer/ReflectConv/nn.Conv -> ConvLayer.conv
            parts = [*parts[:-3], "conv", parts[-1]]
        leaf = parts[-1]
        if leaf == "kernel":
            parts[-1], value = "weight", value.transpose(3, 2, 0, 1)
        elif leaf == "scale":
            parts[-1] = "weight"
        state[".".join(parts)] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    return state


def frozen_bias(name: str) -> bool:
    """jaxstyle.train_mode._param_role: conv biases that a later instance norm cancels (all but the output
    conv's) and the residual blocks' closing norm2 bias are not trained."""
    return (name.endswith("conv.bias") and not name.startswith("out.")) or name.endswith("norm2.bias")


# -- VGG19 and the perceptual loss (jaxstyle.nn.vgg / objective / train.perceptual_loss) -------------------

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
CONTENT_LAYER = "conv4_2"
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
STYLE_LAYER_WEIGHTS = (0.2, 0.2, 0.2, 0.2, 0.2)


def _block_conv(name: str) -> tuple[int, int]:
    """``conv3_2`` -> (3, 2)."""
    block, conv = name.removeprefix("conv").split("_")
    return int(block), int(conv)


class VGG19(nn.Module):
    """VGG19 convs (3x3, zero pad 1) + ReLU, avg pooling, Caffe preprocessing; up to ``deepest``.

    The layer table is read off the weights' names (``conv{block}_{n}/w``), as jaxstyle.nn.vgg writes
    it, rather than copied here: this file imports nothing from the repository (see the docstring).
    """

    def __init__(self, flat: dict[str, np.ndarray], deepest: str = "conv5_1") -> None:
        super().__init__()
        layers = sorted({key.split("/")[0] for key in flat if key.startswith("conv")}, key=_block_conv)
        self.layers = tuple(layers)
        self.last_in_block = frozenset(max((n for n in layers if _block_conv(n)[0] == b), key=_block_conv)
                                       for b in {_block_conv(n)[0] for n in layers})
        self.names = self.layers[: self.layers.index(deepest) + 1]
        self.convs = nn.ModuleDict()
        for name in self.names:
            w = flat[f"{name}/w"]  # HWIO, BGR input order
            conv = nn.Conv2d(w.shape[2], w.shape[3], 3, padding=1)
            conv.weight.data = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1), dtype=np.float32))
            conv.bias.data = torch.from_numpy(np.asarray(flat[f"{name}/b"], dtype=np.float32))
            self.convs[name] = conv
        self.register_buffer("mean", torch.tensor(CAFFE_MEAN_BGR, dtype=torch.float32).view(1, 3, 1, 1))
        self.requires_grad_(False)

    def forward(self, images: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        deepest = max(self.layers.index(name) for name in layers)
        x = images.flip(1) * 255.0 - self.mean  # RGB [0,1] -> BGR 0-255, mean subtracted
        out = {}
        for name in self.layers[: deepest + 1]:
            x = F.relu(self.convs[name](x))
            if name in wanted:
                out[name] = x
            if name in self.last_in_block and name != self.layers[deepest]:
                x = F.avg_pool2d(x, 2)
        return out


def gram(fmap: torch.Tensor) -> torch.Tensor:
    f = fmap.flatten(2)  # [N,C,M]
    return f @ f.transpose(1, 2)


def image_loss(out: torch.Tensor, target: torch.Tensor, vgg: VGG19, grams: dict[str, torch.Tensor],
               weights: tuple[float, float, float], clip: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """α·content + β·style + γ·TV of the net's output ``out`` (float[N,3,H,W]); ``target``: the content
    image's conv4_2 responses. Every term per image, batch mean, exactly as jaxstyle.objective.

    clip: measure ``out.clamp(0, 1)`` with the gradient passed straight through the clamp, as
    ``jaxstyle.train.output_loss`` does (the picture inference returns); False: the raw output (the loss
    before that change). Our optional range and layout terms are not here: this matches ``output_loss``
    with both weights 0."""
    if clip:
        out = out + (out.clamp(0.0, 1.0) - out).detach()
    feats = vgg(out, (*STYLE_LAYERS, CONTENT_LAYER))
    content = 0.5 * (feats[CONTENT_LAYER] - target).square().sum(dim=(1, 2, 3)).mean()
    style = out.new_zeros(())
    for layer, weight in zip(STYLE_LAYERS, STYLE_LAYER_WEIGHTS, strict=True):
        fmap = feats[layer]
        c, m = fmap.shape[1], fmap.shape[2] * fmap.shape[3]
        squared = (gram(fmap) - grams[layer]).square().sum(dim=(1, 2))
        style = style + weight * squared.mean() / (4.0 * c**2 * m**2)
    dy = (out[:, :, 1:, :] - out[:, :, :-1, :]).square().sum(dim=(1, 2, 3))
    dx = (out[:, :, :, 1:] - out[:, :, :, :-1]).square().sum(dim=(1, 2, 3))
    tv = (dy + dx).mean()
    alpha, beta, gamma = weights
    total = alpha * content + beta * style + gamma * tv
    return total, {"loss": total, "content": content, "style": style, "tv": tv}


# -- the server --------------------------------------------------------------------------------------


def _npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x.contiguous()


def _nchw(images: np.ndarray, layout: str) -> torch.Tensor:
    """float32 or uint8 [N,H,W,3] numpy -> float32 [N,3,H,W] in [0,1] in the given memory layout."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    return _layout(x, layout)


class Server:
    def __init__(self) -> None:
        self.nets: dict[str, TransformNet] = {}
        self.x: dict[str, torch.Tensor] = {}
        self.train: dict[str, dict[str, Any]] = {}

    # inference ------------------------------------------------------------------------------------

    def setup_infer(self, params: str, image: str, out: str, threads: int) -> dict[str, Any]:
        torch.set_num_threads(threads)
        state = flax_to_torch(_npz(params))
        blocks = sum(1 for k in state if k.startswith("res") and k.endswith("conv1.conv.weight"))
        width = state["down1.conv.weight"].shape[0]
        image_np = _npz(image)["image"]
        outputs = {}
        for layout in LAYOUTS:
            net = TransformNet(width, blocks).eval()
            net.load_state_dict(state, strict=True)
            net = net.to(memory_format=torch.channels_last) if layout == "channels_last" else net
            self.nets[layout] = net
            self.x[layout] = _nchw(image_np, layout)
            with torch.inference_mode():
                y = net(self.x[layout]).clamp(0.0, 1.0)
            outputs[layout] = y.permute(0, 2, 3, 1).contiguous().numpy()
        np.savez(out, **outputs)
        return {"torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
                "torch_interop_threads": torch.get_num_interop_threads(), "width": width,
                "residual_blocks": blocks, "mkldnn": torch.backends.mkldnn.is_available(),
                "config": torch.__config__.parallel_info().splitlines()[:6]}

    def infer(self, layout: str, reps: int) -> dict[str, Any]:
        net, x = self.nets[layout], self.x[layout]

        def call() -> None:
            with torch.inference_mode():
                net(x).clamp(0.0, 1.0)

        return {"times": timed(call, reps)}

    def profile_infer(self, layout: str, reps: int) -> dict[str, Any]:
        net = self.nets[layout]
        result = []
        with torch.inference_mode():
            x = self.x[layout]
            for name, fn in net.parts():
                fn(x)  # warm-up
                times = timed(lambda fn=fn, x=x: fn(x), reps)
                y = fn(x)
                result.append({"name": name, "shape": list(y.shape), "ms": 1e3 * float(np.median(times))})
                x = y
        return {"parts": result}

    # training -------------------------------------------------------------------------------------

    def setup_train(self, params: str, vgg: str, grams: str, weights: list[float], lr: float,
                    layouts: list[str], clip: bool = True, threads: int | None = None) -> dict[str, Any]:
        if threads:
            torch.set_num_threads(threads)
        state = flax_to_torch(_npz(params))
        blocks = sum(1 for k in state if k.startswith("res") and k.endswith("conv1.conv.weight"))
        width = state["down1.conv.weight"].shape[0]
        vgg_flat = _npz(vgg)
        grams_t = {k: torch.from_numpy(v) for k, v in _npz(grams).items()}
        frozen_names = []
        for layout in layouts:
            net = TransformNet(width, blocks).train()
            net.load_state_dict(state, strict=True)
            vgg_net = VGG19(vgg_flat)
            if layout == "channels_last":
                net = net.to(memory_format=torch.channels_last)
                vgg_net = vgg_net.to(memory_format=torch.channels_last)
            trained = []
            for name, p in net.named_parameters():
                if frozen_bias(name):
                    p.requires_grad_(False)
                    frozen_names.append(name)
                else:
                    trained.append(p)
            # torch's Adam defaults (betas 0.9/0.999, eps 1e-8, eps outside the sqrt) are optax.adam's.
            optimizer = torch.optim.Adam(trained, lr=lr)
            self.train[layout] = {"net": net, "vgg": vgg_net, "grams": grams_t, "opt": optimizer,
                                  "weights": tuple(weights), "clip": bool(clip)}
        return {"trained_tensors": len(trained), "frozen_biases": sorted(set(frozen_names)), "clip": bool(clip),
                "torch_version": torch.__version__, "torch_threads": torch.get_num_threads()}

    def _step(self, layout: str, batch: np.ndarray) -> dict[str, float]:
        t = self.train[layout]
        x = _nchw(batch, layout)
        with torch.no_grad():
            target = t["vgg"](x, (CONTENT_LAYER,))[CONTENT_LAYER]
        out = t["net"](x)
        loss, terms = image_loss(out, target, t["vgg"], t["grams"], t["weights"], t["clip"])
        t["opt"].zero_grad(set_to_none=True)
        loss.backward()
        t["opt"].step()
        return {k: float(v.detach()) for k, v in terms.items()}

    def train_steps(self, layout: str, batches: str, indices: list[int]) -> dict[str, Any]:
        data = _npz(batches)["batches"]
        times, metrics = [], []
        for i in indices:
            batch = data[i]
            t0 = time.perf_counter()
            metrics.append(self._step(layout, batch))  # ends with .item(): the step is done
            times.append(time.perf_counter() - t0)
        return {"times": times, "metrics": metrics}

    def stylise(self, layout: str, images: str, out: str) -> dict[str, Any]:
        """The trained net of ``layout`` on each float32[H,W,3] image of the ``images`` npz -> the ``out``
        npz (same keys), clamped to [0,1] as inference returns it."""
        net = self.train[layout]["net"]
        outputs = {}
        with torch.inference_mode():
            for name, image in _npz(images).items():
                y = net(_nchw(image[None], layout)).clamp(0.0, 1.0)
                outputs[name] = y[0].permute(1, 2, 0).contiguous().numpy()
        np.savez(out, **outputs)
        return {"images": sorted(outputs)}

    def profile_train(self, layout: str, batches: str, index: int, reps: int, warmup: bool) -> dict[str, Any]:
        """The step cut in parts: the full train step; fwd+bwd of the transform net alone (loss = Σ out·r);
        the loss alone, fwd+bwd w.r.t. the image; the content target's VGG forward (part of the loss)."""
        t = self.train[layout]
        batch = _npz(batches)["batches"][index]
        x = _nchw(batch, layout)
        r = _layout(torch.rand(x.shape, generator=torch.Generator().manual_seed(0)), layout)
        net = t["net"]

        def net_fwd_bwd() -> None:
            net.zero_grad(set_to_none=True)
            (net(x) * r).sum().backward()

        with torch.no_grad():
            out0 = net(x).detach()

        def loss_fwd_bwd() -> None:
            out = out0.clone().requires_grad_(True)
            with torch.no_grad():
                target = t["vgg"](x, (CONTENT_LAYER,))[CONTENT_LAYER]
            loss, _ = image_loss(out, target, t["vgg"], t["grams"], t["weights"], t["clip"])
            loss.backward()
            float(out.grad.sum())

        def vgg_target() -> None:
            with torch.no_grad():
                float(t["vgg"](x, (CONTENT_LAYER,))[CONTENT_LAYER].sum())

        result = {}
        for name, fn in (("full train step", lambda: self._step(layout, batch)), ("net fwd+bwd", net_fwd_bwd),
                         ("loss fwd+bwd (VGG, w.r.t. image)", loss_fwd_bwd),
                         ("VGG content target (fwd to conv4_2)", vgg_target)):
            if warmup:
                fn()
            result[name] = timed(fn, reps)
        net.zero_grad(set_to_none=True)
        return {"parts": result}

    def profile_vgg(self, layout: str, batches: str, index: int, reps: int) -> dict[str, Any]:
        """Per VGG layer (conv + ReLU, + the pool after the last conv of a block): forward alone, and
        forward + backward w.r.t. its input (the VGG weights are frozen, as in training)."""
        t = self.train[layout]
        vgg = t["vgg"]
        with torch.no_grad():
            x = _nchw(_npz(batches)["batches"][index], layout).flip(1) * 255.0 - vgg.mean
        result = []
        for name in vgg.names:
            pool = name in vgg.last_in_block and name != vgg.names[-1]
            conv = vgg.convs[name]

            def layer(v: torch.Tensor, conv: nn.Conv2d = conv, pool: bool = pool) -> torch.Tensor:
                y = F.relu(conv(v))
                return F.avg_pool2d(y, 2) if pool else y

            with torch.no_grad():
                y = layer(x)
            ct = torch.ones_like(y)

            def fwd(layer: Callable = layer, x: torch.Tensor = x) -> None:
                with torch.no_grad():
                    layer(x)

            def fwd_bwd(layer: Callable = layer, x: torch.Tensor = x, ct: torch.Tensor = ct) -> None:
                v = x.detach().requires_grad_(True)
                layer(v).backward(ct)

            fwd()
            fwd_bwd()
            result.append({"name": name + ("+pool" if pool else ""), "shape": list(y.shape),
                           "fwd_ms": 1e3 * float(np.median(timed(fwd, reps))),
                           "fwd_bwd_ms": 1e3 * float(np.median(timed(fwd_bwd, reps)))})
            x = y
        return {"parts": result}


def main() -> int:
    server = Server()
    return serve({"setup_infer": server.setup_infer, "infer": server.infer, "profile_infer": server.profile_infer,
                  "setup_train": server.setup_train, "train": server.train_steps,
                  "stylise": server.stylise, "profile_train": server.profile_train,
                  "profile_vgg": server.profile_vgg})


if __name__ == "__main__":
    sys.exit(main())
