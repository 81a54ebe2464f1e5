"""Arbitrary-style transfer: any painting in one forward pass.

:mod:`.wct` holds WCT/AdaIN (style statistics, feature transforms, tiling, ``make_stylizer`` and
``arbitrary``); :mod:`.vgg_decoders` the decoders it inverts VGG19 features with, their training loss
and their model file (the ``decoders`` kind of :mod:`jaxstyle.io.modelfile`).
"""
