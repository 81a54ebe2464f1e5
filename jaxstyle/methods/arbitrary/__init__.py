"""Arbitrary-style transfer: any painting in one forward pass. :mod:`.wct` holds WCT/AdaIN with
trained decoders (registered as the ``decoders`` kind of :mod:`jaxstyle.io.modelfile`)."""
