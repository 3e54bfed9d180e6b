"""OME-Zarr: exact round trips, validation, lazy local and remote (HTTP) reads, multiscale."""
from __future__ import annotations

import functools
import http.server
import threading

import numpy as np
import pytest

import napari_medio
from napari_medio.core import registry
from napari_medio.core.geometry import Geometry
from napari_medio.core.volume import AxisInfo, Volume
from napari_medio.formats.ome_zarr import read_ome_zarr, write_ome_zarr
from tests.volumes import OBLIQUE_FLIPPED

pytest.importorskip("zarr")


def _oblique_4d() -> Volume:
    a = np.random.default_rng(0).integers(-1000, 3000, (3, 20, 150, 140)).astype(np.int16)
    return Volume(a, OBLIQUE_FLIPPED, name="cardiac",
                  extra_axes=[AxisInfo("time", "ms", [0.0, 40.0, 80.0], "time")])


def _labelmap() -> Volume:
    a = np.zeros((30, 200, 180), np.uint8)
    a[5:20, 40:150, 30:120] = 1
    a[10:15, 60:90, 50:70] = 7
    g = Geometry([0.5, 0.5, 1.25], [-40.0, 12.0, -80.5], np.diag([-1.0, 1.0, -1.0]))
    return Volume(a, g, kind="labelmap", name="seg",
                  metadata={"color_table": {1: {"name": "liver", "color": [0.8, 0.4, 0.2, 1.0]},
                                            7: {"name": "tumour", "color": [1.0, 1.0, 0.0, 1.0]}}})


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("make", [_oblique_4d, _labelmap])
def test_round_trip_exact(tmp_path, version, make):
    vol = make()
    out = tmp_path / "x.ome.zarr"
    assert registry.find_writer(out, kind=vol.kind).name == "ome-zarr"
    napari_medio.write(vol, out, ngff_version=version)
    assert registry.find_reader(out).name == "ome-zarr"
    back = napari_medio.read(out)[0]
    assert back.kind == vol.kind and back.name == vol.name
    assert back.geometry.almost_equal(vol.geometry, 1e-6)
    assert np.array_equal(np.asarray(back.array), vol.array)
    assert [a.to_dict() for a in back.extra_axes] == [a.to_dict() for a in vol.extra_axes]
    assert back.metadata["ome_zarr"]["levels"] >= 2
    if vol.kind == "labelmap":
        assert back.metadata["color_table"][7]["name"] == "tumour"
    # converts to NIfTI and back with the same geometry and voxels
    napari_medio.write(back, tmp_path / "x.nii.gz")
    again = napari_medio.read(tmp_path / "x.nii.gz")[0]
    assert again.geometry.almost_equal(vol.geometry, 1e-6) and np.array_equal(again.array, vol.array)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_validators_accept_what_we_write(tmp_path, version):
    zarr = pytest.importorskip("zarr")
    models = pytest.importorskip("ome_zarr_models")
    for make in (_oblique_4d, _labelmap):
        out = tmp_path / f"{make.__name__}.ome.zarr"
        write_ome_zarr(make(), out, ngff_version=version)
        models.open_ome_zarr(zarr.open_group(str(out), mode="r"))  # raises when invalid
    ome_zarr = pytest.importorskip("ome_zarr.reader")
    from ome_zarr.io import parse_url

    nodes = list(ome_zarr.Reader(parse_url(str(tmp_path / "_oblique_4d.ome.zarr")))())
    assert nodes and len(nodes[0].data) >= 2  # ome-zarr-py sees the pyramid


def test_axis_aligned_ngff_transform_is_the_world_geometry(tmp_path):
    import json

    g = Geometry([0.5, 0.6, 2.0], [-10.0, 20.0, 30.0], np.eye(3))
    write_ome_zarr(Volume(np.zeros((4, 300, 300), np.int16), g), tmp_path / "a.ome.zarr")
    ms = json.loads((tmp_path / "a.ome.zarr" / ".zattrs").read_text())["multiscales"][0]
    t = ms["datasets"][0]["coordinateTransformations"]
    assert t[0]["scale"] == [2.0, 0.6, 0.5] and t[1]["translation"] == [30.0, 20.0, -10.0]
    # a foreign file without our namespace gets the same geometry from scale + translation
    attrs = json.loads((tmp_path / "a.ome.zarr" / ".zattrs").read_text())
    del attrs["napari_medio"]
    (tmp_path / "a.ome.zarr" / ".zattrs").write_text(json.dumps(attrs))
    assert read_ome_zarr(tmp_path / "a.ome.zarr")[0].geometry.almost_equal(g, 1e-9)


