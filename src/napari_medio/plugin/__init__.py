"""napari adapter: the only package that imports napari or Qt."""
