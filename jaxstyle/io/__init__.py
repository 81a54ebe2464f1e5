"""Everything that touches files: images, built-in styles, model files, the legacy-torch reader.

Each module here is a leaf: it imports no net and no method.
"""
