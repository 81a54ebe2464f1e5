"""Building blocks, pure and jittable: the shared layers and the VGG19 loss network."""
