"""Pinned sources: the table against the shared files, local resolution, and downloads from a local server."""

from __future__ import annotations

import hashlib
import http.server
import io
import shutil
import socket
import threading
import zipfile
from pathlib import Path

import pytest

from hybridir import paths
from hybridir.data import load_beir, sources
from hybridir.data.sources import Source, checksum, resolve, resolve_beir

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
XQUAD_EN = "lareqa/xquad-r/en.json"
PINNED_COMMITS = {"lareqa/xquad-r/": "9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c",
                  "lareqa/mlqa-r/": "354d67d1cd066854cdfbf5ad0e6105528976141d",
                  "squadshifts/": "b7cc4d50af791c36c49417fb94dd739d6a9e7bef",
                  "miracl/": "5b819c1a45c8a0a3ec9426f476694f44a29dfaf3"}


# --- the table --------------------------------------------------------------------------------------------


def test_table_covers_every_shared_file_and_matches_its_sha256():
    patterns = ("lareqa/*/*.json", "squadshifts/*.json", "miracl/*/*.tsv")
    shared = {p.relative_to(SHARED).as_posix() for pattern in patterns for p in SHARED.glob(pattern)}
    assert set(sources.SOURCES) == shared and len(shared) == 11 + 7 + 3 + 2 * 18
    for relative, source in sources.SOURCES.items():
        assert hashlib.sha256((SHARED / relative).read_bytes()).hexdigest() == source.digest, relative


def test_urls_are_raw_github_at_the_pinned_commits():
    assert sources.SOURCES[XQUAD_EN].url == ("https://raw.githubusercontent.com/google-research-datasets/lareqa/"
                                             "9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c/xquad-r/en.json")
    assert sources.SOURCES["squadshifts/reddit_v1.0.json"].url.endswith(
        "/modestyachts/squadshifts-website/b7cc4d50af791c36c49417fb94dd739d6a9e7bef/datasets/reddit_v1.0.json")
    assert sources.SOURCES["miracl/qrels/qrels.miracl-v1.0-sw-dev.tsv"].url.endswith(
        "/castorini/anserini-tools/5b819c1a45c8a0a3ec9426f476694f44a29dfaf3/qrels/qrels.miracl-v1.0-sw-dev.tsv")
    for relative, source in sources.SOURCES.items():
        commit = next(c for prefix, c in PINNED_COMMITS.items() if relative.startswith(prefix))
        assert source.url.startswith("https://raw.githubusercontent.com/") and f"/{commit}/" in source.url


# --- local data dir ---------------------------------------------------------------------------------------


def test_resolve_reads_the_data_dir():
    assert resolve(XQUAD_EN) == paths.data_dir() / XQUAD_EN
    assert resolve_beir("scifact") == paths.data_dir() / "beir" / "scifact"


def test_unknown_names():
    with pytest.raises(ValueError, match="'lareqa/xquad-r/fr.json' is not a pinned data file"):
        resolve("lareqa/xquad-r/fr.json")
    with pytest.raises(ValueError, match="unknown BEIR dataset 'nfcorpus'; known: scifact"):
        resolve_beir("nfcorpus")


def test_missing_file_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"^{XQUAD_EN} is missing from HYBRIDIR_DATA_DIR={tmp_path}; "):
        resolve(XQUAD_EN)
    with pytest.raises(FileNotFoundError, match=f"beir/scifact/corpus.jsonl is missing from .*={tmp_path}"):
        resolve_beir("scifact")


