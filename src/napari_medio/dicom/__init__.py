"""DICOM: database, series assembly, export and network (filled in by the DICOM issues)."""
