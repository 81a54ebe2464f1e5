"""The perceptual objective of Gatys et al.: what a loss is made of, and the one weighted total.

Used by the image optimisation (:mod:`jaxstyle.methods.gatys`), its tiled form
(:mod:`jaxstyle.methods.gatys.tiling`) and transform-net training (:mod:`jaxstyle.train`). Feature
maps are float[N,H,W,C] (a batch of images); every term is computed per image and averaged over the
batch, so a batch of one gives the paper's number.

The style term is the paper's E_l on Gram matrices. Another form (e.g. feature means and
standard deviations) would be another pair of target statistic and layer loss selected by a
:class:`LossSpec` field; :func:`style_from_grams` is the place the layer losses are summed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxstyle.errors import OptionError
from jaxstyle.nn import vgg

CONTENT_LAYER = "conv4_2"
STYLE_LAYERS: tuple[str, ...] = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
# Gatys et al. weight the five style layers equally (w_l = 1/5).
DEFAULT_STYLE_LAYER_WEIGHTS: tuple[float, ...] = (0.2, 0.2, 0.2, 0.2, 0.2)


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """Everything static about the loss and how it is computed: hashable, so it keys the jit cache.

    α = content_weight, β = style_weight, γ = tv_weight. tile: core tile size in px for
    :mod:`jaxstyle.methods.gatys.tiling` (None: auto, tiling only large images; 0: never). Tiling changes the
    memory, not the loss.
    """

    content_weight: float = 1.0
    style_weight: float = 1e3
    tv_weight: float = 0.0
    style_layer_weights: tuple[tuple[str, float], ...] = tuple(
        zip(STYLE_LAYERS, DEFAULT_STYLE_LAYER_WEIGHTS, strict=True)
    )
    content_layer: str = CONTENT_LAYER
    pooling: str = "avg"
    tile: int | None = None

    @property
    def style_layers(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.style_layer_weights)

    @property
    def layers(self) -> tuple[str, ...]:
        """The VGG layers one forward pass must return (style layers, then the content layer if used)."""
        names = list(self.style_layers)
        if self.content_weight:
            names.append(self.content_layer)
        return tuple(dict.fromkeys(names))


# -- the terms ---------------------------------------------------------------------------------------


def gram(feature_map: jax.Array) -> jax.Array:
    """Gram matrix G = F Fᵀ of each image, F being the C×M matrix of the layer's responses.

    feature_map: float[N,H,W,C] -> float32[N,C,C] (unnormalised: the 1/(4N²M²) lives in E_l).
    """
    n, h, w, c = feature_map.shape
    flat = feature_map.reshape(n, h * w, c)
    return jnp.einsum("nmc,nmd->ncd", flat, flat, preferred_element_type=jnp.float32)


def content_loss(generated: jax.Array, target: jax.Array) -> jax.Array:
    """L_content = ½ Σ (X − Y)², per image, mean over the batch. float[N,H,W,C] x2 -> float32[]."""
    diff = generated.astype(jnp.float32) - target.astype(jnp.float32)
    return 0.5 * jnp.mean(jnp.sum(jnp.square(diff), axis=(1, 2, 3)))


def style_layer_loss(generated_gram: jax.Array, target_gram: jax.Array, height: int, width: int) -> jax.Array:
    """E_l = Σ (G − A)² / (4 N_l² M_l²), N_l channels, M_l = height·width positions.

    generated_gram: float32[N,C,C]; target_gram: float32[C,C] or [N,C,C] -> float32[] (batch mean).
    """
    channels = generated_gram.shape[-1]
    positions = height * width
    squared = jnp.sum(jnp.square(generated_gram - target_gram), axis=(-2, -1))
    return jnp.mean(squared) / (4.0 * channels**2 * positions**2)


def style_from_grams(grams: Mapping[str, jax.Array], target_grams: Mapping[str, jax.Array],
                     layer_weights: Iterable[tuple[str, float]], sizes: Mapping[str, tuple[int, int]]
                     ) -> jax.Array:
    """L_style = Σ_l w_l E_l from the generated Grams {layer: float32[N,C,C]} of responses of (h, w) =
    ``sizes[layer]`` positions, against ``target_grams`` {layer: float32[C,C]} -> float32[].

    The one style sum: :func:`style_loss` (whole images) and :mod:`jaxstyle.methods.gatys.tiling` (Grams summed
    over tiles) both end here.
    """
    total = jnp.float32(0.0)
    for layer, weight in layer_weights:
        total = total + weight * style_layer_loss(grams[layer], target_grams[layer], *sizes[layer])
    return total


def style_loss(
    generated: Mapping[str, jax.Array],
    target_grams: Mapping[str, jax.Array],
    layer_weights: Mapping[str, float],
) -> jax.Array:
    """L_style = Σ_l w_l E_l over the layers in ``layer_weights``, from whole feature maps.

    generated: {layer: float[N,H,W,C]}; target_grams: {layer: float32[C,C]}. The target Gram
    is the style image's, normalised the same way as at the generated image's size (the paper
    compares raw Grams; when the style and generated sizes differ we rescale the target by
    M_gen/M_style so that E_l compares like with like, see :func:`style_targets`).
    """
    grams = {layer: gram(generated[layer]) for layer in layer_weights}
    sizes = {layer: (generated[layer].shape[1], generated[layer].shape[2]) for layer in layer_weights}
    return style_from_grams(grams, target_grams, layer_weights.items(), sizes)


def total_variation(images: jax.Array) -> jax.Array:
    """Σ of squared differences between neighbouring pixels, per image, batch mean.

    images: float[N,H,W,3] in [0,1] -> float32[].
    """
    dy = jnp.square(images[:, 1:, :, :] - images[:, :-1, :, :])
    dx = jnp.square(images[:, :, 1:, :] - images[:, :, :-1, :])
    return jnp.mean(jnp.sum(dy, axis=(1, 2, 3)) + jnp.sum(dx, axis=(1, 2, 3)))


def total(spec: LossSpec, content: jax.Array, style: jax.Array, tv: jax.Array) -> dict[str, jax.Array]:
    """The unweighted terms and their weighted total α·L_content + β·L_style + γ·TV:
    ``{"content", "style", "tv", "total"}`` (float32[]). The one place the terms are weighted."""
    weighted = spec.content_weight * content + spec.style_weight * style + spec.tv_weight * tv
    return {"content": content, "style": style, "tv": tv, "total": weighted}


def loss_terms(
    image: jax.Array, targets: Mapping[str, Any], vgg_params: vgg.Params, spec: LossSpec
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The weighted total and the unweighted terms for whole images float32[N,H,W,3] in [0,1].

    targets: ``{"content": float[N or 1,h,w,C] or None, "grams": {layer: float32[C,C]}}``.
    Returns (α·L_content + β·L_style + γ·TV, {"content", "style", "tv", "total"}); one VGG forward.
    :func:`jaxstyle.methods.gatys.tiling.loss_terms` is the tiled equivalent.
    """
    feats = vgg.features(vgg_params, image, spec.layers, spec.pooling)
    zero = jnp.float32(0.0)
    content = content_loss(feats[spec.content_layer], targets["content"]) if spec.content_weight else zero
    style = style_loss(feats, targets["grams"], dict(spec.style_layer_weights))
    tv = total_variation(image) if spec.tv_weight else zero
    terms = total(spec, content, style, tv)
    return terms["total"], terms


