"""jaxstyle: artistic style transfer in JAX (Gatys back-propagation, texture synthesis
and Johnson-style feed-forward transform networks).

Python API (imported lazily so ``import jaxstyle`` stays fast)::

    jaxstyle.gatys(content, style, **options) -> GatysResult
    jaxstyle.texture(style, size, **options) -> GatysResult
    jaxstyle.arbitrary(content, style, **options) -> float32[H,W,3]: any painting, one pass (MicroAST)
    jaxstyle.make_stylizer(painting, **options) -> a function on batches, the painting prepared once
    jaxstyle.build_stylizer(method, jaxstyle.StyleJob(styles, ...)) -> a function on batches of any
        registered one-pass method (jaxstyle.methods.registry), as the command line and the web page build it
    jaxstyle.stylize(img, params) -> stylised img (same kind, shape, dtype)
    jaxstyle.load_transform("scream") -> params of a shipped model (or a model file)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "gatys": "jaxstyle.methods.gatys.api",
    "texture": "jaxstyle.methods.gatys.api",
    "GatysResult": "jaxstyle.methods.gatys.loop",
    "GatysOptions": "jaxstyle.methods.gatys.presets",
    "arbitrary": "jaxstyle.methods.arbitrary.stylizer",
    "make_stylizer": "jaxstyle.methods.arbitrary.stylizer",
    "build_stylizer": "jaxstyle.run",
    "StyleJob": "jaxstyle.methods.registry",
    "stylize": "jaxstyle.methods.transform.net",
    "load_transform": "jaxstyle.methods.transform.net",
    "save_transform": "jaxstyle.methods.transform.net",
    "load_image": "jaxstyle.io.images",
    "save_image": "jaxstyle.io.images",
    "load_vgg_params": "jaxstyle.vgg_weights",
    "JaxstyleError": "jaxstyle.errors",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'jaxstyle' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
