"""Pinned public sources of every data file, and where to find them locally.

Each file of the data layout (``lareqa/xquad-r/ar.json``, ``miracl/qrels/…``) maps to a
raw.githubusercontent.com URL at a fixed commit and to its sha256. :func:`resolve` returns the
file from ``HYBRIDIR_DATA_DIR`` when that is set, otherwise a verified download cached under
``HYBRIDIR_CACHE_DIR/data``. BEIR datasets come as one zip from BEIR's server and are resolved
to a directory by :func:`resolve_beir`.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hybridir import paths

_RAW = "https://raw.githubusercontent.com"
# Commits from ../shared/data/README.md. MLQA-R was removed from the LAReQA repository's HEAD,
# so it is pinned to the last commit that has it.
_XQUAD_R_COMMIT = "9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c"
_MLQA_R_COMMIT = "354d67d1cd066854cdfbf5ad0e6105528976141d"
_SQUADSHIFTS_COMMIT = "b7cc4d50af791c36c49417fb94dd739d6a9e7bef"
_ANSERINI_TOOLS_COMMIT = "5b819c1a45c8a0a3ec9426f476694f44a29dfaf3"

# Layout prefix -> URL prefix; the rest of the relative path is the same on both sides.
_URL_ROOTS = {
    "lareqa/xquad-r/": f"{_RAW}/google-research-datasets/lareqa/{_XQUAD_R_COMMIT}/xquad-r/",
    "lareqa/mlqa-r/": f"{_RAW}/google-research-datasets/lareqa/{_MLQA_R_COMMIT}/mlqa-r/",
    "squadshifts/": f"{_RAW}/modestyachts/squadshifts-website/{_SQUADSHIFTS_COMMIT}/datasets/",
    "miracl/": f"{_RAW}/castorini/anserini-tools/{_ANSERINI_TOOLS_COMMIT}/",
}

# sha256 of each file, computed from byte-identical copies of the public files.
_SHA256 = {
    "lareqa/xquad-r/ar.json": "c52922d3b8ac1ae03ed5ac38647ad59870dca3dda2beefe18ecdc30729acb69d",
    "lareqa/xquad-r/de.json": "16fb0f4bf4916154b585a20c24c66074591c9718a1affe764ff4697572328949",
    "lareqa/xquad-r/el.json": "163fd43ee785a30eb534ae2061e9eaa766a7ee4e8ffce5e4b422480c150f64b6",
    "lareqa/xquad-r/en.json": "7b0954f39297c27a31fef610f0883337dd2907fa8699151dc922afdd0fa12ffe",
    "lareqa/xquad-r/es.json": "f8e836b2d91009c4363e04315f7ede363eedbbb49c67dda60de6c4aa782f58de",
    "lareqa/xquad-r/hi.json": "ea45ba8ae4513d1533b222bebdc02a90bc319c055d3aeea68584a053d2e92872",
    "lareqa/xquad-r/ru.json": "7f4dff853538b9a5fcc28c070b8bb983a5c5d190ac747b8e005a1ada9cab18f1",
    "lareqa/xquad-r/th.json": "c3a041864c3a9fb0b4dd91cfdf99cf36b411b3e704c58a303c97bc6dc786cfe4",
    "lareqa/xquad-r/tr.json": "f3e8c13002bbce154a4578f535f7533cb70f3da08840e6b62735935baec7bd94",
    "lareqa/xquad-r/vi.json": "e35926bf5cc6fc6ecbdfca49467aabeb454f08d152d7818143a906bd31dde995",
    "lareqa/xquad-r/zh.json": "80c2cde7b9c2fb134c303cbb52f2ba396ead9eb0014aec43993543d2ba9e93ed",
    "lareqa/mlqa-r/ar.json": "2132fbc03208535c0fe01f2e2c5121d06f9c2aa799af93b0a719dbc105bdf137",
    "lareqa/mlqa-r/de.json": "ce9454dc5aa6f2d85c23cd6e49cb367fbb7c4c6e62d7f71e355c6b5dae4d0886",
    "lareqa/mlqa-r/en.json": "fedd9a5cc0848dda80caf84aa36f482adaae230526a3f6e9e86926a93ef3b1e4",
    "lareqa/mlqa-r/es.json": "70ecba276b8c96a692b120693a595d076ce94ad21d4b28311538a9fcbfe0f9d7",
    "lareqa/mlqa-r/hi.json": "4dd0fb3c06f737a5481d705bc1dcac7876712a5815c9265908fbb3a0696cb654",
    "lareqa/mlqa-r/vi.json": "9d3baff6ba03e6793b25594217265ea59a136b9733833dca8a9582a84a78ff85",
    "lareqa/mlqa-r/zh.json": "57f01d2fff50cf3392805635b01445339f225ad5bf28ba8443b12f8dbd1e69dc",
    "squadshifts/new_wiki_v1.0.json": "1d50a0ca4cdab88d038b52ea8a2d0510af6038d7f41a0a256b9659237769d0ee",
    "squadshifts/reddit_v1.0.json": "b4ac346dbf1816fdec80fdcf91d06a4b754fa51e47960fa8614a94f37ea42a4b",
    "squadshifts/amazon_reviews_v1.0.json": "9db7bdee84a91f0fb80b9e74f365042fbbb217cb8e0a7e73bb071245472589b6",
    "miracl/topics/topics.miracl-v1.0-ar-dev.tsv": "10b534b889ec46e23df478eee09410ef2880d90d419644dfed5d05d39b57ece0",
    "miracl/topics/topics.miracl-v1.0-bn-dev.tsv": "46fbf50f1f3972b6908543bad6b6dfc60a75eec80d54aae603efd884ba608d2f",
    "miracl/topics/topics.miracl-v1.0-de-dev.tsv": "6b66ec2cfb4af383e6fe18a08899bfa3a0deeb5e6010758743fa93ab598321c9",
    "miracl/topics/topics.miracl-v1.0-en-dev.tsv": "25d9e6d17656674fd7aa3b67ee912c71545e664a842b147bfc17e9ff391db3da",
    "miracl/topics/topics.miracl-v1.0-es-dev.tsv": "5e93b5a1cea22a44912e6ad242147c58719dd8ce4bb6304264a53876b70e65ac",
    "miracl/topics/topics.miracl-v1.0-fa-dev.tsv": "df0ece36ab8048f765aa0bb2dde948f5c764cc25bdfc09fb1f5317ef24ff8b49",
    "miracl/topics/topics.miracl-v1.0-fi-dev.tsv": "71766986e9bef80118d60b989bdbd3ed965a845db6986847cbfd791fa00990b3",
    "miracl/topics/topics.miracl-v1.0-fr-dev.tsv": "dd471f3a0a594d212b30495f8b1d9759451aea399b44e02de6ca9c5550930106",
    "miracl/topics/topics.miracl-v1.0-hi-dev.tsv": "94bed8e649806246f59edfb6434ea0c59920a44f2f60a56e01d205c6bf58ef60",
    "miracl/topics/topics.miracl-v1.0-id-dev.tsv": "c5d9d5de2913beeb003ee0ef63e4537c2f632940ed077bfb2e9e8a3b5943096d",
    "miracl/topics/topics.miracl-v1.0-ja-dev.tsv": "1904b9bf0fc52e1b684daa7539b2bcfdd90122e603ffbcf6b5065a0e210525b0",
    "miracl/topics/topics.miracl-v1.0-ko-dev.tsv": "a365552cfc997a8915e948a3b5994883f641e7c3f12b6af87bbfaf89729e32a8",
    "miracl/topics/topics.miracl-v1.0-ru-dev.tsv": "91a7c3b6d21f79a12b5330f0a62811962f9370a0bf539cba8b3fecaa095f0616",
    "miracl/topics/topics.miracl-v1.0-sw-dev.tsv": "15cde3f614cb75b3106fb4606a16162140ee157da22c4a57aae756571788b722",
    "miracl/topics/topics.miracl-v1.0-te-dev.tsv": "3ac8a9a20bdf93ffcc36d554a5fff76ec4435131ae995010814df5881fff07d6",
    "miracl/topics/topics.miracl-v1.0-th-dev.tsv": "6ef23316d1224d9fef9e3f8bc2fdf527dad1a3bba98657617398c226503f5a46",
    "miracl/topics/topics.miracl-v1.0-yo-dev.tsv": "b24558e43e1965d5cfe7440a5bf3bf66d70529474ff76e64bfa72026129b2d2e",
    "miracl/topics/topics.miracl-v1.0-zh-dev.tsv": "5b284a9aabf08bb2d1c88ed7ea276025c9d23846457c5350dc8d391b5e0d0a13",
    "miracl/qrels/qrels.miracl-v1.0-ar-dev.tsv": "3670a7804dedd5a602dad0661f6adb1e65b197829d5571f428e0af7fc46aa313",
    "miracl/qrels/qrels.miracl-v1.0-bn-dev.tsv": "0aab3bcb0bbc5d3e5ed1566a9e3965800239438b5b5f68d5b6bb4acb7f0fec0e",
    "miracl/qrels/qrels.miracl-v1.0-de-dev.tsv": "5d4a0d7ac42c7839a0513ba6deb6b27fc62803f318be8a7c411e10dbbde7578c",
    "miracl/qrels/qrels.miracl-v1.0-en-dev.tsv": "a0af836c300e85088c4d73449492e2378280f967cac032853c9e11f3bc8a8d81",
    "miracl/qrels/qrels.miracl-v1.0-es-dev.tsv": "2d9441de1e25d7d2faf54f757db618ad5a2927337862a367f1a60e87ef7e40b2",
    "miracl/qrels/qrels.miracl-v1.0-fa-dev.tsv": "3cec8ea8fb1f056110e5282df3aa37e14fb5f44c6f885528b6072c0243c1efc4",
    "miracl/qrels/qrels.miracl-v1.0-fi-dev.tsv": "4e534e96878729bd2566233d7499c991463052d91d34738dfe84d79f110255cd",
    "miracl/qrels/qrels.miracl-v1.0-fr-dev.tsv": "823e8f6fd297064d67efe37991cd3953414dc040c290f249b0895925f03509ad",
    "miracl/qrels/qrels.miracl-v1.0-hi-dev.tsv": "4cec99e7012ffca7fd129eeea01f37984bb21702706a8398208e8fba1c14e963",
    "miracl/qrels/qrels.miracl-v1.0-id-dev.tsv": "6270863499b1be946be0883e8815b52ffb21e56181e9dc67596eaeb61494a61c",
    "miracl/qrels/qrels.miracl-v1.0-ja-dev.tsv": "1e2a60ba96b889bd076adea950e7e83a2d083f671955a5ab3e9bdc332b492e5f",
    "miracl/qrels/qrels.miracl-v1.0-ko-dev.tsv": "88827ccc5b64e531b25f70eef30202d33daa9bfa3ac8cceadf5cdbd5ca5034df",
    "miracl/qrels/qrels.miracl-v1.0-ru-dev.tsv": "f877b43c7f53b76aab25e406e5a607ef1c5adba4ffaa11e1b252a4326735a19b",
    "miracl/qrels/qrels.miracl-v1.0-sw-dev.tsv": "a1e6438ac732dabd9a24fd5c8dfc0c64168aea81ff477d8b1986fde5ad193a63",
    "miracl/qrels/qrels.miracl-v1.0-te-dev.tsv": "576a7ded402697a7bb521b4b8bb1a27806b927556001450405d3a5b85590a0c9",
    "miracl/qrels/qrels.miracl-v1.0-th-dev.tsv": "81097e891775f67a9b98d41309f9c452dc4e09572b0cbf4952d4107ed0fe1407",
    "miracl/qrels/qrels.miracl-v1.0-yo-dev.tsv": "39a219ef0b593f6056e4ad1d65b9c03345730efa5107f0abd4a4a44ef2f6f0d2",
    "miracl/qrels/qrels.miracl-v1.0-zh-dev.tsv": "5546474d3dc8139014e6571e9f4041848bb0a314ca6d2d4bac708174d71c59eb",
}

_DOWNLOAD_TIMEOUT_S = 60
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """Where a file comes from and what its bytes must hash to."""

    url: str
    digest: str
    algorithm: str = "sha256"


def _url(relative_path: str) -> str:
    prefix = next(p for p in _URL_ROOTS if relative_path.startswith(p))
    return _URL_ROOTS[prefix] + relative_path[len(prefix):]


SOURCES: dict[str, Source] = {path: Source(_url(path), sha) for path, sha in _SHA256.items()}

# BEIR's own zips; BEIR publishes an md5 per dataset, not a sha256.
BEIR_SOURCES: dict[str, Source] = {
    "scifact": Source("https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/scifact.zip",
                      "5f7d1de60b170fc8027bb7898e2efca1", "md5"),
}


def resolve(relative_path: str) -> Path:
    """The local path of a pinned data file, downloading and verifying it if needed."""
    if relative_path not in SOURCES:
        raise ValueError(f"{relative_path!r} is not a pinned data file; the known files are the keys of "
                         "hybridir.data.sources.SOURCES")
    local = paths.data_dir()
    if local is not None:
        path = local / relative_path
        if not path.is_file():
            raise FileNotFoundError(f"{relative_path} is missing from {paths.DATA_DIR_ENV}="
                                    f"{os.environ[paths.DATA_DIR_ENV]}; point it at a complete copy of the data")
        return path
    path = paths.cache_dir() / "data" / relative_path
    if not path.is_file():  # only verified files are ever renamed into place
        _download(SOURCES[relative_path], path, relative_path)
    return path


def resolve_beir(name: str) -> Path:
    """The local directory of a BEIR dataset (``corpus.jsonl``, ``queries.jsonl``, ``qrels/``)."""
    if name not in BEIR_SOURCES:
        raise ValueError(f"unknown BEIR dataset {name!r}; known: {', '.join(BEIR_SOURCES)} "
                         "(or pass the path of a local BEIR directory)")
    local = paths.data_dir()
    if local is not None:
        path = local / "beir" / name
        if not (path / "corpus.jsonl").is_file():
            raise FileNotFoundError(f"beir/{name}/corpus.jsonl is missing from {paths.DATA_DIR_ENV}="
                                    f"{os.environ[paths.DATA_DIR_ENV]}; point it at a complete copy of the data")
        return path
    root = paths.cache_dir() / "data" / "beir"
    path = root / name
    if not path.is_dir():
        archive = root / f"{name}.zip"
        if not archive.is_file():
            _download(BEIR_SOURCES[name], archive, f"beir/{name}.zip")
        _unzip(archive, name, path)
    return path


def checksum(files: Iterable[str | os.PathLike[str]]) -> str:
    """sha256 over the contents of ``files``, sorted by path, for provenance and cache keys.

    Only the bytes (and each file's length, so that boundaries count) enter the digest, so
    the same data gives the same checksum wherever it is stored.
    """
    digest = hashlib.sha256()
    for path in sorted(Path(f) for f in files):
        digest.update(path.stat().st_size.to_bytes(8, "little"))
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def _download(source: Source, dest: Path, name: str) -> None:
    """Fetch ``source`` to ``dest`` through a temp file; keep it only if its digest matches."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.new(source.algorithm, usedforsecurity=False)  # md5 must work on FIPS hosts too
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(source.url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
                    while chunk := response.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            except (OSError, http.client.HTTPException) as exc:  # URLError and timeouts are OSErrors
                raise ConnectionError(f"could not download {name} from {source.url} ({_reason(exc)}); set "
                                      f"{paths.DATA_DIR_ENV} to a local copy of the data (e.g. ../shared/data)"
                                      ) from exc
        if digest.hexdigest() != source.digest:
            raise ValueError(f"{source.algorithm} mismatch for {name} downloaded from {source.url}: expected "
                             f"{source.digest}, got {digest.hexdigest()}; the file was not kept")
        os.replace(tmp, dest)  # atomic: readers never see a partial file
    finally:
        tmp.unlink(missing_ok=True)


def _reason(exc: BaseException) -> str:
    # A plain URLError wraps the socket error ("[Errno 111] Connection refused"); HTTPError says it all.
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _unzip(archive: Path, name: str, dest: Path) -> None:
    """Extract the ``<name>/`` folder of a BEIR zip to ``dest`` atomically."""
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{name}."))
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(staging)  # ZipFile sanitises absolute and ``..`` member names
        extracted = staging / name
        if not (extracted / "corpus.jsonl").is_file():
            raise ValueError(f"{archive} has no {name}/corpus.jsonl; delete it and retry")
        try:
            os.replace(extracted, dest)
        except OSError:
            if not dest.is_dir():  # another process may have won the race; that is fine
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
