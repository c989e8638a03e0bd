"""rs3d.file_io: local atomic writes, an fsspec object store (memory://), HTTP downloads from a real
local server (cached per host, one-line failures), read-only URLs, the remote-output mirror."""

import functools
import http.server
import os
import threading
import uuid

import pytest

from rs3d import file_io


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FVCORE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def serve():
    """serve(folder) -> base URL of an HTTP server on 127.0.0.1 (a free port) serving ``folder``."""
    servers = []

    def start(folder):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _store() -> str:
    return f"memory://rs3d-test-{uuid.uuid4().hex}"


def test_local_atomic_write_replaces_whole_files_and_cleans_up_after_a_failed_write(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    file_io.atomic_write_text(str(path), "first")
    file_io.atomic_write_text(str(path), "second")
    assert path.read_text() == "second"

    def broken(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        file_io.atomic_write(str(path), broken)
    assert path.read_text() == "second"  # the old file, whole
    assert sorted(os.listdir(path.parent)) == ["a.txt"]  # no temporary left behind
    assert file_io.is_local(str(path)) and file_io.is_local(f"file://{path}") and not file_io.is_local("s3://b/k")
    with file_io.open(f"file://{path}") as f:
        assert f.read() == "second"


def test_object_store_round_trip_through_the_path_manager():
    root = _store()
    path = file_io.join(root, "checkpoints", "x.pyth")
    assert path == f"{root}/checkpoints/x.pyth" and not file_io.exists(path) and file_io.ls(root) == []
    file_io.atomic_write_bytes(path, b"\x00weights")
    assert file_io.isfile(path) and file_io.isdir(file_io.join(root, "checkpoints"))
    assert file_io.ls(file_io.join(root, "checkpoints")) == ["x.pyth"]
    with file_io.open(path, "rb") as f:
        assert f.read() == b"\x00weights"
    file_io.rm(path)
    file_io.rm(path)  # already gone: fine
    assert not file_io.exists(path)


def test_a_missing_object_store_package_is_one_line_naming_it():
    with pytest.raises(OSError, match=r"^s3://bucket/k: s3:// paths need the s3fs package") as e:
        file_io.open("s3://bucket/k", "rb")
    assert "\n" not in str(e.value)


def test_http_downloads_are_cached_per_host(tmp_path, cache, serve):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, text in ((a, "served by a"), (b, "served by b")):
        (folder / "w").mkdir(parents=True)
        (folder / "w" / "file.txt").write_text(text)
    url_a, url_b = serve(a), serve(b)
    with file_io.open(f"{url_a}/w/file.txt") as f:
        assert f.read() == "served by a"
    # Same path on another host: its own download, not host a's cached copy.
    with file_io.open(f"{url_b}/w/file.txt") as f:
        assert f.read() == "served by b"
    # The download is cached: later reads do not ask the server.
    (a / "w" / "file.txt").write_text("changed")
    with file_io.open(f"{url_a}/w/file.txt") as f:
        assert f.read() == "served by a"
    cached = [p for p in cache.rglob("file.txt")]
    assert len(cached) == 2, cached


def test_http_failures_are_one_line_and_urls_are_read_only(tmp_path, cache, serve):
    url = serve(tmp_path)
    with pytest.raises(FileNotFoundError, match=rf"^cannot download {url}/missing.pyth: HTTP 404") as e:
        file_io.open(f"{url}/missing.pyth", "rb")
    assert "\n" not in str(e.value)
    assert not file_io.isfile(f"{url}/missing.pyth") and not file_io.isdir(url)
    with pytest.raises(OSError, match="cannot download http://127.0.0.1:9/x: .*refused"):
        file_io.open("http://127.0.0.1:9/x", "rb")  # port 9 (discard) is closed
    with pytest.raises(PermissionError, match="read-only"):
        file_io.atomic_write_text(f"{url}/new.txt", "x")
    assert not list(cache.rglob("*.download"))  # failed downloads leave nothing in the cache


def test_output_mirror_uploads_what_changed_and_pulls_logs_back(tmp_path):
    remote = _store()
    m = file_io.OutputMirror(remote, staging_root=str(tmp_path))
    assert m.is_remote and m.local.startswith(str(tmp_path))
    os.makedirs(os.path.join(m.local, "tensorboard"))
    with open(os.path.join(m.local, "log.txt"), "w") as f:
        f.write("line 1\n")
    with open(os.path.join(m.local, "tensorboard", "events.1"), "wb") as f:
        f.write(b"e")
    assert sorted(m.push()) == ["log.txt", "tensorboard/events.1"]
    assert m.push() == []  # nothing changed
    with open(os.path.join(m.local, "log.txt"), "a") as f:
        f.write("line 2\n")
    assert m.push() == ["log.txt"]
    with file_io.open(file_io.join(remote, "log.txt")) as f:
        assert f.read() == "line 1\nline 2\n"

    # A later run (another machine: another staging folder) continues the same log.
    m2 = file_io.OutputMirror(remote, staging_root=str(tmp_path / "other"))
    m2.pull(["log.txt", "json_stats.log"])  # json_stats.log does not exist yet: skipped
    assert open(os.path.join(m2.local, "log.txt")).read() == "line 1\nline 2\n"
    assert m2.push() == []  # pulled files are not sent back unchanged

    local = file_io.OutputMirror(str(tmp_path / "out"))
    assert not local.is_remote and local.local == str(tmp_path / "out") and local.push() == []
