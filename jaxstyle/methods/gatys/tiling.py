"""Tiled Gatys loss and gradient: the same numbers as the untiled ones, in bounded memory.

A style layer's Gram is a sum over positions, and the content loss a sum of squares over
positions, so both split exactly over a partition of the image into *core* regions. Each core
is run through VGG19 inside a larger crop (the core plus a *halo* of context, clipped at the
image borders), and only the responses at the core's positions are summed:

* pass 1 (forward, per tile): the unnormalised Gram partial sums and the content partial sum
  over the core. Their sum over tiles gives the full Grams, hence the style loss with the
  normalisation of :func:`jaxstyle.objective.style_loss`, and ∂L_style/∂G;
* pass 2 (backward, per tile): the gradient of Σ_l ⟨∂L/∂G_l, G_l(core)⟩ + α·L_content(core)
  with respect to the crop's pixels, added into the full-image gradient (crops overlap; the
  total gradient is the sum of the partials' gradients).

The only possible error is at crop edges, where VGG sees zero padding instead of the real
neighbours. A conv5_1 response depends on the pixels of its 16 px cell and 70 px on each side
(3×3 convs and 2×2 pools up to conv5_1), so a halo of at least 70 px makes every core response,
and therefore the loss and its gradient, exact up to float rounding: :data:`DEFAULT_HALO`.

Cores, halos and crop origins are multiples of 16 px, so every crop's pooled grids line up with
the full image's at every VGG level (feature coords = pixel coords / 2^level). All crops have
one size (those at the far borders are shifted inward), so each pass compiles one jitted tile
function (the crop's origin and core are traced int32 arrays), called from a Python loop over
the tiles. Not ``lax.scan``: XLA:CPU ran the VGG backward inside a while loop about 3x slower
than the same tiles as separate calls (docs/performance.md, "Tiling and memory").

Why the one-pass methods tile on their own (:func:`jaxstyle.methods.arbitrary.wct.stylize_tiled`,
:func:`jaxstyle.methods.arbitrary.microast_net.stylize_tiled`): the three split different sums. Here the
loss and its gradient are sums over positions, so cores must be 16-aligned (the pooled grids of every
crop line up with the image's) and balanced, with a halo covering conv5_1's reach; a result is exact.
WCT sums feature statistics over tile cores at one VGG level, then applies them tile by tile (one
core size, the image padded to whole tiles); MicroAST takes its statistics over the whole quarter-size
feature maps and runs only its encoder and tail in windows (multiples of 4 px). One helper for the
three would change where the tiles fall, hence the outputs, which are kept bit for bit.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxstyle import objective
from jaxstyle.errors import OptionError
from jaxstyle.nn import vgg
from jaxstyle.objective import LossSpec

ALIGN = 16  # 2**4: VGG19 pools four times before conv5_1
# conv5_1 reaches 70 px beyond its 16 px cell on each side; 80 is the next multiple of 16: exact.
DEFAULT_HALO = 80
MIN_TILE = 64
# tile=None (auto) tiles only images above this many pixels, with cores of at most AUTO_TILE px a
# side (measured in docs/performance.md, "Tiling and memory").
AUTO_TILE_PIXELS = 1_000_000
AUTO_TILE = 1024


@dataclasses.dataclass(frozen=True)
class TileGrid:
    """A partition of an (H, W) image into cores, each inside a crop of one common size.

    shape: (H, W) of the image; window: (h, w) of every crop; origins: the crops' top-left
    (y, x) in px; cores: (y0, y1, x0, x1) of each core in image px (a partition of the image).
    Hashable: it is a static argument of the jitted functions below.
    """

    shape: tuple[int, int]
    window: tuple[int, int]
    origins: tuple[tuple[int, int], ...]
    cores: tuple[tuple[int, int, int, int], ...]

    def __len__(self) -> int:
        return len(self.cores)


def check_tile(tile: int | None) -> None:
    """Refuse a ``--tile`` value other than None (auto), 0 (off) or a multiple of 16 >= MIN_TILE."""
    if tile is None or tile == 0:
        return
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < MIN_TILE or tile % ALIGN:
        raise OptionError(f"tile must be 0 (no tiling) or a multiple of {ALIGN} of at least {MIN_TILE} px, "
                          f"got {tile}", fields=("tile",))


def _axis(n: int, tile: int, halo: int) -> tuple[int, list[int], list[tuple[int, int]]]:
    """One axis of length n: (window, crop origins, cores [c0, c1)). Cores are balanced, at most
    ``tile`` px, multiples of 16 but the last; the window ≡ n (mod 16) so that a crop ending at
    the border starts on a multiple of 16. A window that would cover the axis means no split."""
    count = math.ceil(n / tile)
    if count > 1:
        core = math.ceil(math.ceil(n / count) / ALIGN) * ALIGN  # balanced, rounded up to a multiple of 16
        bounds = sorted({min(i * core, n) for i in range(count + 1)})
        cores = list(zip(bounds[:-1], bounds[1:], strict=True))
        window = max(min(n, c1 + halo) - max(0, c0 - halo) for c0, c1 in cores)
        window += (n - window) % ALIGN
        if window < n:
            return window, [min(max(0, c0 - halo), n - window) for c0, _ in cores], cores
    return n, [0], [(0, n)]


def tile_grid(shape: tuple[int, int], tile: int | None, halo: int = DEFAULT_HALO) -> TileGrid | None:
    """The grid for an (H, W) image, or None to run it whole.

    tile: core size in px (at most; cores are balanced), 0 for no tiling, None for auto (tiles of
    :data:`AUTO_TILE` above :data:`AUTO_TILE_PIXELS` pixels). halo: context on each side of a core,
    a multiple of 16 (>= 70 is exact, see the module docstring). None also when one crop would
    cover the whole image.
    """
    check_tile(tile)
    if halo < 0 or halo % ALIGN:
        raise OptionError(f"the tile halo must be a multiple of {ALIGN} px >= 0, got {halo}")
    h, w = shape
    if tile is None:
        if h * w <= AUTO_TILE_PIXELS:
            return None
        tile = AUTO_TILE
    if tile == 0:
        return None
    wy, oys, cys = _axis(h, tile, halo)
    wx, oxs, cxs = _axis(w, tile, halo)
    if len(cys) == len(cxs) == 1:
        return None
    origins = tuple((oy, ox) for oy in oys for ox in oxs)
    cores = tuple((y0, y1, x0, x1) for y0, y1 in cys for x0, x1 in cxs)
    return TileGrid((h, w), (wy, wx), origins, cores)


def _crop(image: jax.Array, origin: jax.Array, window: tuple[int, int]) -> jax.Array:
    """float32[1,H,W,3] -> float32[1,h,w,3], the window at ``origin`` (int32[2], y and x)."""
    return lax.dynamic_slice(image, (0, origin[0], origin[1], 0), (image.shape[0], *window, image.shape[3]))


def _core_mask(origin: jax.Array, core: jax.Array, size: tuple[int, int], level: int) -> jax.Array:
    """bool[1,h,w,1]: which responses of a crop's level-``level`` grid (h, w) lie in the core.

    Crop-local index i is image index (origin >> level) + i; the core is [c0 >> level, c1 >> level)
    (c1 = H at the border gives H >> level, the full grid's size: pooling drops odd rows)."""
    ys = (origin[0] >> level) + jnp.arange(size[0])
    xs = (origin[1] >> level) + jnp.arange(size[1])
    in_y = (ys >= core[0] >> level) & (ys < core[1] >> level)
    in_x = (xs >= core[2] >> level) & (xs < core[3] >> level)
    return (in_y[:, None] & in_x[None, :])[None, :, :, None]


def _core_gram(fmap: jax.Array, origin: jax.Array, core: jax.Array, level: int) -> jax.Array:
    """The Gram partial sum over the core's positions: float[1,h,w,C] -> float32[1,C,C]."""
    mask = _core_mask(origin, core, (fmap.shape[1], fmap.shape[2]), level)
    return objective.gram(jnp.where(mask, fmap, 0.0))


def _tile_partials(crop: jax.Array, origin: jax.Array, core: jax.Array, content_target: jax.Array | None,
                   params: vgg.Params, spec: LossSpec) -> tuple[dict[str, jax.Array], jax.Array]:
    """One crop float32[1,h,w,3] -> ({style layer: Gram partial float32[1,C,C]}, content partial float32[]),
    both summed over the core's positions only (content: ½ Σ (X − Y)², Y the full-image target)."""
    feats = vgg.features(params, crop, spec.layers, spec.pooling)
    grams = {layer: _core_gram(feats[layer], origin, core, vgg.level(layer)) for layer, _ in spec.style_layer_weights}
    content = jnp.float32(0.0)
    if spec.content_weight:
        fmap = feats[spec.content_layer].astype(jnp.float32)
        level = vgg.level(spec.content_layer)
        assert content_target is not None  # the caller passes it whenever there is a content term
        target = lax.dynamic_slice(content_target, (0, origin[0] >> level, origin[1] >> level, 0), fmap.shape)
        mask = _core_mask(origin, core, (fmap.shape[1], fmap.shape[2]), level)
        content = 0.5 * jnp.sum(jnp.where(mask, jnp.square(fmap - target.astype(jnp.float32)), 0.0))
    return grams, content


def _sum_partials(image: jax.Array, targets: Mapping[str, Any], params: vgg.Params, spec: LossSpec,
                  grid: TileGrid) -> tuple[dict[str, jax.Array], jax.Array]:
    """Pass 1: the full Grams {layer: float32[1,C,C]} and the content loss float32[], summed over tiles."""
    channels = {layer: params[layer]["w"].shape[-1] for layer, _ in spec.style_layer_weights}
    acc = ({layer: jnp.zeros((1, c, c), jnp.float32) for layer, c in channels.items()}, jnp.float32(0.0))
    for origin, core in _tile_arrays(grid):
        acc = _add_partials(acc, image, origin, core, targets["content"], params, spec, grid.window)
    return acc


@functools.partial(jax.jit, static_argnames=("spec", "window"), donate_argnames=("acc",))
def _add_partials(acc, image, origin, core, content_target, params, spec, window):
    part = _tile_partials(_crop(image, origin, window), origin, core, content_target, params, spec)
    return jax.tree.map(jnp.add, acc, part)


@functools.partial(jax.jit, static_argnames=("spec", "shape"))
def _style_terms(image: jax.Array, grams: Mapping[str, jax.Array], content: jax.Array,
                 target_grams: Mapping[str, jax.Array], spec: LossSpec, shape: tuple[int, int]
                 ) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """The loss terms (as :func:`jaxstyle.objective.loss_terms`'s) from the summed partials, and ∂L_style/∂G."""
    sizes = {layer: vgg.feature_shape(shape, layer) for layer in spec.style_layers}
    style, d_style = jax.value_and_grad(objective.style_from_grams)(grams, target_grams, spec.style_layer_weights,
                                                                    sizes)
    tv = objective.total_variation(image) if spec.tv_weight else jnp.float32(0.0)
    return objective.total(spec, content, style, tv), d_style


@functools.partial(jax.jit, static_argnames=("spec", "window"), donate_argnames=("grad",))
def _add_tile_grad(grad, image, origin, core, content_target, params, d_style, spec, window):
    """Pass 2 for one tile: grad + ∂/∂crop of β·Σ_l ⟨∂L_style/∂G_l, G_l(core)⟩ + α·L_content(core), added
    into the crop's window of ``grad`` (float32[1,H,W,3])."""

    def objective(crop):
        grams, content = _tile_partials(crop, origin, core, content_target, params, spec)
        style = sum(jnp.vdot(d_style[layer], grams[layer]) for layer in grams)
        return spec.style_weight * style + spec.content_weight * content

    g = jax.grad(objective)(_crop(image, origin, window))
    start = (0, origin[0], origin[1], 0)
    return lax.dynamic_update_slice(grad, lax.dynamic_slice(grad, start, g.shape) + g, start)


@functools.partial(jax.jit, static_argnames=("tv_weight",), donate_argnames=("grad",))
def _add_tv_grad(grad: jax.Array, image: jax.Array, tv_weight: float) -> jax.Array:
    return grad + tv_weight * jax.grad(objective.total_variation)(image)


def loss_terms(image: jax.Array, targets: Mapping[str, Any], params: vgg.Params, spec: LossSpec, grid: TileGrid
               ) -> dict[str, jax.Array]:
    """Tiled :func:`jaxstyle.objective.loss_terms` terms {"content", "style", "tv", "total"} (float32[]).

    image: float32[1,H,W,3] in [0,1], (H, W) = grid.shape; targets as for the untiled loss
    (``targets["content"]``: the full image's content response float32[1,H>>3,W>>3,C] or None).
    Not traceable (a Python loop over jitted tiles): call it outside ``jax.jit``.
    """
    grams, content = _sum_partials(image, targets, params, spec, grid)
    return _style_terms(image, grams, content, targets["grams"], spec, grid.shape)[0]


def value_and_grad(image: jax.Array, targets: Mapping[str, Any], params: vgg.Params, spec: LossSpec,
                   grid: TileGrid) -> tuple[dict[str, jax.Array], jax.Array]:
    """(:func:`loss_terms`, ∂total/∂image float32[1,H,W,3]): pass 1, then pass 2 tile by tile.

    Peak memory is one crop's VGG forward and backward plus a few full-image arrays.
    """
    grams, content = _sum_partials(image, targets, params, spec, grid)
    terms, d_style = _style_terms(image, grams, content, targets["grams"], spec, grid.shape)
    grad = jnp.zeros_like(image)
    for origin, core in _tile_arrays(grid):
        grad = _add_tile_grad(grad, image, origin, core, targets["content"], params, d_style, spec, grid.window)
    if spec.tv_weight:
        grad = _add_tv_grad(grad, image, spec.tv_weight)
    return terms, grad


@functools.lru_cache(maxsize=16)
def _tile_arrays(grid: TileGrid) -> tuple[tuple[jax.Array, jax.Array], ...]:
    """(origin int32[2], core int32[4]) per tile: traced, so one compile serves every tile."""
    return tuple((jnp.asarray(o, jnp.int32), jnp.asarray(c, jnp.int32))
                 for o, c in zip(grid.origins, grid.cores, strict=True))


@functools.partial(jax.jit, static_argnames=("window", "layers", "pooling"), donate_argnames=("acc",))
def _add_grams(acc, params, image, origin, core, window, layers, pooling):
    feats = vgg.features(params, _crop(image, origin, window), layers, pooling)
    return {layer: acc[layer] + _core_gram(feats[layer], origin, core, vgg.level(layer))[0] for layer in layers}


def grams(params: vgg.Params, image: jax.Array, grid: TileGrid, layers: tuple[str, ...], pooling: str
          ) -> dict[str, jax.Array]:
    """Full-image Grams of ``layers``, tile by tile: float32[1,H,W,3] in [0,1] -> {layer: float32[C,C]}
    (as ``objective.gram(features)[0]``, unnormalised)."""
    acc = {layer: jnp.zeros((params[layer]["w"].shape[-1],) * 2, jnp.float32) for layer in layers}
    for origin, core in _tile_arrays(grid):
        acc = _add_grams(acc, params, image, origin, core, grid.window, layers, pooling)
    return acc


@functools.partial(jax.jit, static_argnames=("window", "layer", "pooling"), donate_argnames=("out",))
def _put_responses(out, params, image, origin, core, window, layer, pooling):
    level = vgg.level(layer)
    fmap = vgg.features(params, _crop(image, origin, window), (layer,), pooling)[layer]
    start = (0, origin[0] >> level, origin[1] >> level, 0)
    mask = _core_mask(origin, core, fmap.shape[1:3], level)
    return lax.dynamic_update_slice(out, jnp.where(mask, fmap, lax.dynamic_slice(out, start, fmap.shape)), start)


def responses(params: vgg.Params, image: jax.Array, grid: TileGrid, layer: str, pooling: str) -> jax.Array:
    """Full-image responses of one layer, tile by tile: float32[1,H,W,3] in [0,1] ->
    float32[1,H>>level,W>>level,C] (as ``vgg.features``; each position from the crop whose core holds it)."""
    level = vgg.level(layer)
    h, w = grid.shape
    out = jnp.zeros((1, h >> level, w >> level, params[layer]["w"].shape[-1]), jnp.float32)
    for origin, core in _tile_arrays(grid):
        out = _put_responses(out, params, image, origin, core, grid.window, layer, pooling)
    return out
