"""Readers and writers reject keyword options they do not know, naming the option."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import napari_medio
from napari_medio.cli import main
from napari_medio.core import CancelledError, registry
from napari_medio.core.errors import MedioError, OptionError
from napari_medio.core.model import Model
from napari_medio.core.progress import Progress
from tests.volumes import scalar_3d

#: Registered functions that pass every option on to another registry call, which checks them.
DELEGATES = {("displacement-field", "write")}


def test_a_misspelled_read_option_is_an_error_naming_it(tmp_path):
    napari_medio.write(scalar_3d(), tmp_path / "v.nrrd")
    with pytest.raises(OptionError) as info:
        napari_medio.read(tmp_path / "v.nrrd", lablemap=True)
    text = str(info.value)
    assert "unknown option 'lablemap' for the nrrd reader" in text and str(tmp_path / "v.nrrd") in text
    assert "known: labelmap, mmap, name, progress" in text
    assert isinstance(info.value, MedioError)


def test_a_misspelled_write_option_is_an_error_naming_it(tmp_path):
    with pytest.raises(OptionError, match="unknown option 'compresion_level' for the nifti writer; "
                                         "known: compression_level, progress"):
        napari_medio.write(scalar_3d(), tmp_path / "v.nii.gz", compresion_level=1)
    assert not (tmp_path / "v.nii.gz").exists()


def test_an_option_of_another_format_is_an_error(tmp_path):
    model = Model.from_polygons(np.eye(3), [[0, 1, 2]], name="tri")
    napari_medio.write(model, tmp_path / "m.stl")
    with pytest.raises(OptionError, match="'labelmap' for the stl reader"):
        napari_medio.read(tmp_path / "m.stl", labelmap=True)
    with pytest.raises(OptionError, match="'compress' for the obj writer"):
        napari_medio.write(model, tmp_path / "m.obj", compress=False)  # OBJ is text only


def test_cli_reports_an_option_the_format_does_not_take(tmp_path, capsys):
    napari_medio.write(scalar_3d(), tmp_path / "v.nrrd")
    assert main(["convert", str(tmp_path / "v.nrrd"), str(tmp_path / "v.mha"), "--compression-level", "3"]) == 1
    err = capsys.readouterr().err
    assert "unknown option 'compression_level' for the metaimage writer; known: compress, progress" in err
    model = Model.from_polygons(np.eye(3), [[0, 1, 2]], name="tri")
    napari_medio.write(model, tmp_path / "m.stl")
    assert main(["convert", str(tmp_path / "m.stl"), str(tmp_path / "m.vtk"), "--labelmap"]) == 1
    assert "unknown option 'labelmap' for the stl reader" in capsys.readouterr().err
    assert not (tmp_path / "m.vtk").exists() and not (tmp_path / "v.mha").exists()


def test_progress_is_taken_by_every_format_and_a_cancel_is_honoured(tmp_path):
    """A format that reports no progress of its own is still cancelled through the registry."""
    model = Model.from_polygons(np.eye(3), [[0, 1, 2]], name="tri")
    napari_medio.write(model, tmp_path / "m.stl", progress=Progress())
    assert len(napari_medio.read(tmp_path / "m.stl", progress=Progress())) == 1
    cancelled = Progress()
    cancelled.cancel()
    with pytest.raises(CancelledError):
        napari_medio.read(tmp_path / "m.stl", progress=cancelled)
    with pytest.raises(CancelledError):
        napari_medio.write(model, tmp_path / "other.stl", progress=cancelled)
    assert not (tmp_path / "other.stl").exists()


def test_applicable_options_keep_what_the_format_knows():
    nrrd, stl = registry.get_format("nrrd"), registry.get_format("stl")
    options = {"labelmap": True, "coordinate_system": "RAS"}
    assert registry.applicable_options(nrrd, "read", options) == {"labelmap": True}
    assert registry.applicable_options(stl, "read", options) == {"coordinate_system": "RAS"}


def _functions():
    for fmt in registry.formats():
        for operation in ("read", "write"):
            if getattr(fmt, operation) is not None:
                yield fmt, operation


def test_every_format_states_its_options():
    """No reader or writer swallows options (``**_``): each names what it takes."""
    open_ended = {(fmt.name, op) for fmt, op in _functions() if registry.option_names(fmt, op) is None}
    assert open_ended == DELEGATES


def test_documented_options_are_taken():
    """Every option a format documents reaches its function (or the function passes options on)."""
    for fmt, operation in _functions():
        params = inspect.signature(getattr(fmt, operation)).parameters
        if any(p.kind == p.VAR_KEYWORD for p in params.values()):
            continue
        documented = fmt.read_options if operation == "read" else fmt.write_options
        assert set(documented) <= set(params), (fmt.name, operation, set(documented) - set(params))


def test_a_batch_reports_a_misspelled_write_option_once_before_writing(tmp_path):
    from napari_medio.batch import BatchItem, convert_batch

    napari_medio.write(scalar_3d(), tmp_path / "a.nrrd")
    with pytest.raises(OptionError, match=r"\*\.nii\.gz: unknown option 'compresion_level' for the nifti writer"):
        convert_batch([BatchItem(source=str(tmp_path / "a.nrrd"), name="a")], tmp_path / "out", "nii.gz",
                      write_options={"compresion_level": 1})
    assert not (tmp_path / "out").exists()
    registry.check_write_options("x.nrrd", {"crop_to_minimum_extent": True})  # a .seg.nrrd-name writer knows it