def test_read_is_lazy_and_multiscale_layer(tmp_path):
    from napari_medio.plugin.layers import to_layer_data, volume_from_layer

    write_ome_zarr(_oblique_4d(), tmp_path / "c.ome.zarr")
    vol = napari_medio.read(tmp_path / "c.ome.zarr")[0]
    assert type(vol.array).__module__.startswith("dask")
    [(data, kwargs, kind)] = to_layer_data(vol)
    assert kind == "image" and kwargs["multiscale"] is True and len(data) >= 2
    assert all(d.shape[:2] == data[0].shape[:2] for d in data)
    back = volume_from_layer(data, kwargs)
    assert back.geometry.almost_equal(vol.geometry, 1e-6)


def test_failed_write_keeps_previous_folder(tmp_path):
    out = tmp_path / "k.ome.zarr"
    write_ome_zarr(_labelmap(), out)
    bad = Volume(np.zeros((4, 5, 6), dtype=np.complex64), Geometry.identity())
    with pytest.raises(napari_medio.core.errors.MedioError):
        write_ome_zarr(bad, out)
    assert read_ome_zarr(out)[0].kind == "labelmap"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.ome.zarr"]


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        return super().do_GET()

    def do_HEAD(self):
        self.server.requests.append("HEAD " + self.path)
        return super().do_HEAD()


@pytest.fixture
def http_root(tmp_path):
    handler = functools.partial(_CountingHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}", server.requests
    server.shutdown()
    server.server_close()


@pytest.mark.network
@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_remote_read_fetches_only_needed_chunks(http_root, version):
    pytest.importorskip("aiohttp")
    root, url, requests = http_root
    vol = Volume(np.arange(64 * 512 * 512, dtype=np.uint16).reshape(64, 512, 512) % 4000,
                 Geometry([0.5, 0.5, 1.0], [0, 0, 0], np.eye(3)), name="remote")
    write_ome_zarr(vol, root / "r.ome.zarr", ngff_version=version, chunks=(8, 256, 256))
    remote = read_ome_zarr(f"{url}/r.ome.zarr")[0]
    assert remote.geometry.almost_equal(vol.geometry, 1e-9)
    requests.clear()
    slab = np.asarray(remote.array[10])
    assert np.array_equal(slab, vol.array[10])
    chunk_requests = [r for r in requests if "/0/" in r and not r.endswith(("zarray", "zattrs", "json"))]
    # one slice of 8 x 256 x 256 chunks touches 2 x 2 = 4 chunks of the 8 x 2 x 2 = 32 in level 0
    assert len(chunk_requests) == 4, requests


@pytest.mark.network
def test_remote_url_through_registry_and_napari_reader(http_root):
    """A URL goes through napari_medio.read and the npe2 reader like a local path."""
    pytest.importorskip("aiohttp")
    import napari_medio
    from napari_medio.core.errors import UnsupportedFormatError
    from napari_medio.plugin.reader import get_reader

    root, url, _ = http_root
    vol = Volume(np.arange(4 * 6 * 8, dtype=np.int16).reshape(4, 6, 8),
                 Geometry([0.5, 0.5, 1.0], [1, 2, 3], np.eye(3)), name="remote")
    write_ome_zarr(vol, root / "u.ome.zarr")
    [remote] = napari_medio.read(f"{url}/u.ome.zarr")
    assert np.array_equal(np.asarray(remote.array), vol.array)
    reader = get_reader(f"{url}/u.ome.zarr")
    assert reader is not None
    layers = reader(f"{url}/u.ome.zarr")
    assert layers and layers[0][2] == "image"
    with pytest.raises(UnsupportedFormatError):
        napari_medio.read(f"{url}/scan.nii.gz")
