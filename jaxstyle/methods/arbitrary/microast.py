"""MicroAST as the package runs it: the port of the authors' released files, the model file and the
shipped weights, and :func:`make_stylizer` (paintings -> a function on batches).

The network itself (encoders, modulator, decoder, tiling for large images) is :mod:`.microast_net`;
its names are importable from here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.errors import WeightsError
from jaxstyle.io import modelfile
from jaxstyle.io.torchfile import read_legacy_torch
from jaxstyle.methods.arbitrary.microast_net import (
    DECODER_CONVS,
    ENCODER_CONVS,
    EPS,
    MODULATOR,
    MULTIPLE,
    WIDTH,
    Params,
    StyleCode,
    _style_code,
    adain,
    blend_codes,
    conv,
    decode_head,
    decode_tail,
    dense_kernel,
    encode,
    forward,
    mean_std,
    modulate,
    residual,
    style_code,
    stylize_batch,
    stylize_tiled,
    upsample_bilinear,
    upsample_conv,
)

__all__ = [
    "DECODER_CONVS", "DEFAULT_NAME", "ENCODER_CONVS", "EPS", "FORMAT", "FORMAT_VERSION", "KIND", "MODULATOR",
    "MULTIPLE", "OWN_CODE_SIZE", "SOURCE", "SOURCE_FILES", "WIDTH", "Params", "StyleCode", "adain", "blend_codes",
    "conv", "decode_head", "decode_tail", "dense_kernel", "encode", "expected_shapes", "forward",
    "from_torch_state", "load_params", "make_stylizer", "mean_std", "modulate", "read_authors_files",
    "read_model", "residual", "save_model", "style_code", "stylize_batch", "stylize_tiled", "upsample_bilinear",
    "upsample_conv",
]


# -- the authors' files ----------------------------------------------------------------------------

SOURCE_FILES = {part: f"{part}_iter_160000.pth.tar" for part in ("content_encoder", "style_encoder", "modulator",
                                                                    "decoder")}
SOURCE = "github.com/EndyWon/MicroAST at 5a6c905, models/*_iter_160000.pth.tar (MIT licence)"


def _hwio(w: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(w, np.float32).transpose(2, 3, 1, 0))


def expected_shapes() -> dict[str, Any]:
    """The params pytree's shapes (HWIO kernels, biases), the one description of the file's contents."""

    def layer(k: int, per_in: int, cout: int) -> dict[str, tuple[int, ...]]:
        return {"w": (k, k, per_in, cout), "b": (cout,)}

    block = {c: layer(3, WIDTH, WIDTH) for c in ("conv1", "conv2")}
    encoder: dict[str, Any] = {name: layer(k, cin // g, cout) for name, k, _, g, cin, cout in ENCODER_CONVS}
    encoder.update(res1=block, res2=block)
    decoder: dict[str, Any] = {name: layer(k, cin // g, cout) for name, k, g, cin, cout, _ in DECODER_CONVS}
    decoder.update(res1=block, res2=block)
    return {"content_encoder": encoder, "style_encoder": dict(encoder),
            "modulator": {name: layer(3, 1, WIDTH) for name in MODULATOR}, "decoder": decoder}


def from_torch_state(parts: Mapping[str, Mapping[str, np.ndarray]]) -> Params:
    """The authors' four state dicts (``content_encoder``, ``style_encoder``, ``modulator``,
    ``decoder``; torch names, OIHW kernels) -> this module's params (float32, HWIO). Raises ValueError
    naming the first missing key or wrong shape."""

    def take(state: Mapping[str, np.ndarray], key: str, shape: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
        for suffix in ("weight", "bias"):
            if f"{key}.{suffix}" not in state:
                raise ValueError(f"missing {key}.{suffix}")
        w, b = _hwio(state[f"{key}.weight"]), np.asarray(state[f"{key}.bias"], np.float32)
        if w.shape != shape["w"] or b.shape != shape["b"]:
            raise ValueError(f"{key} has shape {w.shape}, expected {shape['w']} (HWIO)")
        return {"w": w, "b": b}

    shapes = expected_shapes()

    def block(state: Mapping[str, np.ndarray], prefix: str) -> dict[str, Any]:
        return {c: take(state, f"{prefix}.{c}.conv_layer", shapes["decoder"]["res1"][c]) for c in ("conv1", "conv2")}

    def encoder(state: Mapping[str, np.ndarray]) -> dict[str, Any]:
        # enc1 is a Sequential of conv, ReLU pairs (indices 0, 2, ..., 8), then a residual block at 10.
        out: dict[str, Any] = {name: take(state, f"enc1.{2 * i}.conv_layer", shapes["content_encoder"][name])
                               for i, (name, *_) in enumerate(ENCODER_CONVS)}
        out.update(res1=block(state, "enc1.10"), res2=block(state, "enc2.0"))
        return out

    # dec3: Upsample, conv, ReLU, conv, ReLU, Upsample, conv, ReLU, conv, ReLU, conv.
    decoder: dict[str, Any] = {name: take(parts["decoder"], f"dec3.{index}.conv_layer", shapes["decoder"][name])
                               for index, (name, *_) in zip((1, 3, 6, 8, 10), DECODER_CONVS, strict=True)}
    decoder.update(res1=block(parts["decoder"], "dec1"), res2=block(parts["decoder"], "dec2"))
    modulator = {name: take(parts["modulator"], f"{name}.0.conv_layer", shapes["modulator"][name])
                 for name in MODULATOR}
    return {"content_encoder": encoder(parts["content_encoder"]), "style_encoder": encoder(parts["style_encoder"]),
            "modulator": modulator, "decoder": decoder}


def read_authors_files(folder: Any) -> Params:
    """The four ``*_iter_160000.pth.tar`` files in ``folder`` -> params float32. They are legacy torch
    files, read by the restricted unpickler (tensor data only, no code). WeightsError (one line, naming
    the file) on a missing, corrupt or foreign file."""
    from pathlib import Path

    parts = {}
    for part, name in SOURCE_FILES.items():
        parts[part] = read_legacy_torch(Path(folder) / name)
    try:
        return from_torch_state(parts)
    except ValueError as err:
        raise WeightsError(f"{folder}: not MicroAST's released weights ({err})") from None


FORMAT = "jaxstyle-microast"
FORMAT_VERSION = 1
DEFAULT_NAME = "microast"  # jaxstyle/assets/microast/microast.msgpack


def save_model(path: Any, params: Mapping[str, Any], metadata: Mapping[str, Any], dtype: Any = np.float16) -> Any:
    """Write params to one msgpack model file (atomic, no pickle), fp16 by default, plus ``<path>.json``.
    fp16 changed 512 px outputs by at most 1.9/255 (mean 0.1/255) against fp32, measured 2026-12-03."""
    return modelfile.write_file(path, FORMAT, FORMAT_VERSION, dict(params), dict(metadata), dtype)


def read_model(path: Any) -> tuple[Params, dict[str, Any]]:
    """(params float32, metadata) of a :func:`save_model` file; WeightsError (one line, naming the
    file) on a missing, corrupt or foreign file, or one whose shapes are not MicroAST's."""
    hint = "reinstall jaxstyle"
    params, metadata = modelfile.read_file(path, FORMAT, FORMAT_VERSION, "MicroAST model", hint)
    shapes = jax.tree.map(lambda a: tuple(np.shape(a)), params)
    want = jax.tree.map(tuple, expected_shapes(), is_leaf=lambda v: isinstance(v, tuple))
    if shapes != want:
        raise WeightsError(f"{path}: the file's parameters are not MicroAST's; {hint}")
    return params, metadata


