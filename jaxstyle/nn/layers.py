"""Building blocks shared by the nets: reflection padding, upsampling folded into a conv, instance
norm, and the reflection-padded conv (Flax).

Arrays are float[N,H,W,C] (NHWC) throughout; kernels float32[k,k,Cin,Cout] (HWIO).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def reflect_pad(x: jax.Array, pad: int) -> jax.Array:
    """Reflection padding of H and W by ``pad`` (edge not repeated), float[N,H,W,C]."""
    if pad == 0:
        return x
    return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def pad_to_multiple(images: jax.Array, multiple: int) -> tuple[jax.Array, tuple[int, int]]:
    """Pad float[N,H,W,C] at the bottom and right to multiples of ``multiple`` (reflected; repeated edges
    where a side is too short to reflect); returns the padded batch and the original (H, W). Nets whose
    strides or pools need whole multiples run on it and crop their output back, so the padded rows only
    give the last rows their context."""
    h, w = images.shape[1], images.shape[2]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        mode = "reflect" if min(h, w) > max(ph, pw) else "edge"
        images = jnp.pad(images, ((0, 0), (0, ph), (0, pw), (0, 0)), mode=mode)
    return images, (h, w)


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


def padded_channels(channels: int, kernel: int) -> int:
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


class _SameConv(nn.Module):
    """:class:`ReflectConv`'s inner conv, the one that holds the params: a k x k conv with SAME padding,
    float[N,H,W,Cin] -> float[N,ceil(H/s),ceil(W/s),features].

    Not a second conv to pick from: it exists as a module only so that the params sit where the model
    files have them (``<layer>/conv/kernel``, ``<layer>/conv/bias``, as ``nn.Conv`` names them; float32
    [k,k,Cin,features] and [features]). Channel counts that hit a slow XLA:CPU path are padded: inputs
    with zeros (and the kernel with zero slices), outputs computed and sliced off (see
    ``padded_channels``). With ``upsample`` (3x3, stride 1 only) the input is first upsampled x2
    (nearest) and the conv sees it reflection-padded: see ``upsample_conv``.
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
        cin_run = padded_channels(cin, self.kernel)
        if cin_run != cin:
            x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, cin_run - cin)))
            kernel = jnp.pad(kernel, ((0, 0), (0, 0), (0, cin_run - cin), (0, 0)))
        cout_run = self.features if self.upsample else padded_channels(self.features, self.kernel)
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


class ReflectConv(_SameConv):
    """The nets' conv: k x k over a reflection-padded input (output size = input size / stride),
    float[N,H,W,Cin] -> float[N,H/s,W/s,features] (x2 with ``upsample``).

    Runs as a SAME conv over the padded input, then crops: XLA's CPU backend has a fast path only
    for SAME-style padding, and a VALID conv measured 2-25x slower here (docs/performance.md).
    For stride 1 the crop drops ``pad`` on each side (about 6% extra work at 256 px). For stride
    2 on an even padded size, SAME pads 0 before and 1 after, so output ``i`` is centred on padded
    pixel ``2i + pad`` exactly as a VALID conv's; the crop keeps the first H/2 rows and W/2
    columns. Both are bit-identical to the VALID conv (tested). With ``upsample`` the input is
    upsampled x2 (nearest) first, folded into the conv (``upsample_conv``). Its fields are the inner
    conv's (``features``, ``kernel``, ``stride``, ``upsample``, ``dtype``), declared there once.
    """

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.upsample:
            if self.kernel != 3 or self.stride != 1:
                raise ValueError("upsampling ReflectConv supports 3x3, stride 1 only")
            return _SameConv(self.features, 3, upsample=True, dtype=self.dtype, name="conv")(x)
        pad = self.kernel // 2
        h, w = x.shape[1], x.shape[2]
        y = _SameConv(self.features, self.kernel, self.stride, dtype=self.dtype, name="conv")(reflect_pad(x, pad))
        if self.stride == 1:
            return y[:, pad : pad + h, pad : pad + w, :] if pad else y
        if self.stride != 2 or pad != 1 or h % 2 or w % 2:
            raise ValueError(f"strided ReflectConv supports stride 2, 3x3, even sizes; got {self.stride}, {h}x{w}")
        return y[:, : h // 2, : w // 2, :]
