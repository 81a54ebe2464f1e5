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

FORMAT = "jaxstyle-transform"
FORMAT_VERSION = 1


def reflect_pad(x: jax.Array, pad: int) -> jax.Array:
    """Reflection padding of H and W by ``pad`` (edge not repeated), float[N,H,W,C]."""
    if pad == 0:
        return x
    return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def upsample_nearest(x: jax.Array) -> jax.Array:
    """Nearest-neighbour x2: float[N,H,W,C] -> float[N,2H,2W,C] (a broadcast, no gather)."""
    n, h, w, c = x.shape
    x = jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, 2, w, 2, c))
    return x.reshape(n, 2 * h, 2 * w, c)


def _phase_kernels(kernel: jax.Array) -> jax.Array:
    """Fold a 3x3 kernel float[3,3,Cin,Cout] into float[2,2,Cin,4*Cout], one 2x2 kernel per phase.

    A 3x3 conv over a nearest-x2 upsampled image reads, for output row ``2i + a``, low-res rows
    ``i-1, i, i`` (a = 0) or ``i, i, i+1`` (a = 1); the repeated rows' kernel taps can be summed.
    Output channels are ordered by phase (a, b) = (0,0), (0,1), (1,0), (1,1).
    """
    rows = [jnp.stack([kernel[0], kernel[1] + kernel[2]]), jnp.stack([kernel[0] + kernel[1], kernel[2]])]
    phases = []
    for r in rows:
        phases.append(jnp.stack([r[:, 0], r[:, 1] + r[:, 2]], axis=1))
        phases.append(jnp.stack([r[:, 0] + r[:, 1], r[:, 2]], axis=1))
    return jnp.concatenate(phases, axis=-1)


