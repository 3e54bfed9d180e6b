"""DICOM: series assembly, SEG/RT/SR objects, the database, export and network (DIMSE and DICOMweb)."""
