"""VGG19 as a pure function of a params pytree.

``params`` is what :func:`jaxstyle.vgg_weights.load_vgg_params` returns:
``{"conv1_1": {"w": float32[3,3,Cin,Cout] (HWIO, BGR input order), "b": float32[Cout]}, ...}``.
Images come in as RGB in [0,1] and are converted here to the Caffe convention the
weights were trained with (BGR, 0-255, ImageNet mean subtracted).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import jax
import jax.numpy as jnp

from jaxstyle.errors import OptionError

# The conv layers of VGG19 in order: block b holds BLOCK_CONVS[b-1] convs of BLOCK_WIDTHS[b-1] channels,
# and a 2x2 pool follows the last conv of each block.
BLOCK_CONVS: tuple[int, ...] = (2, 2, 4, 4, 4)
BLOCK_WIDTHS: tuple[int, ...] = (64, 128, 256, 512, 512)
VGG_LAYERS: tuple[str, ...] = tuple(
    f"conv{block}_{conv}" for block, n in enumerate(BLOCK_CONVS, start=1) for conv in range(1, n + 1)
)
_LAST_IN_BLOCK = frozenset(f"conv{block}_{n}" for block, n in enumerate(BLOCK_CONVS, start=1))
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
#: The smallest image side VGG19 takes: it pools four times before conv5_1, and smaller sides leave
#: conv5_1 with no positions. Images, videos and the web page refuse anything smaller.
MIN_SIDE = 16
# The deepest layer any loss here uses (conv5_1): the layers past it need not be on the device.
DEEPEST_USED = "conv5_1"
POOLINGS = ("avg", "max")

Params = Mapping[str, Mapping[str, jax.Array]]


def level(layer: str) -> int:
    """How many pools precede ``layer``: conv{b}_x sees the image after b-1 pools (conv1_1 -> 0, conv5_1 -> 4)."""
    return int(layer.removeprefix("conv").split("_")[0]) - 1


def channels(layer: str) -> int:
    """Output channels of ``layer`` (64 for conv1_x up to 512 for conv5_x)."""
    return BLOCK_WIDTHS[level(layer)]


def in_channels(layer: str) -> int:
    """Input channels of ``layer``: 3 (the image) for conv1_1, else the previous layer's output channels."""
    index = VGG_LAYERS.index(layer)
    return 3 if index == 0 else channels(VGG_LAYERS[index - 1])


def opens_block(layer: str) -> bool:
    """Whether a pool precedes ``layer`` in the full network (the first conv of blocks 2 to 5)."""
    return layer.endswith("_1") and layer != VGG_LAYERS[0]


def feature_shape(shape: tuple[int, int], layer: str) -> tuple[int, int]:
    """(h, w) of ``layer``'s responses for an (H, W) image: (H >> level, W >> level), as VALID pooling
    drops an odd last row or column at each pool."""
    return shape[0] >> level(layer), shape[1] >> level(layer)


def positions(shape: tuple[int, int], layer: str) -> int:
    """M_l, the number of positions of ``layer``'s responses for an (H, W) image."""
    h, w = feature_shape(shape, layer)
    return h * w


def preprocess(images: jax.Array) -> jax.Array:
    """float32[N,H,W,3] RGB in [0,1] -> float32[N,H,W,3] BGR, 0-255, mean subtracted."""
    bgr = images[..., ::-1] * 255.0
    return bgr - jnp.asarray(CAFFE_MEAN_BGR, dtype=images.dtype)


def conv_relu(x: jax.Array, layer: Mapping[str, jax.Array]) -> jax.Array:
    """One conv layer and its ReLU: float[N,H,W,Cin] -> float[N,H,W,Cout] (SAME padding, stride 1), in x's dtype.

    ``layer``: ``{"w": float32[3,3,Cin,Cout], "b": float32[Cout]}``.
    """
    w = layer["w"].astype(x.dtype)
    y = jax.lax.conv_general_dilated(
        x, w, window_strides=(1, 1), padding="SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return jax.nn.relu(y + layer["b"].astype(x.dtype))


def closes_block(layer: str) -> bool:
    """Whether a pool follows ``layer`` in the full network (the last conv of each block)."""
    return layer in _LAST_IN_BLOCK


def pool(x: jax.Array, pooling: str) -> jax.Array:
    """2x2 pooling, stride 2 (an odd last row or column is dropped, as VALID pooling does).

    Written as a reshape and a mean/max rather than ``reduce_window``: the same numbers, and its
    gradient is a broadcast instead of a padded window op (a Gatys step 8% faster on the CPU).
    """
    n, h, w, c = x.shape
    x = x[:, : h - h % 2, : w - w % 2].reshape(n, h // 2, 2, w // 2, 2, c)
    return jnp.max(x, axis=(2, 4)) if pooling == "max" else jnp.mean(x, axis=(2, 4))


def check_layers(layers: Iterable[str]) -> tuple[str, ...]:
    """Validate layer names; returns them as a tuple. Raises OptionError on unknown names."""
    layers = tuple(layers)
    unknown = [name for name in layers if name not in VGG_LAYERS]
    if unknown:
        raise OptionError(f"unknown VGG19 layer(s) {', '.join(unknown)}; valid: {', '.join(VGG_LAYERS)}")
    if not layers:
        raise OptionError("no VGG19 layers requested")
    return layers


def features(
    params: Params,
    images: jax.Array,
    layers: Iterable[str],
    pooling: str = "avg",
    dtype: jnp.dtype | None = None,
) -> dict[str, jax.Array]:
    """ReLU responses of the named conv layers.

    Args:
      params: VGG19 params (see module docstring).
      images: float32[N,H,W,3], RGB in [0,1].
      layers: names from ``VGG_LAYERS``; nothing past the deepest one is computed.
      pooling: ``"avg"`` (the paper's choice for synthesis) or ``"max"`` (the original net).
      dtype: compute dtype (e.g. ``jnp.bfloat16``); responses are returned in it.

    Returns:
      ``{layer: float[N,h,w,C]}`` where h, w shrink by 2 after each block's pool.
      Jittable; ``layers``, ``pooling`` and ``dtype`` must be static.
    """
    layers = check_layers(layers)
    if pooling not in POOLINGS:
        raise OptionError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")
    wanted = set(layers)
    deepest = max(VGG_LAYERS.index(name) for name in layers)
    x = preprocess(images)
    if dtype is not None:
        x = x.astype(dtype)
    out: dict[str, jax.Array] = {}
    for name in VGG_LAYERS[: deepest + 1]:
        x = conv_relu(x, params[name])
        if name in wanted:
            out[name] = x
        if name in _LAST_IN_BLOCK and name != VGG_LAYERS[deepest]:
            x = pool(x, pooling)
    return out


jit_features = jax.jit(features, static_argnames=("layers", "pooling", "dtype"))
""":func:`features`, jitted (``layers`` must then be a tuple)."""


def to_device(params: Mapping[str, Mapping[str, object]],
              upto: Iterable[str] | None = (DEEPEST_USED,)) -> dict:
    """VGG19 params on the default device as jax arrays, only the layers up to the deepest of ``upto``
    (the rest are never used, so they need no memory; ``upto=None``: all 16). ``params``: as the
    module docstring says (the caller loads them, e.g. :func:`jaxstyle.vgg_weights.load_vgg_params`).
    The one way VGG goes to the device."""
    names = VGG_LAYERS
    if upto is not None:
        deepest = max(VGG_LAYERS.index(name) for name in check_layers(upto))
        names = VGG_LAYERS[: deepest + 1]
    return {name: {k: jnp.asarray(v) for k, v in params[name].items()} for name in names if name in params}
