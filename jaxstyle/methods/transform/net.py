"""The feed-forward transform network (Johnson et al., with Ulyanov's instance norm).

Architecture (width ``w``, default 32)::

    9x9 conv w -> 3x3 conv 2w stride 2 -> 3x3 conv 4w stride 2 -> 5 residual blocks (4w)
    -> nearest x2, 3x3 conv 2w -> nearest x2, 3x3 conv w -> 9x9 conv 3

Every conv uses reflection padding; every conv but the last is followed by instance
norm and ReLU. Images are float32[N,H,W,3] in [0,1]; any H, W works (reflection-padded
to a multiple of 4 inside, then cropped back).

Inference params are a plain pytree: ``{"params": {...}}`` as Flax makes them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.errors import WeightsError
from jaxstyle.io import modelfile
from jaxstyle.nn.layers import InstanceNorm, ReflectConv

FORMAT = "jaxstyle-transform"
FORMAT_VERSION = 1


class ConvLayer(nn.Module):
    """Reflection-padded conv, then optionally instance norm + ReLU."""

    features: int
    kernel: int
    stride: int = 1
    norm_relu: bool = True
    upsample: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = ReflectConv(self.features, self.kernel, self.stride, self.upsample, dtype=self.dtype, name="conv")(x)
        if self.norm_relu:
            x = nn.relu(InstanceNorm(name="norm")(x))
        return x


class ResidualBlock(nn.Module):
    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        y = ConvLayer(self.features, 3, dtype=self.dtype, name="conv1")(x)
        y = ConvLayer(self.features, 3, norm_relu=False, dtype=self.dtype, name="conv2")(y)
        y = InstanceNorm(name="norm2")(y)
        return x + y


class TransformNet(nn.Module):
    """float32[N,H,W,3] in [0,1] -> float32[N,H,W,3] (unclipped; callers clip to [0,1])."""

    width: int = 32
    residual_blocks: int = 5
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        n, h, w, _ = images.shape
        pad_h, pad_w = (-h) % 4, (-w) % 4
        x = images
        if pad_h or pad_w:
            x = jnp.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="reflect" if min(h, w) > 4 else "edge")
        x = x.astype(self.dtype)
        c = self.width
        x = ConvLayer(c, 9, dtype=self.dtype, name="down1")(x)
        x = ConvLayer(2 * c, 3, stride=2, dtype=self.dtype, name="down2")(x)
        x = ConvLayer(4 * c, 3, stride=2, dtype=self.dtype, name="down3")(x)
        for i in range(self.residual_blocks):
            x = ResidualBlock(4 * c, dtype=self.dtype, name=f"res{i + 1}")(x)
        x = ConvLayer(2 * c, 3, upsample=True, dtype=self.dtype, name="up1")(x)
        x = ConvLayer(c, 3, upsample=True, dtype=self.dtype, name="up2")(x)
        x = ConvLayer(3, 9, norm_relu=False, dtype=self.dtype, name="out")(x)
        return x[:, :h, :w, :].astype(jnp.float32)


def init_params(key: jax.Array, width: int = 32, residual_blocks: int = 5) -> dict:
    """Fresh params ``{"params": ...}`` (float32) for a net of the given size."""
    model = TransformNet(width=width, residual_blocks=residual_blocks)
    return cast(dict, model.init(key, jnp.zeros((1, 16, 16, 3), jnp.float32)))


def architecture(params: Mapping[str, Any]) -> dict[str, int]:
    """Read width and residual-block count off a params pytree (no metadata needed)."""
    try:
        inner = params["params"]
        width = int(inner["down1"]["conv"]["conv"]["kernel"].shape[-1])
        blocks = sum(1 for name in inner if name.startswith("res"))
    except (KeyError, TypeError, AttributeError, IndexError) as err:
        raise WeightsError(f"not a transform-net params tree ({err})") from None
    return {"width": width, "residual_blocks": blocks}


def narrow(params: Mapping[str, Any], width: int) -> dict:
    """The params of a net of ``width`` (same residual blocks) cut out of a wider net's: float32 numpy.

    Each group of channels keeps its ``width``-proportional share with the largest importance, (|scale|
    + |bias|) of the instance norm(s) that produce it times the L2 norm of the kernel slices that read it;
    the groups are each layer's output, and the residual stream (down3 and every block's norm2 write it;
    every block's conv1 and up1 read it) as one. Kept weights are copied as they are: the instance norm
    after every conv re-normalises what is left. This starts a distilled student (``bin/train
    --teacher``) well ahead of a random init (docs/performance.md); at the same width it is the identity.
    """
    arch = architecture(params)
    if not 0 < width <= arch["width"]:
        raise ValueError(f"can only narrow width {arch['width']} to a width in 1..{arch['width']}, not {width}")
    p = jax.tree.map(lambda a: np.asarray(a, np.float32), dict(params["params"]))
    blocks = [f"res{i + 1}" for i in range(arch["residual_blocks"])]

    def node(*path: str) -> Any:
        return functools.reduce(lambda d, k: d[k], path, p)

    def size(*path: str) -> np.ndarray:  # what an instance norm's output channel amounts to
        return np.abs(node(*path, "scale")) + np.abs(node(*path, "bias"))

    def fan_out(*paths: tuple[str, ...]) -> np.ndarray:  # how much the reading convs use each input channel
        return sum(np.sqrt(np.square(node(*path, "conv", "conv", "kernel")).sum(axis=(0, 1, 3))) for path in paths)

    def keep(score: np.ndarray, count: int) -> np.ndarray:
        return np.sort(np.argsort(-score, kind="stable")[:count])

    c = width
    kept = {
        "down1": keep(size("down1", "norm") * fan_out(("down2",)), c),
        "down2": keep(size("down2", "norm") * fan_out(("down3",)), 2 * c),
        "stream": keep((size("down3", "norm") + sum(size(b, "norm2") for b in blocks))
                       * fan_out(("up1",), *((b, "conv1") for b in blocks)), 4 * c),
        "up1": keep(size("up1", "norm") * fan_out(("up2",)), 2 * c),
        "up2": keep(size("up2", "norm") * fan_out(("out",)), c),
        **{b: keep(size(b, "conv1", "norm") * fan_out((b, "conv2")), 4 * c) for b in blocks},
        "rgb": np.arange(3),
    }

    def norm(path: tuple[str, ...], ch: str) -> dict:
        return {"scale": node(*path, "scale")[kept[ch]], "bias": node(*path, "bias")[kept[ch]]}

    def layer(path: tuple[str, ...], cin: str, cout: str, with_norm: bool = True) -> dict:
        conv = node(*path, "conv", "conv")
        out = {"conv": {"conv": {"kernel": conv["kernel"][:, :, kept[cin]][..., kept[cout]],
                                 "bias": conv["bias"][kept[cout]]}}}
        return {**out, "norm": norm((*path, "norm"), cout)} if with_norm else out

    q = {"down1": layer(("down1",), "rgb", "down1"), "down2": layer(("down2",), "down1", "down2"),
         "down3": layer(("down3",), "down2", "stream"), "up1": layer(("up1",), "stream", "up1"),
         "up2": layer(("up2",), "up1", "up2"), "out": layer(("out",), "up2", "rgb", with_norm=False)}
    for b in blocks:
        q[b] = {"conv1": layer((b, "conv1"), "stream", b), "conv2": layer((b, "conv2"), b, "stream", with_norm=False),
                "norm2": norm((b, "norm2"), "stream")}
    return {"params": q}


@functools.partial(jax.jit, static_argnames=("width", "residual_blocks", "dtype"))
def _apply(params, images, width, residual_blocks, dtype=jnp.float32):
    out = TransformNet(width=width, residual_blocks=residual_blocks, dtype=dtype).apply(params, images)
    return jnp.clip(out, 0.0, 1.0)


def apply(params: Mapping[str, Any], images: jax.Array, dtype: Any = jnp.float32) -> jax.Array:
    """The net's forward pass on device arrays, jitted and cached per shape: float32[N,H,W,3] in [0,1]
    -> the same, clipped to [0,1]. The primitive under :func:`stylize_batch` (the host entry point)."""
    return _apply(params, images, dtype=dtype, **architecture(params))


def pad_batch(images: np.ndarray, size: int | None) -> np.ndarray:
    """A host batch float32[N,H,W,3] padded to ``size`` images by repeating the last (unchanged when
    N >= size or size is None): a short last batch then reuses the compiled shape. The caller drops
    the padding from the result (``[:N]``)."""
    n = images.shape[0]
    if size is None or n >= size:
        return images
    return np.concatenate([images, np.repeat(images[-1:], size - n, axis=0)])


def _forward(params: Mapping[str, Any], images: np.ndarray, dtype: Any, pad_to: int | None) -> np.ndarray:
    """:func:`apply` on a host batch float32[N,H,W,3], split over all local devices.

    N is padded (:func:`pad_batch`) up to ``pad_to`` and to a multiple of the device count; the
    padding is dropped from the result.
    """
    devices = jax.local_devices()
    n = images.shape[0]
    target = max(n, pad_to or 0)
    images = pad_batch(images, target + -target % len(devices))
    if len(devices) == 1:
        return np.asarray(apply(params, jnp.asarray(images), dtype))[:n]
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = Mesh(np.asarray(devices), ("data",))
    batch = jax.device_put(images, NamedSharding(mesh, P("data")))
    params = jax.device_put(params, NamedSharding(mesh, P()))
    return np.asarray(apply(params, batch, dtype))[:n]


def stylize_batch(
    models: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    images: np.ndarray,
    *,
    weights: Sequence[float] | None = None,
    strength: float = 1.0,
    preserve_color: bool = False,
    dtype: Any = jnp.float32,
    pad_to: int | None = None,
) -> np.ndarray:
    """float32[N,H,W,3] in [0,1] -> the same, stylised (batches spread over all local devices).

    The one inference entry point: :func:`stylize` (any image kind), videos, the web page and the
    paper's tables all come here. models: one params tree, or several whose outputs are mixed by
    ``weights`` (default equal). preserve_color: keep the photo's chroma, take the stylised
    luminance (``color.keep_colors``). strength: 0 returns the photo, 1 the full style; between, a
    pixel mix of the two. pad_to: run at least this many images (the last repeated, then dropped),
    so a short final batch reuses the compiled shape.
    """
    from jaxstyle import color

    models = [models] if isinstance(models, Mapping) else list(models)
    check_blend(len(models), weights, strength)
    outs = [_forward(p, images, dtype, pad_to) for p in models]
    out = outs[0] if len(outs) == 1 else color.mix(outs, list(weights or [1.0] * len(outs)))
    if preserve_color:
        out = color.keep_colors(out, images)
    if strength != 1.0:
        out = color.mix([images, out], [1.0 - strength, strength])
    return out


def check_blend(count: int, weights: Sequence[float] | None, strength: float) -> None:
    """Raise OptionError unless there is one weight >= 0 per model (positive sum) and 0 <= strength <= 1."""
    from jaxstyle import color
    from jaxstyle.options import check_strength

    check_strength(strength)
    color.check_weights(count, weights)


def stylize(img: Any, params: Mapping[str, Any] | Sequence[Mapping[str, Any]], *,
            weights: Sequence[float] | None = None, strength: float = 1.0, preserve_color: bool = False,
            dtype: Any = jnp.float32) -> Any:
    """Stylise an image (or batch) with a trained transform net (or a blend of several).

    img: uint8[H,W,3], float[H,W,3] in [0,1], a batch [N,H,W,3] of either, or a PIL image.
    Returns the same kind, shape and dtype (a PIL image for a PIL image). Options as
    :func:`stylize_batch`.
    """
    from PIL import Image

    from jaxstyle.errors import ImageError
    from jaxstyle.io.images import to_float_image

    options = dict(weights=weights, strength=strength, preserve_color=preserve_color, dtype=dtype)
    if isinstance(img, Image.Image):
        out = stylize(np.asarray(to_float_image(img)), params, **options)
        return Image.fromarray(np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8))
    array = np.asarray(img)
    if array.ndim not in (3, 4) or array.shape[-1] != 3:
        raise ImageError(f"stylize expects [H,W,3] or [N,H,W,3] RGB, got shape {array.shape}")
    batch = array if array.ndim == 4 else array[None]
    if batch.dtype == np.uint8:
        floats = batch.astype(np.float32) / 255.0
    else:
        floats = batch.astype(np.float32)
    out = stylize_batch(params, floats, **options)
    if array.dtype == np.uint8:
        out = np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
    else:
        out = out.astype(array.dtype)
    return out if array.ndim == 4 else out[0]


def save_transform(path: str | os.PathLike[str], params: Mapping[str, Any], metadata: Mapping[str, Any],
                   dtype: Any = np.float16) -> Path:
    """Write inference params to one msgpack file (atomic), plus ``<path>.json`` with the metadata
    (:func:`jaxstyle.io.modelfile.write_file`); params are stored as ``dtype`` (fp16 by default: half the
    size; outputs move by less than one 8-bit level)."""
    return modelfile.write_file(path, FORMAT, FORMAT_VERSION, params, {**metadata, **architecture(params)}, dtype)


def shipped_models(fast: bool = False) -> dict[str, Path]:
    """Style names of the shipped transform nets -> their files (:func:`jaxstyle.io.modelfile.shipped`)."""
    return modelfile.shipped("transform", fast=fast)


def resolve_transform(name_or_path: str | os.PathLike[str], fast: bool = False) -> Path:
    """A shipped transform net's name or a model file's path -> the file (:func:`jaxstyle.io.modelfile.resolve`)."""
    return modelfile.resolve(name_or_path, "transform", fast=fast)


def read_transform(path: str | os.PathLike[str]) -> tuple[dict, dict]:
    """Load (params float32, metadata) from a file written by :func:`save_transform`.

    Safe: msgpack only (no pickle). Raises WeightsError on a missing, corrupt or foreign file.
    """
    params, metadata = modelfile.read_file(path, FORMAT, FORMAT_VERSION, "transform-net")
    arch = architecture(params)
    expected = jax.tree.map(lambda a: a.shape, jax.eval_shape(
        lambda: init_params(jax.random.key(0), arch["width"], arch["residual_blocks"])))
    got = jax.tree.map(lambda a: a.shape, params)
    if expected != got:
        raise WeightsError(f"{path}: model file is for another architecture (parameter shapes differ)")
    return params, metadata


def load_transform(name_or_path: str | os.PathLike[str], fast: bool = False) -> dict:
    """Params of a shipped model (``scream``, ``starry_night``, ``wave``...) or a model file.

    fast: the shipped name's half-width variant; raises OptionError for a file or a style without
    one. The lookup is :func:`jaxstyle.io.modelfile.resolve`.
    """
    return modelfile.load(name_or_path, "transform", fast=fast)[0]


modelfile.register(modelfile.Kind("transform", "", read_transform, "transform model",
                                  "gatys and the arbitrary method work with any style image"))
