"""One way to run arbitrary style (any painting, one pass), whichever model does it.

Models (:func:`model_names`, also :data:`MODELS`): ``microast`` (the default: the authors' pretrained
MicroAST, :mod:`.microast`), ``wct`` and ``adain`` (VGG19 features matched to the painting's statistics and
decoded by the decoders trained here, :mod:`.wct`). Each is one :class:`Model`, registered once with
:func:`register_model` (the built-in ones at the bottom of this module); ``--arbitrary-model``, the web
page's model menu and :func:`make_stylizer` read that registry. The CLI, the web page, video and the
Python API all call :func:`make_stylizer`; it prepares the paintings once (their long side, their
blend) and returns a function on batches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from jaxstyle import color
from jaxstyle.errors import OptionError
from jaxstyle.io import images as imagelib
from jaxstyle.methods.arbitrary import microast, wct
from jaxstyle.methods.registry import Registry
from jaxstyle.options import check_strength

DEFAULT_MODEL = "microast"
# The painting's long side before its statistics (the scale of its strokes): MicroAST was judged with
# photo and painting both at 512 px (docs/performance.md, "MicroAST"); the WCT decoders use the same.
DEFAULT_STYLE_SIZE = wct.DEFAULT_STYLE_SIZE


@dataclasses.dataclass(frozen=True)
class Model:
    """One arbitrary-style model. ``make(paintings, *, name, style_weights, strength, microast_params,
    decoders, vgg_params, levels)``: paintings float32[h,w,3] in [0,1], already at their long side ->
    a stylizer ``float32[N,H,W,3] in [0,1] -> the same shape`` (the keywords as :func:`make_stylizer`'s;
    a model ignores the weights it does not use). decoders: it decodes VGG19 features with a decoder
    set (it takes ``decoders`` and ``levels``). label: its line in the web page's model menu (None: the name)."""

    name: str
    make: Callable[..., Callable[[np.ndarray], np.ndarray]]
    decoders: bool = False
    label: str | None = None


_MODELS: Registry[Model] = Registry("arbitrary model")


def register_model(model: Model) -> Model:
    """Add ``model`` (a name not yet taken) to the models; returns it. Registration order is the order
    the command line and the web page list them in."""
    return _MODELS.register(model)


def unregister_model(name: str) -> Model:
    """Remove the model ``name`` (tests that register their own); returns it. KeyError if unknown."""
    return _MODELS.unregister(name)


def get_model(name: str) -> Model:
    """The registered model ``name`` (KeyError if unknown; :func:`resolve_model` checks names first)."""
    return _MODELS.get(name)


def model_names() -> tuple[str, ...]:
    """The registered models' names, in registration order."""
    return _MODELS.names()


def __getattr__(name: str) -> Any:
    # MODELS: the registered models' names, read from the registry when asked for.
    if name == "MODELS":
        return model_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve_model(model: str | None = None, feature_transform: str | None = None, *,
                  decoder_options: bool = False) -> str:
    """The model to run: ``model`` if given; else a ``feature_transform`` (``wct``/``adain``, the older way
    to ask for the decoders); else ``wct`` when decoder options (decoders, levels) were given; else
    :data:`DEFAULT_MODEL`. OptionError for an unknown model or decoder options with MicroAST."""
    if feature_transform is not None and feature_transform not in wct.FEATURE_TRANSFORMS:
        raise OptionError(f"feature_transform must be one of {', '.join(wct.FEATURE_TRANSFORMS)}, got "
                          f"{feature_transform!r}", fields=("feature_transform",))
    chosen = model or feature_transform or ("wct" if decoder_options else DEFAULT_MODEL)
    _MODELS.check(chosen, "model")
    if model is not None and feature_transform is not None and model != feature_transform:
        raise OptionError(f"feature_transform {feature_transform!r} picks that model; it cannot be combined with "
                          f"model {model!r}", fields=("feature_transform",))
    if decoder_options and not _MODELS.get(chosen).decoders:
        with_decoders = " and ".join(m.name for m in _MODELS.items() if m.decoders)
        raise OptionError(f"decoders and levels work with the {with_decoders} models, not {chosen}",
                          fields=("model",))
    return chosen


