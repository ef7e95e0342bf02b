"""Tests for minigan.data: IDX reading, checksums, the search order, downloads, pixel scaling.

The tests write small IDX files into tmp_path and patch data.SHA256 to their real sums; a local
HTTP server on 127.0.0.1 stands in for the mirrors. No test touches the network or the user's
real cache. One test loads the real test split shipped in data/mnist/.
"""

import gzip
import hashlib
import http.server
import socket
import threading
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigan import backend, data, dataset
from minigan.data import DataError

# ---- helpers ------------------------------------------------------------------------------


def idx_bytes(array):
    """The IDX encoding of a uint8 array: images (N, rows, cols) or labels (N,)."""
    magic = data.IMAGES_MAGIC if array.ndim == 3 else data.LABELS_MAGIC
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path, array, gz):
    """Write ``array`` as an IDX file at ``path``, gzip-compressed or raw. Returns the path."""
    content = idx_bytes(array)
    path.write_bytes(gzip.compress(content) if gz else content)
    return path


def sha256(content):
    return hashlib.sha256(content).hexdigest()


def small_mnist(seed=0, n_train=6, n_test=4):
    """Four small arrays under the four MNIST names: random 28x28 images and labels 0..9."""
    rng = np.random.default_rng(seed)
    (train_x, train_y), (test_x, test_y) = data.SPLITS.values()
    return {
        train_x: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        train_y: rng.integers(0, 10, n_train, dtype=np.uint8),
        test_x: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        test_y: rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def leftovers(directory):
    """Every file in ``directory``, temporary ones included."""
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No test may reach the real mirrors, the user's cache or the user's $MINIGAN_DATA."""
    monkeypatch.setattr(data, "MIRRORS", (f"http://127.0.0.1:{free_port()}/",))
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT", 2)
    monkeypatch.delenv("MINIGAN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def mnist(monkeypatch):
    """Small MNIST: ``mnist.arrays`` by name, ``mnist.write(dir, gz=True)`` writes the four files.

    data.SHA256 is patched to the sums of these small files, so they verify.
    """
    arrays = small_mnist()
    for name, array in arrays.items():
        monkeypatch.setitem(data.SHA256, name, sha256(idx_bytes(array)))

    class Small:
        def write(directory, gz=True):
            directory.mkdir(parents=True, exist_ok=True)
            for name, array in arrays.items():
                write_idx(directory / (f"{name}.gz" if gz else name), array, gz)
            return directory

    Small.arrays = arrays
    return Small


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Every place find_mnist looks, under tmp_path, all empty; the repo path is patched."""
    monkeypatch.setattr(data, "REPO_DATA_DIR", tmp_path / "repo" / "data" / "mnist")

    class Places:
        explicit = tmp_path / "explicit"
        env = tmp_path / "env"
        repo = data.REPO_DATA_DIR
        cache = tmp_path / "xdg-cache" / "minigan" / "mnist"  # from the isolated fixture

    return Places


STALL = object()  # a route that never answers, until the test ends


@pytest.fixture
def serve():
    """Start a local mirror: ``serve(routes) -> base URL``. A route maps a file name to

    bytes (served whole), STALL (no answer at all), or ("stall_after", bytes, k) (headers
    promising all of the bytes, the first k of them, then silence). Unknown names get 404.
    ``serve.requests`` lists every path asked for; ``serve.stalled`` is set once a
    "stall_after" route has sent its k bytes.
    """
    release = threading.Event()
    servers, requests = [], []

    def start(routes):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.lstrip("/")
                requests.append(name)
                route = routes.get(name)
                if route is None:
                    self.send_error(404)
                elif route is STALL:
                    release.wait(10)
                else:
                    body, k = (route[1], route[2]) if isinstance(route, tuple) else (route, None)
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[:k])
                    self.wfile.flush()
                    if k is not None:
                        start.stalled.set()
                        release.wait(10)

            def log_message(self, *args):
                pass  # keep the test output clean

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.handle_error = lambda *args: None  # a client that gave up is expected here
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/"

    start.requests = requests
    start.stalled = threading.Event()
    yield start
    release.set()
    for server in servers:
        server.shutdown()
        server.server_close()