def upsample_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Nearest x2 upsampling, reflection pad 1, 3x3 conv, without making the big image.

    float[N,H,W,Cin], kernel float[3,3,Cin,Cout] -> float[N,2H,2W,Cout]. Reflection-padding the
    upsampled image by 1 equals upsampling the edge-padded low-res image, so each of the four
    output phases is a 2x2 conv of the edge-padded input: 16 instead of 36 multiply-adds per
    low-res pixel and channel pair, and equal to the direct way up to float rounding (tested).
    """
    n, h, w, _ = x.shape
    cout = kernel.shape[-1]
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    y = jax.lax.conv_general_dilated(
        xp, _phase_kernels(kernel), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )  # SAME for a 2x2 kernel pads 0 before, 1 after: y[p] reads xp rows p, p+1
    phases = [y[:, a : a + h, b : b + w, i * cout : (i + 1) * cout] for i, (a, b) in enumerate(_PHASES)]
    z = jnp.stack(phases, axis=3).reshape(n, h, w, 2, 2, cout)
    return z.transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, cout)


_PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))


class InstanceNorm(nn.Module):
    """Normalise each image and channel over H, W; learned scale and shift per channel."""

    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (channels,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (channels,), jnp.float32)
        x32 = x.astype(jnp.float32)
        mean = jnp.mean(x32, axis=(1, 2), keepdims=True)
        var = jnp.mean(jnp.square(x32 - mean), axis=(1, 2), keepdims=True)
        y = (x32 - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias
        return y.astype(x.dtype)


def _padded_channels(channels: int, kernel: int) -> int:
    """Input or output channels to run a ``kernel`` x ``kernel`` conv with: zero-padded inputs (the kernel
    gets zero slices) or extra outputs sliced off, so exact either way.

    XLA:CPU slow paths, measured (docs/performance.md): 3 channels in or out ran 3x slower than 4 (the
    first and last convs, and the last one's backward pass 1.5x); a 9x9 conv with 8-19 channels in or out
    ran 2-5x slower than with 20, although 20 is more work (the half-width net's 9x9 convs at 400x300:
    16 -> 4 channels 235 vs 52 ms, 4 -> 16 channels 81 vs 40 ms). 3x3 convs showed no such step.
    """
    if channels == 3:
        return 4
    if kernel == 9 and 8 <= channels < 20:
        return 20
    return channels


class Conv(nn.Module):
    """A k x k conv with SAME padding: float[N,H,W,Cin] -> float[N,ceil(H/s),ceil(W/s),features].

    Params ``kernel`` float32[k,k,Cin,features] and ``bias`` float32[features], as ``nn.Conv``
    names them. Channel counts that hit a slow XLA:CPU path are padded: inputs with zeros (and the
    kernel with zero slices), outputs computed and sliced off (see ``_padded_channels``). With
    ``upsample`` (3x3, stride 1 only) the input is first upsampled x2 (nearest) and the conv sees it
    reflection-padded: see ``upsample_conv``.
    """

    features: int
    kernel: int
    stride: int = 1
    upsample: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cin = x.shape[-1]
        shape = (self.kernel, self.kernel, cin, self.features)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), shape, jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        cin_run = _padded_channels(cin, self.kernel)
        if cin_run != cin:
            x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, cin_run - cin)))
            kernel = jnp.pad(kernel, ((0, 0), (0, 0), (0, cin_run - cin), (0, 0)))
        cout_run = self.features if self.upsample else _padded_channels(self.features, self.kernel)
        if cout_run != self.features:
            kernel = jnp.pad(kernel, ((0, 0), (0, 0), (0, 0), (0, cout_run - self.features)))
            bias = jnp.pad(bias, (0, cout_run - self.features))
        if self.upsample:
            return upsample_conv(x.astype(self.dtype), kernel.astype(self.dtype)) + bias.astype(self.dtype)
        y = jax.lax.conv_general_dilated(
            x.astype(self.dtype),
            kernel.astype(self.dtype),
            window_strides=(self.stride, self.stride),
            padding="SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        return (y + bias.astype(self.dtype))[..., : self.features]


class ReflectConv(nn.Module):
    """A k x k conv over a reflection-padded input (output size = input size / stride).

    Runs as a SAME conv over the padded input, then crops: XLA's CPU backend has a fast path only
    for SAME-style padding, and a VALID conv measured 2-25x slower here (docs/performance.md).
    For stride 1 the crop drops ``pad`` on each side (about 6% extra work at 256 px). For stride
    2 on an even padded size, SAME pads 0 before and 1 after, so output ``i`` is centred on padded
    pixel ``2i + pad`` exactly as a VALID conv's; the crop keeps the first H/2 rows and W/2
    columns. Both are bit-identical to the VALID conv (tested). With ``upsample`` the input is
    upsampled x2 (nearest) first, folded into the conv (``upsample_conv``).
    """

    features: int
    kernel: int
    stride: int = 1
    upsample: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.upsample:
            if self.kernel != 3 or self.stride != 1:
                raise ValueError("upsampling ReflectConv supports 3x3, stride 1 only")
            return Conv(self.features, 3, upsample=True, dtype=self.dtype, name="conv")(x)
        pad = self.kernel // 2
        h, w = x.shape[1], x.shape[2]
        y = Conv(self.features, self.kernel, self.stride, dtype=self.dtype, name="conv")(reflect_pad(x, pad))
        if self.stride == 1:
            return y[:, pad : pad + h, pad : pad + w, :] if pad else y
        if self.stride != 2 or pad != 1 or h % 2 or w % 2:
            raise ValueError(f"strided ReflectConv supports stride 2, 3x3, even sizes; got {self.stride}, {h}x{w}")
        return y[:, : h // 2, : w // 2, :]


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
    from jaxstyle.errors import OptionError

    if not 0.0 <= strength <= 1.0:
        raise OptionError(f"strength must be between 0 and 1, got {strength}", fields=("strength",))
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
    from jaxstyle.images import to_float_image

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
    (:func:`jaxstyle.models.write_file`); params are stored as ``dtype`` (fp16 by default: half the
    size; outputs move by less than one 8-bit level)."""
    from jaxstyle import models

    return models.write_file(path, FORMAT, FORMAT_VERSION, params, {**metadata, **architecture(params)}, dtype)


def shipped_models(fast: bool = False) -> dict[str, Path]:
    """Style names of the shipped transform nets -> their files (:func:`jaxstyle.models.shipped`)."""
    from jaxstyle import models

    return models.shipped("transform", fast=fast)


def read_transform(path: str | os.PathLike[str]) -> tuple[dict, dict]:
    """Load (params float32, metadata) from a file written by :func:`save_transform`.

    Safe: msgpack only (no pickle). Raises WeightsError on a missing, corrupt or foreign file.
    """
    from jaxstyle import models

    params, metadata = models.read_file(path, FORMAT, FORMAT_VERSION, "transform-net")
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
    one. The lookup is :func:`jaxstyle.models.resolve`.
    """
    from jaxstyle import models

    return models.load(name_or_path, "transform", fast=fast)[0]
