"""The feed-forward transform net (Johnson et al.): :mod:`.net` holds the Flax net, its inference
and its model file reader/writer (registered as the ``transform`` kind of :mod:`jaxstyle.io.modelfile`)."""
