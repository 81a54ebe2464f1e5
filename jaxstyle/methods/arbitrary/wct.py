"""Arbitrary-style transfer in one pass: universal style transfer (Li et al. 2017, "WCT") and AdaIN.

The frozen VGG19 encodes an image to ``relu{k}_1``; a decoder (:mod:`.vgg_decoders`), trained only to
reconstruct photos from those features, maps them back to pixels. At inference the content features
are matched to a style's statistics (whitening and colouring with the style's covariance, or
per-channel mean and std), then decoded, coarse to fine: the deepest level first, each next level
re-encoding the previous result. Large images run in tiles. Images are float32[N,H,W,3] RGB in [0,1]
throughout.
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
from jaxstyle.methods.arbitrary.vgg_decoders import decode, decoder_levels, encode, level_layer, load_decoders
from jaxstyle.nn import layers, vgg
from jaxstyle.options import check_strength, option

FEATURE_TRANSFORMS = ("wct", "adain")


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
    """Options of :func:`stylize_batch` and :func:`make_stylizer`. The command line's ``--feature-transform``,
    ``--strength`` and ``--levels`` are generated from these fields (:func:`jaxstyle.cli.options.add_options`:
    the help is each field's metadata, the group the help section it is listed under)."""

    feature_transform: str = option(
        "wct", "the same as --arbitrary-model wct or adain (kept for older scripts)", choices=FEATURE_TRANSFORMS,
        group="arbitrary", show_default=False)
    # The one strength flag: transform nets mix pixels with the same value (net.check_blend).
    strength: float = option(
        1.0, "transform: 0 returns the photo, 1 the full style, between them a mix; arbitrary: the same mix in "
        "feature space (MicroAST's alpha) (default: 1)", kind="float", metavar="S", group="common",
        show_default=False)
    # None: the decoder set's deepest level only. Measured (docs/results.md, "Arbitrary style"): with
    # the CPU-trained decoders, adding the shallower levels (4,3,2,1 as in Li et al.) smeared colour
    # noise over the picture and doubled the time; relu4_1 alone carries the painting's strokes.
    levels: tuple[int, ...] | None = option(
        None, "wct/adain: the VGG19 levels (relu K_1) to match, deepest first, each decoded before the next is "
        "encoded, e.g. 4,3,2,1 as in Li et al. (default: the deepest, 4)", kind="ints", metavar="K1,K2,...",
        group="arbitrary", show_default=False)

    def levels_for(self, available: Sequence[int]) -> tuple[int, ...]:
        """The levels to run, deepest first, with a decoder set of ``available`` levels (``levels``, or
        the deepest available), after checking every option."""
        self.validate(available)
        return tuple(self.levels) if self.levels is not None else (max(available),)

    def validate(self, available: Sequence[int] | None = None) -> None:
        if self.feature_transform not in FEATURE_TRANSFORMS:
            raise OptionError(f"feature_transform must be one of {', '.join(FEATURE_TRANSFORMS)}, "
                              f"got {self.feature_transform!r}", fields=("feature_transform",))
        check_strength(self.strength)
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
    padded, (h, w) = layers.pad_to_multiple(jnp.asarray(images, jnp.float32), 2 ** (max(levels) - 1))
    out = _stylize(decoders, vgg_params, padded, {k: styles[k] for k in levels}, jnp.float32(options.strength),
                   levels, options.feature_transform)
    return np.asarray(out)[:, :h, :w]


# Above TILE_PIXELS an image runs in tiles (memory grows about 3 GB per megapixel untiled: 2.8 GB at
# 1024x768, measured). Each tile is TILE px square plus HALO px of context on every side, which covers
# the ~70 px reach of VGG19 to relu4_1 and of its decoder, so cores join without visible seams.
# (Its own tiler, not Gatys's: jaxstyle.methods.gatys.tiling's docstring says why.)
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


def make_stylizer(
    paintings: Sequence[np.ndarray],
    *,
    style_weights: Sequence[float] | None = None,
    decoders: Mapping[str, Any] | None = None,
    vgg_params: Any = None,
    **options: Any,
) -> Callable[[np.ndarray], np.ndarray]:
    """Prepare paintings once; returns ``stylize(images float32[N,H,W,3] in [0,1]) -> the same shape``.

    paintings: float32[H,W,3] in [0,1] each, at the size their statistics are taken at (see
    :func:`jaxstyle.methods.arbitrary.stylizer.make_stylizer`, the one entry point, which prepares them),
    blended by ``style_weights``. options: :class:`ArbitraryOptions` fields (``feature_transform``,
    ``strength``, ``levels``). The style statistics are computed here, once, and reused for every batch
    and video frame.
    """
    decoders = load_decoders() if decoders is None else decoders
    opts = ArbitraryOptions(**options)
    levels = opts.levels_for(decoder_levels(decoders))
    if vgg_params is None:
        from jaxstyle.vgg_weights import load_vgg_params

        vgg_params = load_vgg_params()
    params = vgg.to_device(vgg_params, upto=[level_layer(max(levels))])
    device_decoders = jax.device_put(dict(decoders))
    prepared = prepare_style(params, [jnp.asarray(s) for s in paintings], levels, style_weights)

    def stylize(images: np.ndarray) -> np.ndarray:
        return stylize_batch(device_decoders, params, images, prepared, opts)

    return stylize
