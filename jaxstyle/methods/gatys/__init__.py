"""The Gatys et al. method: optimise the image itself against the VGG19 objective, and texture synthesis.

From the options to the result: :mod:`.presets` (:class:`~.presets.GatysOptions`, the presets),
:mod:`.optimizers` (sign / Adam / L-BFGS and the jitted step), :mod:`.loop` (the targets and one
scale's loop, with the convergence watch and the EMA on the device), :mod:`.pyramid` (coarse to fine),
:mod:`.api` (``gatys`` and ``texture``); :mod:`.tiling` computes the same loss in tiles for large images.
"""
