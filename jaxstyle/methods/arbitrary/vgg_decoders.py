"""The decoders of arbitrary-style transfer: nets that map VGG19's ``relu{k}_1`` features back to pixels.

Decoders are pure functions over a params pytree ``{"dec4": {"conv4_1": {"w", "b"}, ...}, ...}``:
``w`` float32[3,3,Cin,Cout] (HWIO), ``b`` float32[Cout]. Each mirrors VGG19 from its level down to
pixels: 3x3 convs with reflection padding, ReLU, and nearest x2 upsampling where VGG pools.
Images are float32[N,H,W,3] RGB in [0,1] throughout. Also here: the encoder (the frozen VGG19),
the reconstruction loss they are trained with, and their model file (the ``decoders`` kind of
:mod:`jaxstyle.io.modelfile`, registered below).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.errors import OptionError
from jaxstyle.io import modelfile
from jaxstyle.nn import vgg
from jaxstyle.nn.layers import reflect_pad, upsample_conv

LEVELS: tuple[int, ...] = (1, 2, 3, 4)


# The RMS of relu{k}_1 on training photos (Caffe input scale), measured: 46, 228, 299, 1030. The
# decoder divides its input by it, so its He-initialised convs start at unit scale.
FEATURE_SCALE: dict[int, float] = {1: 50.0, 2: 200.0, 3: 300.0, 4: 1000.0}


ENCODER_POOLING = "max"  # the net the VGG19 weights were trained as; WCT's published encoders use it


DEFAULT_DECODERS = "photo"  # assets/decoders/photo.msgpack: trained on ../shared/data/train photos


# The VGG19 convs from conv1_1 to conv5_1 (the deepest a decoder inverts), (name, Cin, Cout), from
# the one layer table in jaxstyle.nn.vgg.
_VGG_CONVS: tuple[tuple[str, int, int], ...] = tuple(
    (name, vgg.in_channels(name), vgg.channels(name))
    for name in vgg.VGG_LAYERS[: vgg.VGG_LAYERS.index("conv5_1") + 1]
)


_VGG_ORDER = tuple(name for name, _, _ in _VGG_CONVS)


def level_layer(level: int) -> str:
    """The VGG19 conv whose ReLU a level's decoder inverts: 4 -> ``conv4_1`` (relu4_1)."""
    if level not in LEVELS:
        raise OptionError(f"level must be one of {', '.join(map(str, LEVELS))}, got {level}")
    return f"conv{level}_1"


def decoder_layers(level: int, width: float = 1.0) -> list[tuple[str, int, int]]:
    """The decoder for ``level`` as ``[(name, Cin, Cout), ...]``, pixels last.

    It mirrors VGG19's convs from ``conv{level}_1`` back to ``conv1_1``: the mirror of conv X
    maps X's output channels to its input channels, and where VGG pools before X the decoder
    upsamples after it. ``width`` scales every inner channel count (not the input features or the
    3 output channels): 0.5 is a quarter of the multiply-adds.
    """
    top = _VGG_CONVS.index(next(c for c in _VGG_CONVS if c[0] == level_layer(level)))
    chain = list(reversed(_VGG_CONVS[: top + 1]))
    layers = []
    for i, (name, cin, cout) in enumerate(chain):
        c_in = cout if i == 0 else max(8, round(cout * width))
        c_out = 3 if name == "conv1_1" else max(8, round(cin * width))
        layers.append((name, c_in, c_out))
    return layers


def init_decoder(key: jax.Array, level: int, width: float = 1.0) -> dict[str, dict[str, jax.Array]]:
    """He-normal conv weights, zero biases: ``{name: {"w": float32[3,3,Cin,Cout], "b": float32[Cout]}}``."""
    params = {}
    for i, (name, cin, cout) in enumerate(decoder_layers(level, width)):
        std = np.sqrt(2.0 / (9 * cin))
        params[name] = {
            "w": std * jax.random.normal(jax.random.fold_in(key, i), (3, 3, cin, cout), jnp.float32),
            "b": jnp.zeros((cout,), jnp.float32),
        }
    return params


def init_decoders(key: jax.Array, levels: Sequence[int], width: float = 1.0) -> dict[str, Any]:
    """``{"dec{k}": init_decoder(...)}`` for each level, each from its own fold of ``key``."""
    return {f"dec{k}": init_decoder(jax.random.fold_in(key, k), k, width) for k in levels}


