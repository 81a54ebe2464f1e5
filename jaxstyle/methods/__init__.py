"""One package per way of stylising: ``gatys`` (back-propagation and texture), ``transform`` (the
feed-forward net) and ``arbitrary`` (any painting in one pass)."""
