"""MicroAST's network (Wang et al., AAAI 2023): arbitrary style transfer in one small forward pass, no VGG.

A port of the authors' published model (MIT licence; see ``assets/microast/LICENSE``), written from
the paper and the architecture of their reference code, as pure functions over a params pytree.

* Two *micro encoders* of the same shape, one for the photo and one for the painting: a 9x9 conv,
  two stride-2 grouped 3x3 convs (each followed by a 1x1 conv), then two residual blocks; outputs
  ``feat1`` (after the first residual block) and ``feat2`` (after the second), float32[N,H/4,W/4,64].
* The *modulator* turns the painting's two features into per-channel filter weights and biases
  (a depthwise 3x3 conv, then the mean over positions): float32[64] each.
* The *decoder*: AdaIN of the photo's ``feat2`` to the painting's ``feat2`` statistics, a residual
  block whose conv outputs are modulated (``w * conv(x) + b * x``) by the signals of ``feat2``;
  AdaIN to ``feat1``'s statistics, a second modulated block with ``feat1``'s signals; then two
  bilinear x2 upsamplings, each followed by a grouped 3x3 conv and a 1x1 conv, and a 9x9 conv to RGB.
  ``alpha`` mixes each AdaIN result with its input (1: full style, 0: no feature statistics moved;
  the filter modulation is applied at every alpha, as the authors' code does).

Every conv reflection-pads by ``k // 2``; ReLU follows every conv but the residual blocks' second
ones and the last. Images are float32[N,H,W,3] RGB in [0,1] (no mean subtraction); the decoder's
output is unbounded and callers clip it. H and W must be multiples of 4 here; :func:`stylize_batch`
pads and crops any other size.

The painting's part (:func:`style_code`) is a few vectors, computed once per style and blended
linearly for several styles; the photo's part is one pass of the content encoder and the decoder.

The authors' files, the model file and the stylizer the package runs are in :mod:`.microast`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.nn import layers

Params = dict[str, Any]
StyleCode = dict[str, jax.Array]
"""A painting's modulation signals: ``mean1 std1 mean2 std2`` (its two features' statistics) and
``weight1 bias1 weight2 bias2`` (the modulator's outputs), each float32[64]."""

WIDTH = 64  # the encoders' output channels
MULTIPLE = 4  # two stride-2 convs: the sides a forward pass takes
EPS = 1e-5  # added to the variance in AdaIN's statistics, as in the reference

# (name, kernel, stride, groups, cin, cout) of each encoder conv before the residual blocks.
ENCODER_CONVS: tuple[tuple[str, int, int, int, int, int], ...] = (
    ("conv_in", 9, 1, 1, 3, 16),
    ("down1", 3, 2, 16, 16, 32),
    ("mix1", 1, 1, 1, 32, 32),
    ("down2", 3, 2, 32, 32, 64),
    ("mix2", 1, 1, 1, 64, 64),
)
# The decoder's convs after its residual blocks: (name, kernel, groups, cin, cout, upsample before).
DECODER_CONVS: tuple[tuple[str, int, int, int, int, bool], ...] = (
    ("up1", 3, 32, 64, 32, True),
    ("mix1", 1, 1, 32, 32, False),
    ("up2", 3, 16, 32, 16, True),
    ("mix2", 1, 1, 16, 16, False),
    ("conv_out", 9, 1, 16, 3, False),
)
MODULATOR = ("weight1", "bias1", "weight2", "bias2")  # each a depthwise 3x3 conv on feat1 (1) or feat2 (2)


# -- layers --------------------------------------------------------------------------------------


def dense_kernel(w: jax.Array, groups: int) -> jax.Array:
    """A grouped conv's kernel float[k,k,Cin/g,Cout] as the equal dense kernel float[k,k,Cin,Cout]
    (zero outside the diagonal blocks). XLA:CPU runs grouped convs with 1-2 input channels per group
    at well under 1 GMAC/s; the dense form does g times the multiply-adds at dense speed, with the
    same result (the extra products are exact zeros)."""
    if groups == 1:
        return w
    k, _, per_in, cout = w.shape
    per_out = cout // groups
    tiled = jnp.tile(w, (1, 1, groups, 1))  # [k,k,Cin,Cout]: tiled[..., ci, co] = w[..., ci % per_in, co]
    mask = (np.arange(groups * per_in)[:, None] // per_in) == (np.arange(cout)[None, :] // per_out)
    return tiled * jnp.asarray(mask, w.dtype)


def _lowering(kernel: int, stride: int, cin: int, cout: int) -> tuple[bool, int]:
    """How XLA:CPU runs a conv fastest here: (SAME over the padded input then cropped, or VALID;
    input channels to zero-pad to). Measured at 512x340 on 2 cores (docs/performance.md, "MicroAST"):
    the decoder's 3x3 64->32 and 32->16 convs took 49 and 112 ms VALID and 11 and 28 ms SAME-then-crop;
    the 9x9 16->3 conv 71 ms, and 19 ms with its input zero-padded to 20 channels and SAME (VALID with
    20 channels took 660 ms). The other convs (64->64 residual, the stride-2, 1x1 and 3->16 ones)
    were as fast or faster VALID."""
    if stride == 1 and kernel == 9 and 8 <= cin < 20:
        return True, 20
    if stride == 1 and kernel == 3 and cout < WIDTH:
        return True, cin
    return False, cin


def conv(x: jax.Array, layer: Mapping[str, jax.Array], stride: int = 1, groups: int = 1) -> jax.Array:
    """Reflection pad ``k // 2`` and a k x k conv: float[N,H,W,Cin] -> float[N,H',W',Cout]
    (H' = (H - 1) // stride + 1). ``layer``: ``w`` float[k,k,Cin/groups,Cout] (HWIO), ``b`` float[Cout].
    Grouped kernels run as their dense equivalent; the lowering (:func:`_lowering`) changes the speed,
    not the result (the extra products are exact zeros)."""
    w = layer["w"].astype(x.dtype)
    k, cin, cout = w.shape[0], x.shape[-1], w.shape[-1]
    if groups > 1:
        w = dense_kernel(w, groups)
    same, cin_run = _lowering(k, stride, cin, cout)
    pad = k // 2
    xp = layers.reflect_pad(x, pad)
    if cin_run > cin:
        xp = jnp.pad(xp, ((0, 0), (0, 0), (0, 0), (0, cin_run - cin)))
        w = jnp.pad(w, ((0, 0), (0, 0), (0, cin_run - cin), (0, 0)))
    dims = ("NHWC", "HWIO", "NHWC")
    if same:  # stride 1: the SAME output's inner part is the VALID output
        y = jax.lax.conv_general_dilated(xp, w, (1, 1), "SAME", dimension_numbers=dims)
        y = y[:, pad : pad + x.shape[1], pad : pad + x.shape[2]]
    else:
        y = jax.lax.conv_general_dilated(xp, w, (stride, stride), "VALID", dimension_numbers=dims)
    return y + layer["b"].astype(x.dtype)


def upsample_bilinear(x: jax.Array) -> jax.Array:
    """Bilinear x2 with half-pixel centres and clamped edges (PyTorch's ``align_corners=False``):
    float[N,H,W,C] -> float[N,2H,2W,C]. Output ``2i`` is ``x[i-1]/4 + 3x[i]/4``, ``2i+1`` is
    ``3x[i]/4 + x[i+1]/4``, per axis: a few shifted adds, no gather."""
    for axis in (1, 2):
        n = x.shape[axis]
        first = jax.lax.slice_in_dim(x, 0, 1, axis=axis)
        last = jax.lax.slice_in_dim(x, n - 1, n, axis=axis)
        prev = jnp.concatenate([first, jax.lax.slice_in_dim(x, 0, n - 1, axis=axis)], axis=axis)
        nxt = jnp.concatenate([jax.lax.slice_in_dim(x, 1, n, axis=axis), last], axis=axis)
        even = 0.75 * x + 0.25 * prev
        odd = 0.75 * x + 0.25 * nxt
        both = jnp.stack([even, odd], axis=axis + 1)
        shape = list(x.shape)
        shape[axis] = 2 * n
        x = both.reshape(shape)
    return x


# Bilinear x2 then a 3x3 conv, as one conv on the low-resolution input: output row 2i + a reads upsampled
# rows 2i + a - 1 .. 2i + a + 1, each a mix of input rows i - 1 .. i + 1 (rows of _PHASE_ROWS[a], per tap).
_PHASE_ROWS = (np.array([[0.75, 0.25, 0.0], [0.25, 0.75, 0.0], [0.0, 0.75, 0.25]], np.float32),
               np.array([[0.25, 0.75, 0.0], [0.0, 0.75, 0.25], [0.0, 0.25, 0.75]], np.float32))


def _edge_line(x: jax.Array, layer: Mapping[str, jax.Array], groups: int, first: bool) -> jax.Array:
    """The first (or last) output row of :func:`upsample_conv`, computed directly from two input rows:
    the one place where the conv sees the upsampled image's reflection. float[N,h,w,C] -> float[N,2w,Cout]."""
    up = upsample_bilinear(x[:, :2] if first else x[:, -2:])
    edge, inner = (up[:, 0], up[:, 1]) if first else (up[:, 3], up[:, 2])
    return conv(jnp.stack([inner, edge, inner], axis=1), layer, groups=groups)[:, 1]


def upsample_conv(x: jax.Array, layer: Mapping[str, jax.Array], groups: int = 1) -> jax.Array:
    """``conv(upsample_bilinear(x), layer, groups=groups)`` for a 3x3 layer, without making the large image:
    float[N,h,w,Cin] -> float[N,2h,2w,Cout], equal up to float rounding (tested).

    Each of the four output phases is a 3x3 conv of the edge-padded input (edge padding is the bilinear
    clamp), run as one conv with 4 * Cout outputs at the low resolution; the conv's reflection of the
    upsampled image reaches only the outermost output rows and columns, which are recomputed directly.
    At 512x384 the decoder's last such conv (32 -> 16 channels) took 23 ms this way against 30 ms."""
    w = dense_kernel(layer["w"].astype(x.dtype), groups)
    n, h, wd, _ = x.shape
    cout = w.shape[-1]
    rows = [jnp.asarray(r, x.dtype) for r in _PHASE_ROWS]
    kernel = jnp.concatenate([jnp.einsum("yu,xv,yxio->uvio", ra, rb, w) for ra in rows for rb in rows], axis=-1)
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    y = jax.lax.conv_general_dilated(xp, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    y = y[:, 1 : 1 + h, 1 : 1 + wd] + jnp.tile(layer["b"].astype(x.dtype), 4)
    y = y.reshape(n, h, wd, 2, 2, cout).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * wd, cout)
    y = y.at[:, 0].set(_edge_line(x, layer, groups, True)).at[:, -1].set(_edge_line(x, layer, groups, False))
    xt = x.transpose(0, 2, 1, 3)
    transposed = {"w": layer["w"].transpose(1, 0, 2, 3), "b": layer["b"]}
    y = y.at[:, :, 0].set(_edge_line(xt, transposed, groups, True))
    return y.at[:, :, -1].set(_edge_line(xt, transposed, groups, False))


def residual(x: jax.Array, block: Mapping[str, Any], weight: jax.Array | None = None,
             bias: jax.Array | None = None) -> jax.Array:
    """``x + conv2(relu(conv1(x)))``; with ``weight``/``bias`` float[C] each conv's output ``y`` of
    input ``u`` becomes ``weight * y + bias * u`` (the decoder's filter modulation)."""
    y = conv(x, block["conv1"])
    if weight is not None and bias is not None:
        y = weight * y + bias * x
    h = jax.nn.relu(y)
    y = conv(h, block["conv2"])
    if weight is not None and bias is not None:
        y = weight * y + bias * h
    return x + y


def mean_std(features: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per image and channel, the mean and std over positions of float[N,h,w,C] (the unbiased
    variance plus ``EPS``, as the reference): two float32[N,C]."""
    f = features.astype(jnp.float32)
    n = f.shape[1] * f.shape[2]
    mean = jnp.mean(f, axis=(1, 2))
    var = jnp.sum(jnp.square(f - mean[:, None, None]), axis=(1, 2)) / max(n - 1, 1)
    return mean, jnp.sqrt(var + EPS)


def adain(features: jax.Array, mean: jax.Array, std: jax.Array,
          stats: tuple[jax.Array, jax.Array] | None = None) -> jax.Array:
    """float[N,h,w,C] normalised per image and channel, then given ``mean``/``std`` float[C].
    ``stats``: the features' own (mean, std), float[N,C] each, when they come from elsewhere (tiles)."""
    c_mean, c_std = mean_std(features) if stats is None else stats
    normal = (features - c_mean[:, None, None]) / c_std[:, None, None]
    return normal * std + mean


# -- the four parts --------------------------------------------------------------------------------


def encode(encoder: Mapping[str, Any], images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A micro encoder: float32[N,H,W,3] in [0,1], H and W multiples of 4 -> (feat1, feat2),
    float32[N,H/4,W/4,64] each."""
    x = images
    for name, _, stride, groups, _, _ in ENCODER_CONVS:
        x = jax.nn.relu(conv(x, encoder[name], stride, groups))
    feat1 = residual(x, encoder["res1"])
    return feat1, residual(feat1, encoder["res2"])


def modulate(modulator: Mapping[str, Any], feat1: jax.Array, feat2: jax.Array) -> dict[str, jax.Array]:
    """The modulator: a style's features float[N,h,w,64] -> ``weight1 bias1 weight2 bias2`` float32[N,64]
    (a depthwise 3x3 conv, averaged over positions)."""
    out = {}
    for name in MODULATOR:
        source = feat1 if name.endswith("1") else feat2
        out[name] = jnp.mean(conv(source, modulator[name], groups=WIDTH), axis=(1, 2))
    return out


def style_code(params: Mapping[str, Any], style: jax.Array) -> StyleCode:
    """One painting float32[H,W,3] in [0,1] (any size of at least 16 px a side) -> its
    :data:`StyleCode`: the statistics of the style encoder's two features and the modulator's signals.
    The sides are padded to multiples of 4 by reflection, as the photo's are."""
    padded, _ = layers.pad_to_multiple(jnp.asarray(style, jnp.float32)[None], MULTIPLE)
    feat1, feat2 = encode(params["style_encoder"], padded)
    mean1, std1 = mean_std(feat1)
    mean2, std2 = mean_std(feat2)
    signals = modulate(params["modulator"], feat1, feat2)
    code = {"mean1": mean1, "std1": std1, "mean2": mean2, "std2": std2, **signals}
    return {k: v[0] for k, v in code.items()}


_style_code = jax.jit(style_code)  # per photo when strength < 1: every video frame, one compile per size


def blend_codes(codes: Sequence[StyleCode], weights: Sequence[float] | None = None) -> StyleCode:
    """Several paintings' codes mixed linearly (weights normalised to sum 1; None: equal)."""
    w = np.ones(len(codes)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    return {k: jnp.tensordot(jnp.asarray(w, jnp.float32), jnp.stack([c[k] for c in codes]), axes=1) for k in codes[0]}


def decode_head(decoder: Mapping[str, Any], content_feat2: jax.Array, code: StyleCode, alpha: jax.Array,
                stats2: tuple[jax.Array, jax.Array] | None = None,
                stats4: tuple[jax.Array, jax.Array] | None = None) -> jax.Array:
    """The decoder's modulated part, at 1/4 size: float[N,h,w,64] -> float[N,h,w,64].

    ``stats2``/``stats4``: the per-image (mean, std) of ``content_feat2`` and of the first block's
    output, when a caller computed them over a whole image that runs in tiles."""
    x = content_feat2
    x = alpha * adain(x, code["mean2"], code["std2"], stats2) + (1.0 - alpha) * x
    x = residual(x, decoder["res1"], code["weight2"], code["bias2"])
    x = alpha * adain(x, code["mean1"], code["std1"], stats4) + (1.0 - alpha) * x
    return residual(x, decoder["res2"], code["weight1"], code["bias1"])


def decode_tail(decoder: Mapping[str, Any], x: jax.Array) -> jax.Array:
    """The decoder's upsampling part: float[N,h,w,64] -> float[N,4h,4w,3], unbounded."""
    for name, _, groups, _, _, up in DECODER_CONVS:
        x = upsample_conv(x, decoder[name], groups) if up else conv(x, decoder[name], groups=groups)
        if name != "conv_out":
            x = jax.nn.relu(x)
    return x


def forward(params: Mapping[str, Any], images: jax.Array, code: StyleCode, alpha: float | jax.Array = 1.0
            ) -> jax.Array:
    """Photos float32[N,H,W,3] in [0,1] (H, W multiples of 4) and a style code -> float32[N,H,W,3],
    unbounded (the reference's output before clipping)."""
    _, feat2 = encode(params["content_encoder"], images)
    head = decode_head(params["decoder"], feat2, code, jnp.asarray(alpha, jnp.float32))
    return decode_tail(params["decoder"], head)


@jax.jit
def _stylize(params: Mapping[str, Any], images: jax.Array, code: StyleCode, alpha: jax.Array) -> jax.Array:
    return jnp.clip(forward(params, images, code, alpha), 0.0, 1.0)


# Above TILE_PIXELS an image runs in tiles, in bounded memory (untiled, the full-resolution buffers
# grow about 1 GB per 2 megapixels). The network is local except for AdaIN's two per-channel
# statistics, so the tiled run is the untiled one up to float rounding: the encoder and the
# upsampling tail run on overlapping windows that keep only their cores (the halos cover their
# receptive fields: 23 px for the encoder, 13 px for the tail), the statistics are taken over the
# whole quarter-size feature maps, and the residual blocks run in windows of those maps.
# (Its own windows, not Gatys's tiles: jaxstyle.methods.gatys.tiling's docstring says why.)
TILE_PIXELS = 2_100_000  # 1920x1080 still runs in one pass
TILE = 1024  # a window's core side at full resolution (a multiple of 4)
HALO = 32  # context on each side at full resolution (a multiple of 4, at least the encoder's 23 px)


def _windows(length: int, core: int, halo: int) -> list[tuple[int, int, int, int]]:
    """Cover ``range(length)`` with cores of ``core``, each in a window of one fixed size ``core +
    2 halo`` (or ``length``, when shorter) that lies inside the range: windows at the ends are shifted
    inwards, so a window's edge is either the image's edge or ``halo`` away from its core.
    Returns ``(window start, window stop, core start, core stop)`` per window."""
    size = min(length, core + 2 * halo)
    out = []
    for start in range(0, length, core):
        stop = min(length, start + core)
        lo = min(max(start - halo, 0), length - size)
        out.append((lo, lo + size, start, stop))
    return out


def _run_tiled(fn: Any, x: np.ndarray, scale: float, core: int, halo: int, channels: int) -> np.ndarray:
    """Apply a local ``fn`` (float32[1,h,w,C] -> float32[1,h*scale,w*scale,channels]) to float32[H,W,C]
    window by window; each window's core is kept. ``core`` and ``halo`` are in ``x``'s pixels; with
    ``scale`` < 1 window starts are multiples of ``1 / scale`` so strides line up."""
    h, w = x.shape[:2]
    out = np.empty((round(h * scale), round(w * scale), channels), np.float32)
    for y0, y1, cy0, cy1 in _windows(h, core, halo):
        for x0, x1, cx0, cx1 in _windows(w, core, halo):
            window = np.asarray(fn(jnp.asarray(x[None, y0:y1, x0:x1])))[0]
            rows = slice(round((cy0 - y0) * scale), round((cy1 - y0) * scale))
            cols = slice(round((cx0 - x0) * scale), round((cx1 - x0) * scale))
            out[round(cy0 * scale) : round(cy1 * scale), round(cx0 * scale) : round(cx1 * scale)] = window[rows, cols]
    return out


def _host_mean_std(features: np.ndarray) -> tuple[jax.Array, jax.Array]:
    """:func:`mean_std` of one float32[h,w,C] on the host, in float64 sums: two float32[1,C]."""
    f = features.reshape(-1, features.shape[-1])
    mean = f.mean(axis=0, dtype=np.float64)
    var = np.zeros_like(mean)
    for chunk in range(0, len(f), 1 << 20):
        var += np.square(f[chunk : chunk + (1 << 20)] - mean).sum(axis=0)
    var /= max(len(f) - 1, 1)
    return jnp.asarray(mean[None], jnp.float32), jnp.asarray(np.sqrt(var + EPS)[None], jnp.float32)


@jax.jit
def _encode2(encoder: Mapping[str, Any], images: jax.Array) -> jax.Array:
    return encode(encoder, images)[1]


@jax.jit
def _head_block(block: Mapping[str, Any], x: jax.Array, mean: jax.Array, std: jax.Array, stats: Any,
                weight: jax.Array, bias: jax.Array, alpha: jax.Array) -> jax.Array:
    x = alpha * adain(x, mean, std, stats) + (1.0 - alpha) * x
    return residual(x, block, weight, bias)


@jax.jit
def _tail(decoder: Mapping[str, Any], x: jax.Array) -> jax.Array:
    return jnp.clip(decode_tail(decoder, x), 0.0, 1.0)


def stylize_tiled(params: Mapping[str, Any], image: np.ndarray, code: StyleCode, alpha: float = 1.0,
                  tile: int = TILE) -> np.ndarray:
    """:func:`stylize_batch` for one large image float32[H,W,3] (sides multiples of 4), in the memory
    of one ``tile`` x ``tile`` window plus three quarter-size feature maps on the host."""
    if tile % MULTIPLE or tile < 64:
        raise ValueError(f"tile must be a multiple of {MULTIPLE} and at least 64, got {tile}")
    dec = params["decoder"]
    a = jnp.float32(alpha)
    q_tile, q_halo = tile // MULTIPLE, HALO // MULTIPLE
    feat2 = _run_tiled(functools.partial(_encode2, params["content_encoder"]), np.asarray(image, np.float32),
                       1 / MULTIPLE, tile, HALO, WIDTH)
    x = feat2
    for block, key in (("res1", "2"), ("res2", "1")):
        stats = _host_mean_std(x)
        fn = functools.partial(_head_block, dec[block], mean=code["mean" + key], std=code["std" + key], stats=stats,
                               weight=code["weight" + key], bias=code["bias" + key], alpha=a)
        x = _run_tiled(lambda t, fn=fn: fn(x=t), x, 1, q_tile, q_halo, WIDTH)
    return _run_tiled(functools.partial(_tail, dec), x, MULTIPLE, q_tile, q_halo, 3)


def stylize_batch(params: Mapping[str, Any], images: Any, code: StyleCode, alpha: float = 1.0) -> np.ndarray:
    """Any size: float32[N,H,W,3] in [0,1] -> the same shape, stylised and clipped to [0,1]
    (padded to multiples of 4, cropped back; above ``TILE_PIXELS`` per image in tiles)."""
    padded, (h, w) = layers.pad_to_multiple(jnp.asarray(images, jnp.float32), MULTIPLE)
    if h * w > TILE_PIXELS:
        out = np.stack([stylize_tiled(params, np.asarray(image), code, alpha) for image in padded])
    else:
        out = np.asarray(_stylize(params, padded, code, jnp.float32(alpha)))
    return out[:, :h, :w]
