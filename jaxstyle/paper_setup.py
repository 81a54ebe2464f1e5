"""What the paper's experiments (:mod:`jaxstyle.paper`) share: the models and content photos they take, and
the loss they measure with and the back-propagation they run.

* :class:`Model` / :func:`load_model`: a transform net to evaluate; :func:`list_content`,
  :func:`working_content`: the content photos, float32[H, W, 3] in [0, 1] at the working size.
* :func:`loss_spec`, :func:`targets_for`, :func:`image_losses`: the paper preset's L_content and L_style
  (the metric of Tables 1-2); :func:`run_backprop`: Gatys et al. with that preset.

Everything is importable from :mod:`jaxstyle.paper` too.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jaxstyle.errors import ImageError
from jaxstyle.io import images as imagelib
from jaxstyle.nn.vgg import MIN_SIDE
from jaxstyle.paper_report import PRESET, TERMS


@dataclasses.dataclass(frozen=True)
class Model:
    """A transform net to evaluate: ``params`` (the float32 pytree :func:`transform.apply` takes),
    the file's ``metadata`` (training settings, e.g. ``warmup_steps``), the name it was given by
    and the file it came from."""

    name: str
    path: Path
    params: Any
    metadata: dict


def load_model(name_or_path: str | os.PathLike[str]) -> Model:
    """A shipped model name (``starry_night``...) or a ``.msgpack`` file -> :class:`Model`.

    Raises WeightsError (one line) for an unknown name or a missing / corrupt / foreign file.
    """
    from jaxstyle.methods.transform import net as transform

    path = transform.resolve_transform(name_or_path)
    params, metadata = transform.read_transform(path)
    return Model(str(name_or_path), path.resolve(), params, metadata)


def default_content_dir() -> Path:
    """``$JAXSTYLE_DATA/content``, else ``content/`` in the current folder (the checkout's ``bin/`` launchers
    set ``$JAXSTYLE_DATA`` to the shared data beside it)."""
    data = os.environ.get("JAXSTYLE_DATA")
    return (Path(data) if data else Path.cwd()) / "content"


def list_content(folder: str | os.PathLike[str], limit: int | None = None) -> list[Path]:
    """The image files directly in ``folder``, sorted by name; the first ``limit`` if given.

    Raises ImageError for a missing folder, a file instead of a folder, or a folder with no images.
    """
    folder = Path(folder)
    if not folder.exists():
        raise ImageError(f"{folder}: no such content folder")
    if not folder.is_dir():
        raise ImageError(f"{folder}: the content folder must be a folder of images, not a file")
    paths = imagelib.list_images([folder], recursive=False)
    return paths[:limit] if limit is not None else paths


def working_content(image: np.ndarray, size: int, name: str = "image") -> np.ndarray:
    """float32[H, W, 3] -> float32[h, w, 3] with long side ``size``; refuses a short side < 16 px."""
    out = imagelib.fit_long_side(image, size)
    if min(out.shape[:2]) < MIN_SIDE:
        h, w = out.shape[:2]
        raise ImageError(f"{name}: at size {size} the image is {w}x{h}; VGG19 needs sides of at least "
                         f"{MIN_SIDE} px (use a larger size)", fields=("size",))
    return out


# -- losses ----------------------------------------------------------------------------------------


def loss_spec():
    """The paper preset's loss (the metric of Tables 1-2): α=1, β=1e3, conv4_2 content,
    conv1_1..conv5_1 style (w_l = 0.2), average pooling, no TV."""
    from jaxstyle.methods.gatys import presets

    return presets.make_options(PRESET).loss_spec(with_content=True)


def loss_settings() -> dict[str, Any]:
    """:func:`loss_spec` as the results record it: weights, layers and pooling."""
    spec = loss_spec()
    return {"content_weight": spec.content_weight, "style_weight": spec.style_weight,
            "content_layer": spec.content_layer, "style_layers": dict(spec.style_layer_weights),
            "pooling": spec.pooling}


def targets_for(content: np.ndarray, style: np.ndarray, vgg_params: Any) -> dict[str, Any]:
    """:func:`loop.make_targets` for float32[H,W,3] ``content`` (already at the working size) and
    the full-size ``style``, resized with ``fit_pixels(style, H*W)`` exactly as ``gatys`` does."""
    from jaxstyle.methods.gatys import loop

    h, w = content.shape[:2]
    return loop.make_targets(vgg_params, loss_spec(), (h, w), content, [imagelib.fit_pixels(style, h * w)])


def image_losses(image: np.ndarray, targets: Mapping[str, Any], vgg_params: Any) -> dict[str, float]:
    """The paper's unweighted L_content and L_style (and α·L_content + β·L_style as ``total``) of
    float32[H, W, 3] ``image``: exactly :func:`loop.evaluate_loss` with the default loss spec."""
    import jax.numpy as jnp

    from jaxstyle.methods.gatys import loop

    terms = loop.evaluate_loss(jnp.asarray(image, jnp.float32)[None], targets, vgg_params, loss_spec())
    return {k: float(terms[k]) for k in TERMS}


def device_vgg(vgg_params: Any) -> dict:
    """VGG19 params (numpy or jax) on the default device, only the layers the losses use."""
    from jaxstyle import vgg_weights

    return vgg_weights.on_device(vgg_params)


def backprop_key(name: str, style_name: str, shape: tuple[int, ...], iterations: int) -> str:
    """The cache key of one back-prop output: content name, style name, ``HxW`` and iterations."""
    return f"{name}|{style_name}|{shape[0]}x{shape[1]}|{iterations}"


def run_backprop(content: np.ndarray, style: np.ndarray, vgg_params: Any, iterations: int,
                 callback: Callable[[int, Any, Any], None] | None = None):
    """``api.gatys`` with the :data:`PRESET` options at the content's own size (no resizing:
    float32[H, W, 3] ``content`` is already at the working size). Returns its GatysResult."""
    from jaxstyle.methods.gatys import api

    return api.gatys(content, style, vgg_params=vgg_params, preset=PRESET, iterations=iterations, size=None,
                          callback=callback)
