"""The paper's losses, written exactly as in Gatys et al. / Qu.

Feature maps are float[N,H,W,C] (a batch of images). Every loss is computed per
image and averaged over the batch, so a batch of one gives the paper's number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp

CONTENT_LAYER = "conv4_2"
STYLE_LAYERS: tuple[str, ...] = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
# Gatys et al. weight the five style layers equally (w_l = 1/5).
DEFAULT_STYLE_LAYER_WEIGHTS: tuple[float, ...] = (0.2, 0.2, 0.2, 0.2, 0.2)


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


def style_loss(
    generated: Mapping[str, jax.Array],
    target_grams: Mapping[str, jax.Array],
    layer_weights: Mapping[str, float],
) -> jax.Array:
    """L_style = Σ_l w_l E_l over the layers in ``layer_weights``.

    generated: {layer: float[N,H,W,C]}; target_grams: {layer: float32[C,C]}. The target Gram
    is the style image's, normalised the same way as at the generated image's size (the paper
    compares raw Grams; when the style and generated sizes differ we rescale the target by
    M_gen/M_style so that E_l compares like with like).
    """
    total = jnp.float32(0.0)
    for layer, weight in layer_weights.items():
        fmap = generated[layer]
        _, h, w, _ = fmap.shape
        total = total + weight * style_layer_loss(gram(fmap), target_grams[layer], h, w)
    return total


def total_variation(images: jax.Array) -> jax.Array:
    """Σ of squared differences between neighbouring pixels, per image, batch mean.

    images: float[N,H,W,3] in [0,1] -> float32[].
    """
    dy = jnp.square(images[:, 1:, :, :] - images[:, :-1, :, :])
    dx = jnp.square(images[:, :, 1:, :] - images[:, :, :-1, :])
    return jnp.mean(jnp.sum(dy, axis=(1, 2, 3)) + jnp.sum(dx, axis=(1, 2, 3)))


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


def layer_weight_map(weights: Sequence[float] | None, layers: Sequence[str] = STYLE_LAYERS) -> dict[str, float]:
    """Pair style layer names with weights (defaults: equal, 1/len)."""
    if weights is None:
        weights = [1.0 / len(layers)] * len(layers)
    if len(weights) != len(layers):
        from jaxstyle.errors import OptionError

        raise OptionError(f"{len(weights)} style layer weights given for {len(layers)} style layers")
    return dict(zip(layers, (float(w) for w in weights), strict=True))
