"""The ``gatys`` and ``texture`` methods as the front ends see them (:class:`jaxstyle.methods.registry.Method`):
back-propagation through VGG19, run by :func:`jaxstyle.run.run_gatys` (no one-pass stylizer). Registered in
``jaxstyle/methods/__init__.py``."""

from __future__ import annotations

from jaxstyle.methods.registry import Method

OPTIONS = "jaxstyle.methods.gatys.presets:GatysOptions"

GATYS = Method(
    "gatys", "any painting, minutes", options=OPTIONS, web=True,
    help_title="gatys and texture (back-propagation; unset options come from --preset)",
)
#: A texture of the style from noise: no content photo; its options and help section are gatys'.
TEXTURE = Method("texture", "a texture from noise, minutes", options=OPTIONS, content=False)
