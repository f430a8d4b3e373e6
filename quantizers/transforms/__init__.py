"""Graph rewrites quantizers run in ``transform_for_annotation`` (before ``annotate``)."""
