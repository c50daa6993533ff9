"""Zoo downloads against a real HTTP server: cache, verification, errors, unsafe files."""

import os

import pytest
import torch

from ride_dive import model_zoo
from ride_dive.checkpoint import CheckpointError
from ride_dive.model_zoo import DownloadError, ManifestError

from .conftest import ZOO_NAME, checkpoint_bytes, write_zoo, zoo_model


@pytest.fixture
def zoo(zoo_server, tmp_path):
    """A served zoo holding a random model of ZOO_NAME; returns a dict of everything."""
    server, base_url = zoo_server
    model = zoo_model()
    payload = checkpoint_bytes(model, tmp_path)
    manifest = str(tmp_path / "manifest.json")
    entry = write_zoo(server.root, manifest, payload)
    kwargs = {
        "base_url": base_url,
        "cache": str(tmp_path / "cache"),
        "manifest": manifest,
        "progress": False,
    }
    return {
        "server": server,
        "model": model,
        "payload": payload,
        "manifest": manifest,
        "entry": entry,
        "kwargs": kwargs,
        "cache_dir": str(tmp_path / "cache" / "model_zoo"),
    }


def _leftovers(cache_dir):
    found = []
    for directory, _, files in os.walk(cache_dir):
        found += [os.path.join(directory, f) for f in files]
    return found


def test_download_verifies_and_caches(zoo):
    path = model_zoo.download(ZOO_NAME, **zoo["kwargs"])
    assert open(path, "rb").read() == zoo["payload"]
    assert path.startswith(zoo["cache_dir"])
    assert zoo["server"].requests == ["/zoo/" + zoo["entry"]["file"]]
    # A cache hit: verified again, but no second request.
    assert model_zoo.download(ZOO_NAME, **zoo["kwargs"]) == path
    assert len(zoo["server"].requests) == 1
    assert _leftovers(zoo["cache_dir"]) == [path]  # no temporary files


def test_hash_mismatch_deletes_the_file_and_says_so(zoo, tmp_path):
    write_zoo(zoo["server"].root, zoo["manifest"], zoo["payload"], sha256="0" * 64)
    with pytest.raises(DownloadError, match=r"sha256 [0-9a-f]{64} instead of 0{64}.*deleted"):
        model_zoo.download(ZOO_NAME, **zoo["kwargs"])
    assert _leftovers(zoo["cache_dir"]) == []


def test_truncated_download_is_refused(zoo):
    zoo["server"].truncate.add("zoo/" + zoo["entry"]["file"])
    with pytest.raises(DownloadError, match="truncated"):
        model_zoo.download(ZOO_NAME, **zoo["kwargs"])
    assert _leftovers(zoo["cache_dir"]) == []


def test_http_404_names_the_url_and_the_mirror_variable(zoo):
    os.remove(os.path.join(zoo["server"].root, "zoo", *zoo["entry"]["file"].split("/")))
    with pytest.raises(DownloadError, match=r"HTTP 404.*model-test\.pth.*RIDE_DIVE_MODEL_ZOO_URL"):
        model_zoo.download(ZOO_NAME, **zoo["kwargs"])
    assert _leftovers(zoo["cache_dir"]) == []


def test_unreachable_host_is_a_clear_error(zoo):
    kwargs = dict(zoo["kwargs"], base_url="http://127.0.0.1:9/zoo")  # discard port: refused
    with pytest.raises(DownloadError, match="failed.*reachable mirror"):
        model_zoo.download(ZOO_NAME, **kwargs)


def test_damaged_cache_file_is_downloaded_again(zoo):
    path = model_zoo.download(ZOO_NAME, **zoo["kwargs"])
    with open(path, "r+b") as f:  # flip bytes in place: same size, different hash
        f.seek(100)
        f.write(b"\x00" * 16)
    assert model_zoo.download(ZOO_NAME, **zoo["kwargs"]) == path
    assert open(path, "rb").read() == zoo["payload"]
    assert len(zoo["server"].requests) == 2


def test_malicious_pickle_with_matching_hash_does_not_run(zoo, tmp_path):
    sentinel = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(sentinel)!r}, 'w').write('ran')",))

    bad = tmp_path / "bad.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "extra": Payload()}, bad)
    write_zoo(zoo["server"].root, zoo["manifest"], bad.read_bytes())  # a "verified" file
    with pytest.raises(CheckpointError, match="weights_only=True"):
        model_zoo.get(ZOO_NAME, trained=True, **zoo["kwargs"])
    assert not sentinel.exists()


def test_environment_variables_set_mirror_and_cache(zoo, tmp_path, monkeypatch):
    kwargs = dict(zoo["kwargs"])
    monkeypatch.setenv(model_zoo.BASE_URL_ENV, kwargs.pop("base_url"))
    monkeypatch.setenv(model_zoo.CACHE_ENV, str(tmp_path / "env_cache"))
    kwargs.pop("cache")
    path = model_zoo.download(ZOO_NAME, **kwargs)
    assert path.startswith(str(tmp_path / "env_cache" / "model_zoo"))
    assert model_zoo.get_checkpoint_url(ZOO_NAME, manifest=zoo["manifest"]).startswith(
        os.environ[model_zoo.BASE_URL_ENV]
    )


def test_file_url_mirror(zoo, tmp_path):
    mirror = "file://" + os.path.join(zoo["server"].root, "zoo")
    path = model_zoo.download(ZOO_NAME, **dict(zoo["kwargs"], base_url=mirror))
    assert open(path, "rb").read() == zoo["payload"]
    assert zoo["server"].requests == []


def test_unknown_entry_suggests_close_names(zoo):
    with pytest.raises(
        ManifestError, match=r"Did you mean FashionMNIST-LT/ride_dive_4e_r32_router"
    ):
        model_zoo.download("FashionMNIST-LT/ride_dive_4e_r32_routr.yaml", **zoo["kwargs"])


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("sha256", "abc", "not 64 lowercase hex"),
        ("size", 0, "positive number of bytes"),
        ("file", "../etc/passwd", "relative path inside the zoo"),
    ],
)
def test_invalid_manifest_entries_are_named(tmp_path, field, value, message):
    manifest = str(tmp_path / "m.json")
    entry = write_zoo(str(tmp_path), manifest, b"x", serve=False)
    entry[field] = value
    import json

    with open(manifest, "w") as f:
        json.dump({"version": 1, "base_url": "", "entries": [entry]}, f)
    with pytest.raises(ManifestError, match=message):
        model_zoo.load_manifest(manifest)
