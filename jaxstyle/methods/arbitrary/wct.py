"""Arbitrary-style transfer in one pass: universal style transfer (Li et al. 2017, "WCT") and AdaIN.

The frozen VGG19 encodes an image to ``relu{k}_1``; a decoder, trained only to reconstruct photos
from those features, maps them back to pixels. At inference the content features are matched to
a style's statistics (whitening and colouring with the style's covariance, or per-channel mean and
std), then decoded, coarse to fine: the deepest level first, each next level re-encoding the
previous result.

Decoders are pure functions over a params pytree ``{"dec4": {"conv4_1": {"w", "b"}, ...}, ...}``:
``w`` float32[3,3,Cin,Cout] (HWIO), ``b`` float32[Cout]. Each mirrors VGG19 from its level down to
pixels: 3x3 convs with reflection padding, ReLU, and nearest x2 upsampling where VGG pools.
Images are float32[N,H,W,3] RGB in [0,1] throughout.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
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
FEATURE_TRANSFORMS = ("wct", "adain")
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


# -- style statistics and feature transforms --------------------------------------------------------


def feature_stats(features: jax.Array) -> dict[str, jax.Array]:
    """Mean and covariance of one image's features float32[h,w,C]: ``{"mean": [C], "cov": [C,C]}``.

    Float32 sums over positions, centred before the product (no cancellation); one position
    gives a zero covariance.
    """
    f = features.reshape(-1, features.shape[-1]).astype(jnp.float32)
    mean = jnp.mean(f, axis=0)
    centred = f - mean
    cov = centred.T @ centred / max(f.shape[0] - 1, 1)
    return {"mean": mean, "cov": cov}


def _eig_floor(cov: jax.Array) -> jax.Array:
    """The eigenvalue floor that keeps whitening stable: 1e-5 of the mean eigenvalue, and at least 1e-5
    (the published WCT's truncation) for a flat image, whose centred features are float rounding."""
    return 1e-5 * jnp.maximum(jnp.trace(cov) / cov.shape[0], 1.0)


def _sym_power(cov: jax.Array, power: float) -> jax.Array:
    """``cov ** power`` for a symmetric PSD float32[C,C], by ``eigh`` with floored eigenvalues."""
    values, vectors = jnp.linalg.eigh(cov)
    values = jnp.maximum(values, _eig_floor(cov))
    return (vectors * values**power) @ vectors.T


def style_transform(stats: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """What WCT and AdaIN need of a style, computed once: ``{"mean", "color" = cov^1/2, "std"}``."""
    cov = stats["cov"]
    return {"mean": stats["mean"], "color": _sym_power(cov, 0.5),
            "std": jnp.sqrt(jnp.maximum(jnp.diagonal(cov), 0.0))}


def blend_stats(stats: Sequence[Mapping[str, jax.Array]], weights: Sequence[float]) -> dict[str, jax.Array]:
    """A weighted blend of style statistics: the mixture's mean and covariance (weights normalised).

    The covariance is that of the mixture distribution, ``sum w_i (cov_i + m_i m_i^T) - m m^T``, so a
    blend of two styles carries both palettes rather than an average grey of them.
    """
    w = np.asarray(weights, np.float64)
    w = w / w.sum()
    mean = jnp.zeros_like(stats[0]["mean"])
    second = jnp.zeros_like(stats[0]["cov"])
    for wi, s in zip(w, stats, strict=True):
        mean = mean + float(wi) * s["mean"]
        second = second + float(wi) * (s["cov"] + jnp.outer(s["mean"], s["mean"]))
    return {"mean": mean, "cov": second - jnp.outer(mean, mean)}


def feature_affine(content: Mapping[str, jax.Array], style: Mapping[str, jax.Array], feature_transform: str,
                   eps: float = 1e-5) -> tuple[jax.Array, jax.Array]:
    """The feature transform as an affine map ``f -> f @ A + b`` (A float32[C,C], b float32[C]), from the
    content's :func:`feature_stats` and the style's :func:`style_transform`.

    wct: whiten with the content covariance's inverse square root, colour with the style's square root
    (Li et al. 2017): the result has the style's mean and covariance. adain: per channel, the content's
    std is replaced by the style's (Huang & Belongie 2017). Both keep the content's spatial arrangement;
    a flat content (zero covariance) maps to the style's mean.
    """
    mean = content["mean"]
    if feature_transform == "wct":
        a = _sym_power(content["cov"], -0.5) @ style["color"]
    elif feature_transform == "adain":
        a = jnp.diag(style["std"] / jnp.sqrt(jnp.maximum(jnp.diagonal(content["cov"]), 0.0) + eps))
    else:
        raise OptionError(f"feature_transform must be one of {', '.join(FEATURE_TRANSFORMS)}, "
                          f"got {feature_transform!r}")
    return a, style["mean"] - mean @ a


def _apply_affine(features: jax.Array, affine: tuple[jax.Array, jax.Array]) -> jax.Array:
    a, b = affine
    return (features.astype(jnp.float32) @ a + b).astype(features.dtype)


def wct(content: jax.Array, style: Mapping[str, jax.Array]) -> jax.Array:
    """Whitening and colouring of one image's features float32[h,w,C] (see :func:`feature_affine`)."""
    return _apply_affine(content, feature_affine(feature_stats(content), style, "wct"))


def adain(content: jax.Array, style: Mapping[str, jax.Array]) -> jax.Array:
    """Per-channel mean and std matching of one image's features float32[h,w,C] (see :func:`feature_affine`)."""
    return _apply_affine(content, feature_affine(feature_stats(content), style, "adain"))


_TRANSFORMS = {"wct": wct, "adain": adain}


# -- the method ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ArbitraryOptions:
    """Options of :func:`stylize_batch` and :func:`make_stylizer` (the CLI's flags come from these fields)."""

    feature_transform: str = "wct"
    strength: float = 1.0
    # None: the decoder set's deepest level only. Measured (docs/results.md, "Arbitrary style"): with
    # the CPU-trained decoders, adding the shallower levels (4,3,2,1 as in Li et al.) smeared colour
    # noise over the picture and doubled the time; relu4_1 alone carries the painting's strokes.
    levels: tuple[int, ...] | None = None

    def levels_for(self, available: Sequence[int]) -> tuple[int, ...]:
        """The levels to run, deepest first, with a decoder set of ``available`` levels (``levels``, or
        the deepest available), after checking every option."""
        self.validate(available)
        return tuple(self.levels) if self.levels is not None else (max(available),)

    def validate(self, available: Sequence[int] | None = None) -> None:
        if self.feature_transform not in FEATURE_TRANSFORMS:
            raise OptionError(f"feature_transform must be one of {', '.join(FEATURE_TRANSFORMS)}, "
                              f"got {self.feature_transform!r}", fields=("feature_transform",))
        if not 0.0 <= self.strength <= 1.0:
            raise OptionError(f"strength must be between 0 and 1, got {self.strength}", fields=("strength",))
        if self.levels is None:
            return
        if not self.levels:
            raise OptionError("levels: at least one level is needed", fields=("levels",))
        for level in self.levels:
            level_layer(level)
        if available is not None:
            missing = [k for k in self.levels if k not in available]
            if missing:
                raise OptionError(f"no decoder for level(s) {', '.join(map(str, missing))}; "
                                  f"the decoders have {', '.join(map(str, available))}")


def style_statistics(vgg_params: vgg.Params, style: jax.Array, levels: Sequence[int]) -> dict[int, dict]:
    """Per level, the style's feature statistics (``feature_stats``) of one image float32[H,W,3]."""
    return {k: feature_stats(encode(vgg_params, style[None], k)[0]) for k in levels}


@functools.partial(jax.jit, static_argnames=("levels", "feature_transform"))
def _stylize(decoders, vgg_params, images, styles, strength, levels, feature_transform):
    transform = _TRANSFORMS[feature_transform]
    x = images
    for k in levels:
        feats = encode(vgg_params, x, k)
        style = styles[k]
        moved = jax.vmap(lambda f, s=style: transform(f, s))(feats)
        x = _decode_mix(decoders[f"dec{k}"], feats, moved, strength)
    return x


def _decode_mix(decoder: Mapping[str, Any], feats: jax.Array, moved: jax.Array, strength: jax.Array) -> jax.Array:
    """The content-style mix in feature space, decoded and clipped to [0,1]."""
    mixed = strength * moved + (1.0 - strength) * feats
    return jnp.clip(decode(decoder, mixed.astype(feats.dtype)), 0.0, 1.0)


def prepare_style(
    vgg_params: vgg.Params,
    styles: Sequence[jax.Array],
    levels: Sequence[int],
    weights: Sequence[float] | None = None,
) -> dict[int, dict[str, jax.Array]]:
    """Style images (each float32[H,W,3] in [0,1]) -> per level, the blended style transform
    (``style_transform`` of ``blend_stats``): computed once, reused for every image and frame."""
    weights = [1.0] * len(styles) if weights is None else list(weights)
    per_style = [style_statistics(vgg_params, jnp.asarray(s), levels) for s in styles]
    return {k: style_transform(blend_stats([p[k] for p in per_style], weights)) for k in levels}


DEFAULT_STYLE_SIZE = 512  # the style image's long side before its statistics (the scale of its strokes)


def pad_to_multiple(images: jax.Array, multiple: int) -> tuple[jax.Array, tuple[int, int]]:
    """Reflection-pad float32[N,H,W,3] at the bottom and right to multiples of ``multiple``
    (VGG's pools drop odd rows); returns the padded batch and the original (H, W)."""
    h, w = images.shape[1], images.shape[2]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        images = jnp.pad(images, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="reflect" if min(h, w) > max(ph, pw)
                         else "edge")
    return images, (h, w)


def stylize_batch(
    decoders: Mapping[str, Any],
    vgg_params: vgg.Params,
    images: np.ndarray,
    styles: Mapping[int, Mapping[str, jax.Array]],
    options: ArbitraryOptions = ArbitraryOptions(),
) -> np.ndarray:
    """Any size: float32[N,H,W,3] in [0,1] -> the same shape, stylised (padded for VGG, cropped back;
    above ``TILE_PIXELS`` per image in tiles, :func:`stylize_tiled`)."""
    if images.shape[1] * images.shape[2] > TILE_PIXELS:
        return np.stack([stylize_tiled(decoders, vgg_params, image, styles, options) for image in images])
    levels = options.levels_for(decoder_levels(decoders))
    padded, (h, w) = pad_to_multiple(jnp.asarray(images, jnp.float32), 2 ** (max(levels) - 1))
    out = _stylize(decoders, vgg_params, padded, {k: styles[k] for k in levels}, jnp.float32(options.strength),
                   levels, options.feature_transform)
    return np.asarray(out)[:, :h, :w]


# Above TILE_PIXELS an image runs in tiles (memory grows about 3 GB per megapixel untiled: 2.8 GB at
# 1024x768, measured). Each tile is TILE px square plus HALO px of context on every side, which covers
# the ~70 px reach of VGG19 to relu4_1 and of its decoder, so cores join without visible seams.
TILE_PIXELS = 1_500_000
TILE = 768
HALO = 80


@functools.partial(jax.jit, static_argnames=("level", "core"))
def _tile_features(vgg_params, tile, level, core):
    """One padded tile float32[1,T+2h,T+2h,3] -> its core's features float32[T/m,T/m,C], m = 2^(level-1)."""
    m = 2 ** (level - 1)
    return encode(vgg_params, tile, level)[0, HALO // m : HALO // m + core, HALO // m : HALO // m + core]


@functools.partial(jax.jit, static_argnames=("level",))
def _tile_apply(decoder, vgg_params, tile, affine, strength, level):
    """One padded tile -> its stylised pixels (the whole padded tile; the caller keeps the core)."""
    feats = encode(vgg_params, tile, level)
    return _decode_mix(decoder, feats, _apply_affine(feats, affine), strength)


def _pad_for_tiles(image: np.ndarray, tile: int) -> np.ndarray:
    """float32[H,W,3] -> HALO px of context on every side and the bottom/right filled to whole tiles
    (reflected where the image is large enough, else repeated edges)."""
    h, w = image.shape[:2]
    pads = ((HALO, HALO + -h % tile), (HALO, HALO + -w % tile), (0, 0))
    fits = max(pads[0][1], pads[1][1]) < min(h, w)
    return np.pad(image, pads, mode="reflect" if fits else "edge")


def stylize_tiled(decoders: Mapping[str, Any], vgg_params: vgg.Params, image: np.ndarray,
                  styles: Mapping[int, Mapping[str, jax.Array]], options: ArbitraryOptions = ArbitraryOptions(),
                  tile: int = TILE) -> np.ndarray:
    """:func:`stylize_batch` for one large image float32[H,W,3], in the memory of one tile.

    Per level, pass 1 adds each tile core's feature statistics (combined in float64, Chan et al.'s
    pairwise update) into the whole image's mean and covariance, so the feature transform is the one
    the untiled image would get; pass 2 applies it to each tile with its context and keeps the core.
    Where the untiled run sees the far side of the image through VGG's receptive field, a tile sees
    reflected context instead, so results match the untiled ones only up to a small difference.
    """
    levels = options.levels_for(decoder_levels(decoders))
    if tile % 2 ** (max(levels) - 1) or tile < 64:
        raise OptionError(f"tile must be a multiple of {2 ** (max(levels) - 1)} and at least 64, got {tile}")
    h, w = image.shape[:2]
    x = np.asarray(image, np.float32)
    strength = jnp.float32(options.strength)
    for k in levels:
        m = 2 ** (k - 1)
        padded = _pad_for_tiles(x, tile)
        corners = [(y, xx) for y in range(0, padded.shape[0] - 2 * HALO, tile)
                   for xx in range(0, padded.shape[1] - 2 * HALO, tile)]

        def crop(y: int, xx: int, padded: np.ndarray = padded) -> jax.Array:
            return jnp.asarray(padded[None, y : y + tile + 2 * HALO, xx : xx + tile + 2 * HALO])

        n_total, mean_total, m2_total = 0, np.zeros(1), np.zeros((1, 1))
        for y, xx in corners:
            # Only the part of the core inside the image counts (the rest is padding).
            f = np.asarray(_tile_features(vgg_params, crop(y, xx), k, tile // m))
            f = f[: -(-min(tile, h - y) // m), : -(-min(tile, w - xx) // m)]
            f = f.reshape(-1, f.shape[-1]).astype(np.float64)
            mean_t = f.mean(axis=0)
            m2_t = (f - mean_t).T @ (f - mean_t)
            n_new = n_total + len(f)
            if n_total == 0:
                mean_total, m2_total = mean_t, m2_t
            else:  # Chan et al.'s pairwise update: no cancellation between large sums
                delta = mean_t - mean_total
                m2_total = m2_total + m2_t + np.outer(delta, delta) * n_total * len(f) / n_new
                mean_total = mean_total + delta * len(f) / n_new
            n_total = n_new
        stats = {"mean": jnp.asarray(mean_total, jnp.float32),
                 "cov": jnp.asarray(m2_total / max(n_total - 1, 1), jnp.float32)}
        affine = feature_affine(stats, styles[k], options.feature_transform)
        out = np.empty_like(padded)
        for y, xx in corners:
            tile_out = np.asarray(_tile_apply(decoders[f"dec{k}"], vgg_params, crop(y, xx), affine, strength, k))
            out[y + HALO : y + HALO + tile, xx + HALO : xx + HALO + tile] = \
                tile_out[0, HALO : HALO + tile, HALO : HALO + tile]
        x = out[HALO : HALO + h, HALO : HALO + w]
    return x


def load_decoders(name_or_path: Any = DEFAULT_DECODERS) -> dict[str, Any]:
    """Shipped decoders by name (``photo``) or those of a :func:`save_decoders` file, as float32."""
    return modelfile.load(name_or_path, kind="decoders")[0]


def make_stylizer(
    style: Any,
    *,
    style_weights: Sequence[float] | None = None,
    style_size: int | None = DEFAULT_STYLE_SIZE,
    preserve_color: bool = False,
    decoders: Mapping[str, Any] | None = None,
    vgg_params: Any = None,
    **options: Any,
) -> Callable[[np.ndarray], np.ndarray]:
    """Prepare a style once; returns ``stylize(images float32[N,H,W,3] in [0,1]) -> the same shape``.

    style: a PIL image or array (uint8[H,W,3] or float32[H,W,3] in [0,1]), or a list of them blended
    by ``style_weights``. style_size: the style's long side before its statistics (None keeps it;
    larger = smaller strokes). preserve_color: the output's luminance with the photo's chroma.
    options: :class:`ArbitraryOptions` fields (``feature_transform``, ``strength``, ``levels``).
    The style statistics are computed here, once, and reused for every batch and video frame.
    """
    from jaxstyle import color
    from jaxstyle.io import images as imagelib

    decoders = load_decoders() if decoders is None else decoders
    opts = ArbitraryOptions(**options)
    levels = opts.levels_for(decoder_levels(decoders))
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    color.check_weights(len(styles), style_weights)
    style_imgs = [imagelib.to_float_image(s) for s in styles]
    if style_size is not None:
        style_imgs = [imagelib.fit_long_side(s, style_size) for s in style_imgs]
    if vgg_params is None:
        from jaxstyle.vgg_weights import load_vgg_params

        vgg_params = load_vgg_params()
    params = vgg.to_device(vgg_params, upto=[level_layer(max(levels))])
    device_decoders = jax.device_put(dict(decoders))
    prepared = prepare_style(params, [jnp.asarray(s) for s in style_imgs], levels, style_weights)

    def stylize(images: np.ndarray) -> np.ndarray:
        out = stylize_batch(device_decoders, params, images, prepared, opts)
        return color.keep_colors(out, np.asarray(images, np.float32)) if preserve_color else out

    return stylize


def arbitrary(content: Any, style: Any, *, size: int | None = None, **options: Any) -> np.ndarray:
    """Stylise ``content`` with any painting in one pass (universal style transfer).

    content: a PIL image or array (uint8[H,W,3] or float32[H,W,3] in [0,1]); size: the output's long
    side (None keeps the content's). ``style`` and the options: as :func:`make_stylizer`.
    Returns float32[H,W,3] in [0,1].
    """
    from jaxstyle.io import images as imagelib

    photo = imagelib.to_float_image(content)
    if size is not None:
        photo = imagelib.fit_long_side(photo, size)
    return make_stylizer(style, **options)(photo[None])[0]


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
