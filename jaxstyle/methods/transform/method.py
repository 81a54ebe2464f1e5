"""The ``transform`` method as the front ends see it (:class:`jaxstyle.methods.registry.Method`): trained
transform nets (shipped or from ``bin/train``), one pass. Registered in ``jaxstyle/methods/__init__.py``."""

from __future__ import annotations

import functools

from jaxstyle.errors import OptionError
from jaxstyle.methods.registry import Method, StyleJob, Stylizer


def shipped_names() -> list[str]:
    """The shipped transform nets' style names (the web page's list)."""
    from jaxstyle.methods.transform import net

    return list(net.shipped_models())


def build(job: StyleJob) -> Stylizer:
    """The nets named by ``job.styles`` (shipped names or model files; setting ``fast``: their half-width
    variants, see :class:`jaxstyle.methods.transform.options.TransformOptions`), mixed by ``style_weights``,
    as :func:`jaxstyle.run.transform_stylizer`; loaded nets are kept in ``job.cache``."""
    from jaxstyle import run
    from jaxstyle.methods.transform import net
    from jaxstyle.methods.transform.options import TransformOptions

    options = TransformOptions(fast=bool(job.setting("fast", False)))
    options.validate()
    fast = options.fast
    names: list[str] = []
    for style in job.styles:
        if not isinstance(style, str):
            raise OptionError("transform takes trained models (a shipped name or a model file), not a painting")
        names.append(style)
    models = [job.cached(f"transform:{name}" + (":fast" if fast else ""),
                         functools.partial(net.load_transform, name, fast=fast)) for name in names]
    return run.transform_stylizer(models, weights=job.style_weights, strength=job.strength,
                                  preserve_color=job.preserve_color)


METHOD = Method(
    "transform", "trained styles, seconds", label="Fast", options="jaxstyle.methods.transform.options:TransformOptions",
    build=build, per_frame=True, web=True, style_images=False, strength=True, style_names=shipped_names,
    help_title="transform (trained nets, one pass)",
)
