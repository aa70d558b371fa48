#!/usr/bin/env python3
"""Assemble the Python package `mo` as an abi3 wheel from an already built `lib_mo.so`.

scripts/package.sh builds the extension in its one release build (`cargo build --release` of the
packaged binaries with mo-python and mo-node, features unified in that one call); this script only
packs what that build left: no compiler runs here. `maturin build --release` does not reuse that
build: measured (maturin 1.16) right after it, with `cargo build` of the same call a no-op, maturin
compiled bytes, tokio, serde, ring, rustls, hyper, mo-core … again (44 crates in the 150 s it was
given): its `cargo rustc` of mo-python alone resolves the features of 20 of its dependencies
(tokio, serde, bytes, hyper, …) otherwise than the joint build, so those and all above them get
a second build; and its build-script environment (PYO3_PYTHON, PYO3_ENVIRONMENT_SIGNATURE)
reruns pyo3's build scripts, so the next joint build compiled pyo3 and mo-python again too.

The wheel holds what maturin's would (bindings/python/pyproject.toml `[tool.maturin]`):
  every .py and .pyi file of bindings/python/python/mo and mo/py.typed (python-source = "python")
  mo/_mo.abi3.so                                                        (module-name = "mo._mo")
  mo-VERSION.dist-info/{METADATA,WHEEL,RECORD}
tagged cp3X-abi3-PLATFORM: cp3X from pyo3's `abi3-py3X` feature in bindings/python/Cargo.toml,
PLATFORM from this interpreter (linux_x86_64 here: built on this system, not audited for
manylinux). The library is copied with its debug info stripped (`strip --strip-unneeded`).

Usage: scripts/build-wheel.py LIB_MO_SO VERSION OUT_DIR   (prints the wheel's path)
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINDING = ROOT / "bindings" / "python"
PACKAGE = BINDING / "python" / "mo"


def sources() -> list[str]:
    """Every file of the package directory that goes into the wheel, besides the extension
    module: its Python sources and stubs (a new module is never left out) and the `py.typed`
    marker."""
    return sorted(
        p.name
        for p in PACKAGE.iterdir()
        if p.is_file() and (p.suffix in (".py", ".pyi") or p.name == "py.typed")
    )


def abi3_tag() -> str:
    """`cp39` for pyo3's `abi3-py39` feature: the oldest CPython the extension runs on."""
    cargo = tomllib.loads((BINDING / "Cargo.toml").read_text())
    features = cargo["dependencies"]["pyo3"]["features"]
    found = [m for f in features if (m := re.fullmatch(r"abi3-py3(\d+)", f))]
    if len(found) != 1:
        sys.exit(f"build-wheel: expected one abi3-py3X feature of pyo3, found {features}")
    return f"cp3{found[0].group(1)}"


def metadata(version: str) -> str:
    """The core metadata (METADATA) from pyproject.toml's [project] table and the README."""
    project = tomllib.loads((BINDING / "pyproject.toml").read_text())["project"]
    lines = [
        "Metadata-Version: 2.4",
        f"Name: {project['name']}",
        f"Version: {version}",
        f"Summary: {project['description']}",
        f"License: {project['license']['text']}",
        f"Requires-Python: {project['requires-python']}",
    ]
    lines += [f"Classifier: {c}" for c in project.get("classifiers", [])]
    for extra, deps in project.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f"Requires-Dist: {d} ; extra == '{extra}'" for d in deps]
    lines.append("Description-Content-Type: text/markdown")
    readme = (BINDING / str(project["readme"])).read_text()
    return "\n".join(lines) + "\n\n" + readme


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    lib, version, out_dir = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    if not lib.is_file():
        sys.exit(f"build-wheel: {lib} is missing: build it first (scripts/package.sh)")
    platform = re.sub(r"[-.]", "_", sysconfig.get_platform())
    tag = f"{abi3_tag()}-abi3-{platform}"
    dist_info = f"mo-{version}.dist-info"

    with tempfile.TemporaryDirectory() as tmp:
        stripped = Path(tmp) / "_mo.abi3.so"
        subprocess.run(["strip", "--strip-unneeded", "-o", str(stripped), str(lib)], check=True)
        files: list[tuple[str, bytes]] = [
            (f"mo/{name}", (PACKAGE / name).read_bytes()) for name in sources()
        ]
        files.append(("mo/_mo.abi3.so", stripped.read_bytes()))

    files.append((f"{dist_info}/METADATA", metadata(version).encode()))
    wheel = (
        "Wheel-Version: 1.0\n"
        "Generator: mo scripts/build-wheel.py\n"
        "Root-Is-Purelib: false\n"
        f"Tag: {tag}\n"
    )
    files.append((f"{dist_info}/WHEEL", wheel.encode()))
    record = [record_line(name, data) for name, data in files] + [f"{dist_info}/RECORD,,"]
    files.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode()))

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"mo-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as whl:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            # -rwxr-xr-x for the extension module, -rw-r--r-- for the rest.
            mode = 0o755 if name.endswith(".so") else 0o644
            info.external_attr = (0o100000 | mode) << 16
            whl.writestr(info, data)
    print(path)


if __name__ == "__main__":
    main()