def prepare_styles(style: Any, style_weights: Sequence[float] | None = None,
                   style_size: int | None = DEFAULT_STYLE_SIZE) -> list[np.ndarray]:
    """One painting or a list of them (PIL images or arrays, uint8[H,W,3] or float32[H,W,3] in [0,1]) ->
    float32[h,w,3] in [0,1] each, at ``style_size`` on the long side (None keeps it), after checking
    ``style_weights`` against their number."""
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    color.check_weights(len(styles), style_weights)
    prepared = [imagelib.to_float_image(s) for s in styles]
    if style_size is not None:
        prepared = [imagelib.fit_long_side(s, style_size) for s in prepared]
    return prepared


def make_stylizer(
    style: Any,
    *,
    model: str | None = None,
    style_weights: Sequence[float] | None = None,
    style_size: int | None = DEFAULT_STYLE_SIZE,
    preserve_color: bool = False,
    strength: float = 1.0,
    feature_transform: str | None = None,
    microast_params: Mapping[str, Any] | None = None,
    decoders: Mapping[str, Any] | None = None,
    vgg_params: Any = None,
    levels: Sequence[int] | None = None,
) -> Callable[[np.ndarray], np.ndarray]:
    """Prepare a style once; returns ``stylize(images float32[N,H,W,3] in [0,1]) -> the same shape``.

    style: a painting (PIL image or array) or a list of them, blended by ``style_weights``.
    model: one of :func:`model_names` (see :func:`resolve_model`). style_size: the painting's long side
    (larger = smaller strokes). strength: 0 keeps the photo's features, 1 takes the painting's
    statistics fully (MicroAST's alpha; for wct/adain the mix in VGG feature space).
    preserve_color: the output's luminance with the photo's chroma. microast_params / decoders /
    vgg_params: preloaded weights (the shipped ones when None). levels: wct/adain only.
    """
    chosen = resolve_model(model, feature_transform, decoder_options=decoders is not None or levels is not None)
    check_strength(strength)
    paintings = prepare_styles(style, style_weights, style_size)
    stylize = _MODELS.get(chosen).make(paintings, name=chosen, style_weights=style_weights, strength=strength,
                                   microast_params=microast_params, decoders=decoders, vgg_params=vgg_params,
                                   levels=levels)
    if not preserve_color:
        return stylize

    def stylize_keeping_colors(images: np.ndarray) -> np.ndarray:
        return color.keep_colors(stylize(images), np.asarray(images, np.float32))

    return stylize_keeping_colors


def arbitrary(content: Any, style: Any, *, size: int | None = None, **options: Any) -> np.ndarray:
    """Stylise ``content`` with any painting in one pass (MicroAST by default).

    content: a PIL image or array (uint8[H,W,3] or float32[H,W,3] in [0,1]); size: the output's long
    side (None keeps the content's). ``style`` and the options: as :func:`make_stylizer`.
    Returns float32[H,W,3] in [0,1].
    """
    photo = imagelib.to_float_image(content)
    if size is not None:
        photo = imagelib.fit_long_side(photo, size)
    return make_stylizer(style, **options)(photo[None])[0]


def _make_microast(paintings: list[np.ndarray], *, style_weights: Sequence[float] | None, strength: float,
                   microast_params: Mapping[str, Any] | None, **unused: Any) -> Callable[[np.ndarray], np.ndarray]:
    return microast.make_stylizer(paintings, style_weights=style_weights, strength=strength, params=microast_params)


def _make_wct(paintings: list[np.ndarray], *, name: str, style_weights: Sequence[float] | None, strength: float,
              decoders: Mapping[str, Any] | None, vgg_params: Any, levels: Sequence[int] | None,
              **unused: Any) -> Callable[[np.ndarray], np.ndarray]:
    return wct.make_stylizer(paintings, style_weights=style_weights, decoders=decoders, vgg_params=vgg_params,
                             strength=strength, feature_transform=name,
                             levels=None if levels is None else tuple(levels))


register_model(Model("microast", _make_microast, label="MicroAST: crisp, any size (pretrained)"))
register_model(Model("wct", _make_wct, decoders=True, label="WCT: full colour statistics (trained here)"))
register_model(Model("adain", _make_wct, decoders=True, label="AdaIN: mean and spread, gentler (trained here)"))