def gz_routes(arrays):
    """Routes serving each array as ``<name>.gz``, as the real mirrors do."""
    return {f"{name}.gz": gzip.compress(idx_bytes(a)) for name, a in arrays.items()}


# ---- read_idx -----------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
@pytest.mark.parametrize("shape", [(5, 28, 28), (5,), (0, 28, 28), (3, 2, 4)])
def test_read_idx_round_trip(tmp_path, gz, shape):
    array = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    path = write_idx(tmp_path / ("f.gz" if gz else "f"), array, gz)
    out = data.read_idx(path)
    assert out.dtype == np.uint8 and out.shape == shape
    np.testing.assert_array_equal(out, array)
    out[...] = 0  # the caller owns a writable array


def assert_data_error(path, *phrases):
    """Reading ``path`` raises DataError naming the file, containing each phrase, with a fix."""
    with pytest.raises(DataError) as info:
        data.read_idx(path)
    message = str(info.value)
    assert str(path) in message
    for phrase in phrases:
        assert phrase in message
    return message


def test_read_idx_missing_file(tmp_path):
    assert_data_error(tmp_path / "nope-idx1-ubyte", "no such file")


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_read_idx_empty_file(tmp_path, gz):
    path = tmp_path / ("f.gz" if gz else "f")
    path.write_bytes(gzip.compress(b"") if gz else b"")
    assert_data_error(path, "empty", "To fix: delete")


def test_read_idx_truncated_raw(tmp_path):
    content = idx_bytes(np.zeros((5, 28, 28), np.uint8))
    path = tmp_path / "f"
    path.write_bytes(content[:-100])
    message = assert_data_error(path, "truncated", "(5, 28, 28)")
    assert f"{len(content)} bytes" in message and f"found {len(content) - 100}" in message


