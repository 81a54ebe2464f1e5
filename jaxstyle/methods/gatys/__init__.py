"""The Gatys et al. method: optimise the image itself against the VGG19 objective (and texture
synthesis). :mod:`.backprop` holds the options, the loop and the API; :mod:`.tiling` the tiled loss."""
