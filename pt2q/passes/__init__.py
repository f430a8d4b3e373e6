"""Graph passes used by prepare/convert (one pass per file)."""
