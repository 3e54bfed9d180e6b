"""Slicer scenes (.mrml, .mrb): filled in by the scenes issue."""