def load_params(name_or_path: Any = DEFAULT_NAME) -> Params:
    """A shipped MicroAST model's params by name (``microast``) or those of a :func:`save_model` file,
    float32."""
    return modelfile.load(name_or_path, kind=KIND)[0]


KIND = "microast"
modelfile.register(modelfile.Kind(KIND, "microast", read_model, "MicroAST model",
                                  "the shipped one is 'microast'; reinstall jaxstyle if it is missing"))


OWN_CODE_SIZE = 512  # the photo's long side for its own code (the paintings' default scale)


def make_stylizer(style_images: Sequence[np.ndarray], *, style_weights: Sequence[float] | None = None,
                  strength: float = 1.0, params: Mapping[str, Any] | None = None) -> Any:
    """Paintings float32[H,W,3] in [0,1] (already at the size their strokes should have) -> ``stylize(images
    float32[N,H,W,3] in [0,1]) -> the same shape``. The paintings' codes are computed here, once, and blended
    by ``style_weights``. ``params``: the shipped model when None.

    ``strength`` below 1 blends the paintings' code with the photo's own (its code at ``OWN_CODE_SIZE`` px,
    computed per photo): 0 repaints the photo in its own colours and statistics. The authors' ``alpha``
    (:func:`forward`) mixes only the AdaIN statistics while the filter modulation stays whole; with the
    released weights it gave flat one-colour images between 0 and 1 (over 99.9% of pixels outside [0, 1] at
    alpha 0.25, 0.5 and 0.75; docs/performance.md, "MicroAST"), so the stylizer always runs alpha 1.
    """
    from jaxstyle.io import images as imagelib

    device_params = jax.device_put(load_params() if params is None else dict(params))
    code = blend_codes([style_code(device_params, jnp.asarray(s)) for s in style_images], style_weights)

    def stylize(images: np.ndarray) -> np.ndarray:
        if strength == 1.0:
            return stylize_batch(device_params, images, code)
        out = []
        for image in np.asarray(images, np.float32):
            own = _style_code(device_params, jnp.asarray(imagelib.fit_long_side(image, OWN_CODE_SIZE)))
            out.append(stylize_batch(device_params, image[None], blend_codes([code, own], [strength, 1 - strength]))[0])
        return np.stack(out)

    return stylize