def test_read_idx_truncated_header(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(idx_bytes(np.zeros((5, 28, 28), np.uint8))[:12])
    assert_data_error(path, "truncated header", "expected 16 bytes, found 12")


def test_read_idx_truncated_gzip(tmp_path):
    path = write_idx(tmp_path / "f.gz", np.ones((5, 28, 28), np.uint8), gz=True)
    path.write_bytes(path.read_bytes()[:-20])
    assert_data_error(path, "gzip stream is truncated", "To fix: delete")


def test_read_idx_corrupt_gzip(tmp_path):
    images = np.random.default_rng(2).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    path = write_idx(tmp_path / "f.gz", images, gz=True)
    raw = bytearray(path.read_bytes())
    raw[40:60] = bytes(b ^ 0xFF for b in raw[40:60])  # flip bits inside the deflate stream
    path.write_bytes(bytes(raw))
    assert_data_error(path, "corrupt gzip data", "To fix: delete")


def test_read_idx_gz_name_raw_content(tmp_path):
    path = write_idx(tmp_path / "f.gz", np.zeros(5, np.uint8), gz=False)
    assert_data_error(path, "corrupt gzip data", "drop the .gz")


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_read_idx_wrong_magic(tmp_path, gz):
    content = b"\x00\x00\x08\x02" + idx_bytes(np.zeros(5, np.uint8))[4:]  # 2050: not MNIST
    path = tmp_path / ("f.gz" if gz else "f")
    path.write_bytes(gzip.compress(content) if gz else content)
    assert_data_error(
        path, "wrong magic number", "expected 2051 (images) or 2049 (labels)", "found 2050"
    )


def test_read_idx_raw_name_gzip_content(tmp_path):
    path = write_idx(tmp_path / "f", np.zeros(5, np.uint8), gz=True)
    assert_data_error(path, "wrong magic number", "add .gz")


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_read_idx_trailing_garbage(tmp_path, gz):
    content = idx_bytes(np.zeros(5, np.uint8)) + b"garbage"
    path = tmp_path / ("f.gz" if gz else "f")
    path.write_bytes(gzip.compress(content) if gz else content)
    assert_data_error(path, "trailing garbage", "13 bytes in all, found 20", "7 extra")


# ---- load_mnist: verification -------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_load_mnist_small(tmp_path, mnist, gz, split):
    images, labels = data.load_mnist(split, data_dir=mnist.write(tmp_path / "d", gz=gz))
    images_name, labels_name = data.SPLITS[split]
    assert images.dtype == labels.dtype == np.uint8
    np.testing.assert_array_equal(images, mnist.arrays[images_name])
    np.testing.assert_array_equal(labels, mnist.arrays[labels_name])


def test_load_mnist_mixed_raw_and_gzip(tmp_path, mnist):
    directory = mnist.write(tmp_path / "d", gz=True)
    name = data.SPLITS["train"][0]
    (directory / f"{name}.gz").unlink()
    write_idx(directory / name, mnist.arrays[name], gz=False)
    images, _ = data.load_mnist("train", data_dir=directory)
    np.testing.assert_array_equal(images, mnist.arrays[name])


def test_load_mnist_checksum_mismatch(tmp_path, mnist, monkeypatch):
    directory = mnist.write(tmp_path / "d")
    name = data.SPLITS["test"][1]
    expected = "0" * 64
    monkeypatch.setitem(data.SHA256, name, expected)
    with pytest.raises(DataError) as info:
        data.load_mnist("test", data_dir=directory)
    message = str(info.value)
    assert str(directory / f"{name}.gz") in message
    assert f"expected {expected}" in message
    assert f"found {sha256(idx_bytes(mnist.arrays[name]))}" in message


def test_load_mnist_checksum_of_content_not_gzip_bytes(tmp_path, mnist):
    """The same content compressed at another level (other .gz bytes) still verifies."""
    directory = mnist.write(tmp_path / "d")
    for name, array in mnist.arrays.items():
        other_gz = gzip.compress(idx_bytes(array), compresslevel=1, mtime=7)
        (directory / f"{name}.gz").write_bytes(other_gz)
    images, labels = data.load_mnist("train", data_dir=directory)
    np.testing.assert_array_equal(images, mnist.arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(labels, mnist.arrays["train-labels-idx1-ubyte"])


def test_load_mnist_count_mismatch(tmp_path, mnist, monkeypatch):
    directory = mnist.write(tmp_path / "d")
    labels_name = data.SPLITS["train"][1]
    fewer = mnist.arrays[labels_name][:-1]
    write_idx(directory / f"{labels_name}.gz", fewer, gz=True)
    monkeypatch.setitem(data.SHA256, labels_name, sha256(idx_bytes(fewer)))
    with pytest.raises(DataError) as info:
        data.load_mnist("train", data_dir=directory)
    message = str(info.value)
    assert str(directory / f"{data.SPLITS['train'][0]}.gz") in message
    assert str(directory / f"{labels_name}.gz") in message
    assert "6 images" in message and "5 labels" in message


def test_load_mnist_labels_where_images_belong(tmp_path, mnist):
    directory = mnist.write(tmp_path / "d")
    images_name, labels_name = data.SPLITS["test"]
    write_idx(directory / f"{images_name}.gz", mnist.arrays[labels_name], gz=True)
    with pytest.raises(DataError, match="expected 2051 \\(images\\), found 2049 \\(labels\\)"):
        data.load_mnist("test", data_dir=directory)


def test_load_mnist_truncated_file_names_it(tmp_path, mnist):
    directory = mnist.write(tmp_path / "d", gz=False)
    path = directory / data.SPLITS["train"][0]
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataError, match="truncated") as info:
        data.load_mnist("train", data_dir=directory)
    assert str(path) in str(info.value)


def test_load_mnist_unknown_split():
    with pytest.raises(ValueError, match="'valid'"):
        data.load_mnist("valid")


# ---- find_mnist: the search order ---------------------------------------------------------


def test_explicit_dir_comes_first(mnist, places, monkeypatch):
    for directory in (places.explicit, places.env, places.repo, places.cache):
        mnist.write(directory)
    monkeypatch.setenv("MINIGAN_DATA", str(places.env))
    assert data.find_mnist(places.explicit) == places.explicit
    assert data.find_mnist(str(places.explicit)) == places.explicit


def test_explicit_dir_without_files_is_an_error(mnist, places, monkeypatch):
    for directory in (places.env, places.repo, places.cache):
        mnist.write(directory)
    monkeypatch.setenv("MINIGAN_DATA", str(places.env))
    places.explicit.mkdir()
    write_idx(places.explicit / f"{data.FILES[0]}.gz", mnist.arrays[data.FILES[0]], gz=True)
    with pytest.raises(DataError) as info:
        data.find_mnist(places.explicit)
    message = str(info.value)
    assert "data_dir" in message and str(places.explicit) in message
    assert all(name in message for name in data.FILES[1:]) and data.FILES[0] not in message


def test_explicit_dir_that_does_not_exist(places):
    with pytest.raises(DataError, match="no such folder") as info:
        data.find_mnist(places.explicit)
    assert str(places.explicit) in str(info.value)


def test_env_var_comes_second(mnist, places, monkeypatch):
    for directory in (places.env, places.repo, places.cache):
        mnist.write(directory)
    monkeypatch.setenv("MINIGAN_DATA", str(places.env))
    assert data.find_mnist() == places.env


def test_env_var_without_files_is_an_error(mnist, places, monkeypatch):
    for directory in (places.repo, places.cache):
        mnist.write(directory)
    monkeypatch.setenv("MINIGAN_DATA", str(places.env))
    with pytest.raises(DataError, match="MINIGAN_DATA") as info:
        data.find_mnist()
    assert str(places.env) in str(info.value)


def test_repo_comes_third(mnist, places):
    for directory in (places.repo, places.cache):
        mnist.write(directory)
    assert data.find_mnist() == places.repo


def test_repo_path_is_next_to_the_package():
    import minigan

    package = data.Path(minigan.__file__).resolve().parent
    assert data.REPO_DATA_DIR == package.parent / "data" / "mnist"


def test_cache_comes_fourth_under_xdg_cache_home(mnist, places, serve, monkeypatch):
    mnist.write(places.cache, gz=False)
    monkeypatch.setattr(data, "MIRRORS", (serve({}),))
    assert data.find_mnist() == places.cache
    assert serve.requests == []  # nothing downloaded


def test_cache_under_home_without_xdg(mnist, places, tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    home_cache = tmp_path / "home" / ".cache" / "minigan" / "mnist"
    assert data.cache_dir() == home_cache
    mnist.write(home_cache)
    assert data.find_mnist() == home_cache


def test_download_comes_last(mnist, places, serve, monkeypatch):
    monkeypatch.setattr(data, "MIRRORS", (serve(gz_routes(mnist.arrays)),))
    assert data.find_mnist() == places.cache
    assert sorted(serve.requests) == sorted(f"{name}.gz" for name in data.FILES)
    assert leftovers(places.cache) == sorted(f"{name}.gz" for name in data.FILES)
    images, labels = data.load_mnist("test")
    np.testing.assert_array_equal(images, mnist.arrays[data.SPLITS["test"][0]])
    np.testing.assert_array_equal(labels, mnist.arrays[data.SPLITS["test"][1]])


def test_download_fetches_only_missing_files(mnist, places, serve, monkeypatch):
    mnist.write(places.cache)
    (places.cache / f"{data.FILES[2]}.gz").unlink()
    monkeypatch.setattr(data, "MIRRORS", (serve(gz_routes(mnist.arrays)),))
    assert data.find_mnist() == places.cache
    assert serve.requests == [f"{data.FILES[2]}.gz"]


@pytest.mark.parametrize("download", [True, False])
def test_offline_message_lists_every_place(mnist, places, download):
    places.repo.mkdir(parents=True)
    with pytest.raises(DataError) as info:
        data.find_mnist(download=download)
    message = str(info.value)
    assert "MNIST not found" in message
    assert "data_dir: (not given)" in message and "$MINIGAN_DATA: (not set)" in message
    assert str(places.repo) in message and str(places.cache) in message
    assert data.FILES[0] in message  # what the repository folder lacks
    if download:
        assert data.MIRRORS[0] in message  # the mirror that was tried, and why it failed
    else:
        assert "download=False" in message
    assert "To fix" in message and "MINIGAN_DATA" in message


# ---- downloads against a local mirror -----------------------------------------------------


def test_download_falls_back_to_the_next_mirror(mnist, tmp_path, serve, monkeypatch):
    routes = gz_routes(mnist.arrays)
    broken = {name: body[: len(body) // 2] for name, body in routes.items()}
    monkeypatch.setattr(data, "MIRRORS", (serve({}), serve(broken), serve(routes)))
    directory = data.download_mnist(tmp_path / "dl")
    assert leftovers(directory) == sorted(f"{name}.gz" for name in data.FILES)
    assert len(serve.requests) == 3 * 4  # 404, truncated, good: for each file


def test_download_truncated_file_leaves_nothing(mnist, tmp_path, serve, monkeypatch):
    routes = {name: body[:-30] for name, body in gz_routes(mnist.arrays).items()}
    monkeypatch.setattr(data, "MIRRORS", (serve(routes),))
    with pytest.raises(DataError, match="gzip stream is truncated") as info:
        data.download_mnist(tmp_path / "dl")
    assert data.MIRRORS[0] in str(info.value)
    assert leftovers(tmp_path / "dl") == []  # no final file, no temporary file


def test_download_corrupt_file_fails_its_checksum(mnist, tmp_path, serve, monkeypatch):
    name = data.FILES[0]
    wrong = mnist.arrays[name].copy()
    wrong[0, 0, 0] ^= 1  # a well-formed file with the wrong content
    routes = gz_routes({**mnist.arrays, name: wrong})
    monkeypatch.setattr(data, "MIRRORS", (serve(routes),))
    with pytest.raises(DataError, match="SHA-256 mismatch") as info:
        data.download_mnist(tmp_path / "dl")
    assert f"{name}.gz" in str(info.value)
    assert sha256(idx_bytes(wrong)) in str(info.value)
    assert f"{name}.gz" not in leftovers(tmp_path / "dl")
    assert not any(p.endswith(".tmp") for p in leftovers(tmp_path / "dl"))


def test_download_silent_mirror_times_out(mnist, tmp_path, serve, monkeypatch):
    routes = {name: STALL for name in gz_routes(mnist.arrays)}
    monkeypatch.setattr(data, "MIRRORS", (serve(routes),))
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT", 0.2)
    start = time.perf_counter()
    with pytest.raises(DataError, match="timed out"):
        data.download_mnist(tmp_path / "dl")
    assert time.perf_counter() - start < 3
    assert leftovers(tmp_path / "dl") == []


def test_download_stalled_midway_leaves_no_partial_file(mnist, tmp_path, serve, monkeypatch):
    """Half the bytes arrive, then the mirror goes silent. While it hangs, only a temporary
    file exists (a crash then would leave no half file under the final name); after the
    timeout, not even that."""
    routes = {
        name: ("stall_after", body, len(body) // 2)
        for name, body in gz_routes(mnist.arrays).items()
    }
    monkeypatch.setattr(data, "MIRRORS", (serve(routes),))
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT", 1.0)
    errors = []

    def download():
        try:
            data.download_mnist(tmp_path / "dl")
        except DataError as e:
            errors.append(e)

    thread = threading.Thread(target=download)
    thread.start()
    assert serve.stalled.wait(5)
    time.sleep(0.2)  # let the client take in the bytes it was sent
    during = leftovers(tmp_path / "dl")
    thread.join(10)
    assert during and all(name.endswith(".tmp") for name in during)  # files.atomic_write
    assert len(errors) == 1 and "timed out" in str(errors[0])
    assert leftovers(tmp_path / "dl") == []


def test_download_interrupted_by_the_user_leaves_nothing(mnist, tmp_path, serve, monkeypatch):
    """Ctrl-C in the middle of the write: the temporary file is removed, nothing is renamed."""
    monkeypatch.setattr(data, "MIRRORS", (serve(gz_routes(mnist.arrays)),))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(data.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.download_mnist(tmp_path / "dl")
    assert leftovers(tmp_path / "dl") == []


# ---- pixels <-> model input ---------------------------------------------------------------


def test_to_model_input_shape_dtype_and_range():
    images = np.array([[[0, 255], [127, 128]]] * 3, dtype=np.uint8)  # (3, 2, 2)
    x = data.to_model_input(images)
    assert x.shape == (3, 4) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], [-1, 1, 127 / 127.5 - 1, 128 / 127.5 - 1], rtol=0, atol=1e-7)
    assert data.to_model_input(images, dtype="float64").dtype == np.float64


def test_to_model_input_rejects_non_uint8():
    with pytest.raises(TypeError, match="uint8"):
        data.to_model_input(np.zeros((2, 28, 28), np.float32))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pixels_round_trip_every_value(dtype):
    images = (np.arange(2 * 784) % 256).astype(np.uint8).reshape(2, 28, 28)  # every value
    assert set(np.unique(images)) == set(range(256))
    x = data.to_model_input(images, dtype=dtype)
    out = data.to_pixels(x)
    assert out.dtype == np.uint8 and out.shape == (2, 28, 28)
    np.testing.assert_array_equal(out, images)
    np.testing.assert_array_equal(data.to_pixels(x.reshape(2, 28, 28)), images)


def test_to_pixels_clips_and_rounds():
    x = np.full((1, 784), 0.0)
    x[0, :6] = [-5.0, 5.0, -np.inf, np.inf, -1 + 0.4 / 127.5, -1 + 0.6 / 127.5]
    assert list(data.to_pixels(x)[0, 0, :6]) == [0, 255, 0, 255, 0, 1]


def test_to_pixels_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        data.to_pixels(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="NaN"):
        data.to_pixels(np.full((1, 784), np.nan))


@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.just(784)),
                  elements=st.floats(-1, 1, width=32)))
def test_to_pixels_is_within_half_a_step(x):
    pixels = data.to_pixels(x)
    assert pixels.dtype == np.uint8
    back = data.to_model_input(pixels, dtype="float64")
    assert np.abs(back - x).max() <= 0.5 / 127.5 + 1e-6  # rounding moves at most half a level


# ---- the real files shipped in data/mnist/ ------------------------------------------------


def test_real_test_split_loads_and_verifies():
    images, labels = data.load_mnist("test", download=False)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert np.bincount(labels, minlength=10).min() > 800  # all ten digits, roughly balanced
    assert labels.max() == 9
    assert sha256(idx_bytes(images)) == data.SHA256["t10k-images-idx3-ubyte"]
    assert sha256(idx_bytes(labels)) == data.SHA256["t10k-labels-idx1-ubyte"]


# ---- an epoch's order and batches (minigan/dataset.py) ----------------------------------------


def test_an_epoch_reads_every_image_once_in_its_order_with_its_label():
    """Image i is the row [i], its label i: the batches of one epoch, put together, are the
    epoch's order itself (each image once, a batch a window of batch_size, not of 1), every
    label beside its own image, and a resumed epoch (first = 2) starts at the third batch.
    The resume tests cannot see this: a straight and a resumed run share the reader."""
    rng = backend.default_rng(0)
    X, Y = np.arange(12)[:, None], np.arange(12)
    order = dataset.epoch_order(rng, 12)
    assert sorted(order.tolist()) == list(range(12))
    read = dataset.batch_reader(X, order, 4, labels=Y)
    batches = [read() for _ in range(3)]
    np.testing.assert_array_equal(np.concatenate([b for b, _ in batches])[:, 0], order)
    for images, labels in batches:
        np.testing.assert_array_equal(images[:, 0], labels)
    np.testing.assert_array_equal(dataset.batch_reader(X, order, 4, first=2)()[:, 0], order[8:])
    assert dataset.epoch_order(rng, 12).tolist() != order.tolist()  # each epoch its own order


def test_epoch_order_is_uniform_over_the_orders():
    """All 24 orders of 4 items, each about equally often in 2,400 epochs: the chi-square
    statistic over 23 degrees of freedom stays below 49.7, its 0.1% point (a rule that favours
    some orders, such as a sort of rounded draws that keeps ties in place, exceeds it)."""
    rng = backend.default_rng(1)
    counts = {}
    for _ in range(2400):
        key = tuple(dataset.epoch_order(rng, 4).tolist())
        counts[key] = counts.get(key, 0) + 1
    assert len(counts) == 24
    chi2 = sum((c - 100) ** 2 / 100 for c in counts.values())
    assert chi2 < 49.7, chi2


def test_training_images_are_the_first_of_the_split_with_their_labels(tmp_path, mnist):
    directory = mnist.write(tmp_path / "d")
    images, labels = dataset.training_images(data_dir=str(directory), limit=3, labels=True)
    np.testing.assert_array_equal(images, mnist.arrays["train-images-idx3-ubyte"][:3])
    np.testing.assert_array_equal(labels, mnist.arrays["train-labels-idx1-ubyte"][:3])
    alone = dataset.training_images(data_dir=str(directory), limit=3)
    np.testing.assert_array_equal(alone, images)
