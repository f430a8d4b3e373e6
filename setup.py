"""Maps the sibling folders onto the pt2q namespace.

``quantizers/``, ``lowering/`` and ``debugger/`` install as ``pt2q.quantizers``,
``pt2q.lowering`` and ``pt2q.debugger`` (never as top-level packages with those generic
names). Subpackages are discovered, so adding a folder needs no edit here.
"""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
ROOTS = {
    "pt2q": "pt2q",
    "pt2q.quantizers": "quantizers",
    "pt2q.lowering": "lowering",
    "pt2q.debugger": "debugger",
}


def _packages() -> tuple[list[str], dict[str, str]]:
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    for name, folder in ROOTS.items():
        packages.append(name)
        package_dir[name] = folder
        for sub in find_packages(where=str(ROOT / folder)):
            if name == "pt2q" and sub.split(".")[0] in {"quantizers", "lowering", "debugger"}:
                continue
            packages.append(f"{name}.{sub}")
            package_dir[f"{name}.{sub}"] = f"{folder}/{sub.replace('.', '/')}"
    return packages, package_dir


PACKAGES, PACKAGE_DIR = _packages()

setup(
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    package_data={"pt2q.lowering": ["arm/**/*.c", "arm/**/*.h", "arm/**/*.cpp", "arm/**/*.md"]},
    include_package_data=True,
)