# -- targets -----------------------------------------------------------------------------------------


def style_targets(style_features: Mapping[str, jax.Array], generated_positions: Mapping[str, int] | None = None,
                  ) -> dict[str, jax.Array]:
    """Target Grams from the style image's features {layer: float[1,H,W,C]} -> {layer: float32[C,C]}.

    If ``generated_positions`` ({layer: H·W of the generated image at that layer}) is given and
    differs from the style's, the Gram is scaled by M_gen / M_style: a Gram grows linearly with
    the number of positions, so this keeps E_l meaningful when the style image has another size.
    """
    out = {}
    for layer, fmap in style_features.items():
        _, h, w, _ = fmap.shape
        g = gram(fmap)[0]
        if generated_positions is not None:
            g = g * (generated_positions[layer] / float(h * w))
        out[layer] = g
    return out


def generated_positions(spec: LossSpec, shape: tuple[int, int]) -> dict[str, int]:
    """{style layer: M_l} for a generated image of (H, W) ``shape``: what target Grams are scaled to."""
    return {layer: vgg.positions(shape, layer) for layer in spec.style_layers}


def style_grams(vgg_params: vgg.Params, style: jax.typing.ArrayLike, spec: LossSpec, output_shape: tuple[int, int]
                ) -> dict[str, jax.Array]:
    """Target Grams {layer: float32[C,C]} of one whole style image float32[H,W,3] in [0,1], rescaled to
    the positions an ``output_shape`` (H, W) image has at each layer (see :func:`style_targets`)."""
    feats = vgg.jit_features(vgg_params, jnp.asarray(style)[None], spec.style_layers, spec.pooling)
    return style_targets(feats, generated_positions(spec, output_shape))


def layer_weight_map(weights: Sequence[float] | None, layers: Sequence[str] = STYLE_LAYERS) -> dict[str, float]:
    """Pair style layer names with weights (defaults: equal, 1/len)."""
    if weights is None:
        weights = [1.0 / len(layers)] * len(layers)
    if len(weights) != len(layers):
        raise OptionError(f"{len(weights)} style layer weights given for {len(layers)} style layers")
    return dict(zip(layers, (float(w) for w in weights), strict=True))
