"""Storage: the content-addressed encrypted blob store and the metadata database adapters."""
