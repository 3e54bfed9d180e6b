"""Slicer scenes: MRML, MRB bundles, node sequences and XNAT catalogs, through the registry."""