def test_data_dir_that_is_not_a_directory(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        resolve(XQUAD_EN)


# --- checksum ---------------------------------------------------------------------------------------------


def test_checksum_ignores_order_and_location_but_not_content(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(b"ab")
    b.write_bytes(b"c")
    value = checksum([a, b])
    assert value == checksum([str(b), a]) and len(value) == 64
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in (a, b):
        shutil.copy(f, copy / f.name)
    assert checksum([copy / "a.txt", copy / "b.txt"]) == value
    b.write_bytes(b"")
    a.write_bytes(b"abc")  # same concatenated bytes, different boundary
    assert checksum([a, b]) != value


# --- downloads from a local HTTP server -------------------------------------------------------------------


@pytest.fixture
def served(tmp_path):
    """Serve tmp_path/'www' on 127.0.0.1; yield (directory, base URL, list of requested paths)."""
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


@pytest.fixture
def download_env(tmp_path, monkeypatch):
    """No data dir, a fresh cache: loaders must download."""
    monkeypatch.delenv(paths.DATA_DIR_ENV, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv(paths.CACHE_DIR_ENV, str(cache))
    return cache


def _serve(monkeypatch, served, relative: str, payload: bytes, digest: str | None = None) -> Path:
    root, base, _ = served
    (root / "file.json").write_bytes(payload)
    digest = digest or hashlib.sha256(payload).hexdigest()
    monkeypatch.setitem(sources.SOURCES, relative, Source(f"{base}/file.json", digest))
    return root / "file.json"


def test_download_verifies_caches_and_is_not_repeated(download_env, served, monkeypatch):
    payload = (SHARED / XQUAD_EN).read_bytes()
    _serve(monkeypatch, served, XQUAD_EN, payload)
    path = resolve(XQUAD_EN)
    assert path == download_env / "data" / XQUAD_EN and path.read_bytes() == payload
    assert resolve(XQUAD_EN) == path
    assert served[2] == ["/file.json"]  # the second call used the cache
    assert [p.name for p in path.parent.iterdir()] == ["en.json"]  # no temp file left behind


def test_downloaded_lareqa_loads_like_the_shared_copy(download_env, served, monkeypatch):
    from hybridir.data import load_lareqa

    payload = (SHARED / XQUAD_EN).read_bytes()
    _serve(monkeypatch, served, XQUAD_EN, payload)
    data = load_lareqa("xquad-r", ["en"])
    assert len(data.questions) == 1190 and len(data.candidates) == 1180
    assert data.checksum == checksum([SHARED / XQUAD_EN])


def test_sha256_mismatch_keeps_nothing(download_env, served, monkeypatch):
    _serve(monkeypatch, served, XQUAD_EN, b'{"data": []}', digest="0" * 64)
    with pytest.raises(ValueError, match=r"^sha256 mismatch for lareqa/xquad-r/en.json downloaded from "
                                         r"http://127\.0\.0\.1.*expected 0{64}, got [0-9a-f]{64}; "
                                         r"the file was not kept$"):
        resolve(XQUAD_EN)
    target = download_env / "data" / XQUAD_EN
    assert not target.exists() and list(target.parent.iterdir()) == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_download_says_to_set_the_data_dir(download_env, monkeypatch):
    monkeypatch.setitem(sources.SOURCES, XQUAD_EN, Source(f"http://127.0.0.1:{_closed_port()}/en.json", "0" * 64))
    with pytest.raises(ConnectionError, match=r"^could not download lareqa/xquad-r/en.json from "
                                              r"http://127.0.0.1:\d+/en.json \(.*\); "
                                              r"set HYBRIDIR_DATA_DIR to a local copy of the data") as info:
        resolve(XQUAD_EN)
    assert "\n" not in str(info.value)
    assert list((download_env / "data" / "lareqa" / "xquad-r").iterdir()) == []


def test_http_error_is_a_download_failure(download_env, served, monkeypatch):
    monkeypatch.setitem(sources.SOURCES, XQUAD_EN, Source(f"{served[1]}/missing.json", "0" * 64))
    with pytest.raises(ConnectionError, match=r"\(HTTP Error 404: File not found\); set HYBRIDIR_DATA_DIR"):
        resolve(XQUAD_EN)


def _beir_zip(name: str = "scifact") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(f"{name}/corpus.jsonl", '{"_id": "d1", "title": "T", "text": "doc one"}\n'
                                            '{"_id": "d2", "title": "", "text": "doc two"}\n')
        zf.writestr(f"{name}/queries.jsonl", '{"_id": "q1", "text": "query one"}\n{"_id": "q2", "text": "two"}\n')
        zf.writestr(f"{name}/qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td2\t1\n")
    return buffer.getvalue()


def test_beir_zip_is_downloaded_checked_and_unpacked(download_env, served, monkeypatch):
    root, base, requests = served
    payload = _beir_zip()
    (root / "scifact.zip").write_bytes(payload)
    monkeypatch.setitem(sources.BEIR_SOURCES, "scifact",
                        Source(f"{base}/scifact.zip", hashlib.md5(payload).hexdigest(), "md5"))
    data = load_beir("scifact")
    assert data.corpus["doc_id"].tolist() == ["d1", "d2"]
    assert data.queries["query_id"].tolist() == ["q1"] and data.qrels == {"q1": {"d2": 1}}
    assert resolve_beir("scifact") == download_env / "data" / "beir" / "scifact"
    assert requests == ["/scifact.zip"]
    assert sorted(p.name for p in (download_env / "data" / "beir").iterdir()) == ["scifact", "scifact.zip"]


def test_beir_zip_md5_mismatch(download_env, served, monkeypatch):
    root, base, _ = served
    (root / "scifact.zip").write_bytes(_beir_zip())
    monkeypatch.setitem(sources.BEIR_SOURCES, "scifact", Source(f"{base}/scifact.zip", "0" * 32, "md5"))
    with pytest.raises(ValueError, match="md5 mismatch for beir/scifact.zip"):
        resolve_beir("scifact")
    assert list((download_env / "data" / "beir").iterdir()) == []


def test_beir_zip_without_the_dataset_folder(download_env, served, monkeypatch):
    root, base, _ = served
    payload = _beir_zip("other")
    (root / "scifact.zip").write_bytes(payload)
    monkeypatch.setitem(sources.BEIR_SOURCES, "scifact",
                        Source(f"{base}/scifact.zip", hashlib.md5(payload).hexdigest(), "md5"))
    with pytest.raises(ValueError, match="has no scifact/corpus.jsonl; delete it and retry"):
        resolve_beir("scifact")
    assert sorted(p.name for p in (download_env / "data" / "beir").iterdir()) == ["scifact.zip"]
