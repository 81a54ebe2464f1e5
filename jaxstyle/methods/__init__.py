"""One package per way of stylising: ``gatys`` (back-propagation and texture), ``transform`` (the
feed-forward net) and ``arbitrary`` (any painting in one pass).

Each method is declared once (a :class:`jaxstyle.methods.registry.Method`, in its package's ``method``
module) and registered here, one line each; the command line, the web page, video and
:mod:`jaxstyle.run` take the methods from :mod:`jaxstyle.methods.registry`. The order here is the order
they are listed in.
"""

from jaxstyle.methods import registry
from jaxstyle.methods.arbitrary import method as arbitrary_method
from jaxstyle.methods.gatys import method as gatys_method
from jaxstyle.methods.transform import method as transform_method

registry.register(transform_method.METHOD)
registry.register(arbitrary_method.METHOD)
registry.register(gatys_method.GATYS)
registry.register(gatys_method.TEXTURE)
