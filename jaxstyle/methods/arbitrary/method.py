"""The ``arbitrary`` method as the front ends see it (:class:`jaxstyle.methods.registry.Method`): any
painting in one pass, by one of the models of :mod:`jaxstyle.methods.arbitrary.stylizer`. Registered in
``jaxstyle/methods/__init__.py``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from jaxstyle.methods.registry import Method, StyleJob, Stylizer
from jaxstyle.options import option

#: The painting's long side before its statistics; the same as ``stylizer.DEFAULT_STYLE_SIZE`` (kept here
#: so that declaring the method imports no model).
STYLE_SIZE = 512


def models() -> Sequence[str]:
    """The arbitrary models' names (:func:`jaxstyle.methods.arbitrary.stylizer.model_names`)."""
    from jaxstyle.methods.arbitrary import stylizer

    return stylizer.model_names()


@dataclasses.dataclass(frozen=True)
class ArbitraryModelOptions:
    """Which arbitrary model runs, and with which decoders: the command line's ``--arbitrary-model`` and
    ``--decoders`` are generated from these fields (:func:`jaxstyle.cli.options.add_options`), beside
    :class:`jaxstyle.methods.arbitrary.wct.ArbitraryOptions` (the settings of a model once chosen).

    arbitrary_model: a name of :func:`models` (None: :func:`jaxstyle.methods.arbitrary.stylizer.resolve_model`
    decides). Its choices are the model registry's, read when the command line is built (declaring this
    class imports no model). decoders: a decoder set's name or file, for the wct/adain models (None: the
    shipped set).
    """

    arbitrary_model: str | None = option(
        None, "microast: the pretrained MicroAST model (the default); wct: VGG19 features whitened and coloured "
        "with the painting's covariance, decoded by the decoders trained here; adain: the same with each "
        "channel's mean and spread only, faster and milder", group="arbitrary", show_default=False)
    decoders: str | None = option(
        None, "wct/adain: the decoder set, a shipped name or a file from bin/train --decoders (default: the "
        "shipped 'photo' set; giving it picks wct)", metavar="NAME|FILE", group="arbitrary", show_default=False)

    def resolve(self, feature_transform: str | None = None, levels: Sequence[int] | None = None) -> str:
        """The model to run (:func:`jaxstyle.methods.arbitrary.stylizer.resolve_model`: ``arbitrary_model``,
        else ``feature_transform``, else wct when ``decoders`` or ``levels`` are given, else the default);
        OptionError for an unknown model or decoder options with a model without decoders."""
        from jaxstyle.methods.arbitrary import stylizer

        return stylizer.resolve_model(self.arbitrary_model, feature_transform,
                                      decoder_options=self.decoders is not None or levels is not None)

    def validate(self, feature_transform: str | None = None, levels: Sequence[int] | None = None) -> None:
        """OptionError if these options (with ``feature_transform`` and ``levels``) pick no model (:meth:`resolve`)."""
        self.resolve(feature_transform, levels)


def build(job: StyleJob) -> Stylizer:
    """The paintings of ``job.styles``, prepared once by :func:`jaxstyle.methods.arbitrary.stylizer.make_stylizer`.

    Settings: ``arbitrary_model`` (or the older ``feature_transform``), ``decoders`` (a decoder set's
    name or file, wct/adain), ``levels``, ``style_size`` (the painting's long side, default
    :data:`STYLE_SIZE`) times ``style_scale``. Weights come from ``job.cache`` when there (by model name:
    MicroAST's params, or the decoders; ``vgg``: VGG19's params), else the shipped ones are loaded.
    """
    from jaxstyle.methods.arbitrary import stylizer, vgg_decoders

    decoder_set, levels = job.setting("decoders"), job.setting("levels")
    model = ArbitraryModelOptions(job.setting("arbitrary_model"), decoder_set).resolve(
        job.setting("feature_transform"), levels)
    paintings = job.paintings()
    cache = job.cache if job.cache is not None else {}
    weights: dict = {"microast_params": cache.get(model)}
    if stylizer.get_model(model).decoders:
        weights = {"decoders": job.cached(model if decoder_set is None else f"{model}:{decoder_set}",
                                          lambda: vgg_decoders.load_decoders(decoder_set or
                                                                             vgg_decoders.DEFAULT_DECODERS))}
        if job.cache is not None:
            from jaxstyle.vgg_weights import load_vgg_params

            weights["vgg_params"] = job.cached("vgg", load_vgg_params)
    size = round(job.setting("style_size", STYLE_SIZE) * job.setting("style_scale", 1.0))
    return stylizer.make_stylizer(paintings, model=model, style_weights=job.style_weights, style_size=size,
                                  preserve_color=job.preserve_color, strength=job.strength,
                                  levels=tuple(levels) if levels else None, **weights)


METHOD = Method(
    "arbitrary", "any painting, seconds", options="jaxstyle.methods.arbitrary.wct:ArbitraryOptions",
    build=build, per_frame=True, web=True, strength=True, models=models, model_option="arbitrary_model",
    style_side=STYLE_SIZE, help_title="arbitrary (any painting, one pass)",
)
