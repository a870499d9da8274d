"""Turn handlers, one module per capability."""