def _conv(x: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
    """Reflection-padded 3x3 conv (a SAME conv over the padded input, then cropped: XLA:CPU's fast path)."""
    h, wd = x.shape[1], x.shape[2]
    y = jax.lax.conv_general_dilated(reflect_pad(x, 1), w.astype(x.dtype), (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y[:, 1 : 1 + h, 1 : 1 + wd] + b.astype(x.dtype)


def decode(params: Mapping[str, Mapping[str, jax.Array]], features: jax.Array) -> jax.Array:
    """A decoder's image from its level's features: float32[N,h,w,C] -> float32[N,h*2^(k-1),w*2^(k-1),3].

    The output is unbounded (the training loss sees exactly this, and inference clips it to [0,1]).
    """
    # Deepest conv first (jit sorts dict keys, so the order comes from the VGG table, not the dict).
    names = sorted(params, key=_VGG_ORDER.index, reverse=True)
    x = features / FEATURE_SCALE[int(names[0][4])]
    for i, name in enumerate(names):
        layer = params[name]
        if i > 0 and _upsamples_before(names[i - 1]):
            x = upsample_conv(x, layer["w"].astype(x.dtype)) + layer["b"].astype(x.dtype)
        else:
            x = _conv(x, layer["w"], layer["b"])
        if name != "conv1_1":
            x = jax.nn.relu(x)
    return x


def _upsamples_before(previous: str) -> bool:
    """Whether the layer after the mirror of ``previous`` runs on the x2 upsampled image."""
    return vgg.opens_block(previous)


def encode(vgg_params: vgg.Params, images: jax.Array, level: int) -> jax.Array:
    """VGG19's ``relu{level}_1``: float32[N,H,W,3] in [0,1] -> float32[N,H/2^(k-1),W/2^(k-1),C]."""
    layer = level_layer(level)
    return vgg.features(vgg_params, images, [layer], pooling=ENCODER_POOLING)[layer]


def load_decoders(name_or_path: Any = DEFAULT_DECODERS) -> dict[str, Any]:
    """Shipped decoders by name (``photo``) or those of a :func:`save_decoders` file, as float32."""
    return modelfile.load(name_or_path, kind="decoders")[0]


# -- training: reconstruction ------------------------------------------------------------------------


def reconstruction_loss(
    decoder: Mapping[str, Any], vgg_params: vgg.Params, images: jax.Array, level: int,
    feature_weight: float = 1.0,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Li et al.'s decoder loss: pixel MSE of the reconstruction plus the MSE of its re-encoded features.

    images: float32[N,H,W,3] in [0,1], H and W multiples of 2^(level-1). The feature term is divided
    by the mean square of the target features, so both terms are relative errors of similar scale.
    Returns (loss, {"pixel", "feature", "psnr"}).
    """
    target = jax.lax.stop_gradient(encode(vgg_params, images, level))
    out = decode(decoder, target)
    pixel = jnp.mean(jnp.square(out - images))
    again = encode(vgg_params, out, level)
    feature = jnp.mean(jnp.square(again - target)) / (jnp.mean(jnp.square(target)) + 1e-8)
    clipped = jnp.mean(jnp.square(jnp.clip(out, 0.0, 1.0) - images))
    psnr = -10.0 * jnp.log10(clipped + 1e-10)
    return pixel + feature_weight * feature, {"pixel": pixel, "feature": feature, "psnr": psnr}


def decoders_loss(params: Mapping[str, Any], vgg_params: vgg.Params, images: jax.Array,
                  feature_weight: float = 1.0) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The sum of every decoder's :func:`reconstruction_loss`; metrics per level (``psnr4`` ...)."""
    total = jnp.float32(0.0)
    metrics = {}
    for name, decoder in params.items():
        level = int(name[3:])
        loss, m = reconstruction_loss(decoder, vgg_params, images, level, feature_weight)
        total = total + loss
        metrics.update({f"{key}{level}": value for key, value in m.items()})
    metrics["loss"] = total
    return total, metrics


# -- decoder files ---------------------------------------------------------------------------------

DECODER_FORMAT = "jaxstyle-decoders"


DECODER_FORMAT_VERSION = 1


def decoder_levels(decoders: Mapping[str, Any]) -> tuple[int, ...]:
    """The levels a decoders pytree covers, ascending: ``{"dec1", "dec4"}`` -> ``(1, 4)``."""
    return tuple(sorted(int(name[3:]) for name in decoders))


def decoder_width(decoder: Mapping[str, Any], level: int) -> float:
    """The ``width`` a decoder was built with, read off its first conv's output channels."""
    if level == 1:
        return 1.0
    full = decoder_layers(level)[0][2]
    return float(np.asarray(decoder[level_layer(level)]["w"]).shape[-1]) / full


def save_decoders(path: Any, decoders: Mapping[str, Any], metadata: Mapping[str, Any],
                  dtype: Any = np.float16) -> Any:
    """Write decoders to one msgpack file (atomic; no pickle), fp16 by default, plus ``<path>.json``."""
    levels = decoder_levels(decoders)
    meta = {**metadata, "levels": list(levels),
            "widths": {str(k): decoder_width(decoders[f"dec{k}"], k) for k in levels}}
    return modelfile.write_file(path, DECODER_FORMAT, DECODER_FORMAT_VERSION, dict(decoders), meta, dtype)


def read_decoders(path: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(decoders float32, metadata) from a :func:`save_decoders` file; WeightsError on a missing,
    corrupt or foreign file, or one whose shapes are not the decoders'."""
    from jaxstyle.errors import WeightsError
    hint = "reinstall jaxstyle, or train decoders with: bin/train --decoders"
    params, metadata = modelfile.read_file(path, DECODER_FORMAT, DECODER_FORMAT_VERSION, "decoder", hint)
    try:
        for name, dec in params.items():
            level = int(name[3:])
            width = float(metadata["widths"][str(level)])
            expected = {n: (3, 3, cin, cout) for n, cin, cout in decoder_layers(level, width)}
            if {n: p["w"].shape for n, p in dec.items()} != expected:
                raise ValueError(name)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise WeightsError(f"{path}: the decoder file's contents are not decoders of this version; {hint}") from None
    return params, metadata


modelfile.register(modelfile.Kind("decoders", "decoders", read_decoders, "decoder set",
                                  "decoders for --method arbitrary are trained with: bin/train --decoders"))
