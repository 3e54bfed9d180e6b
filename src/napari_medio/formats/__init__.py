"""One module per file-format family; each registers itself with the registry on import."""
