"""mypy over ``pt2q/``, ``quantizers/``, ``lowering/`` and ``debugger/`` as the package pt2q.

``setup.py`` installs the three sibling folders as ``pt2q.quantizers``, ``pt2q.lowering`` and
``pt2q.debugger`` through an import hook that mypy cannot follow, so this script hands mypy every
file with its installed module name (``quantizers/coverage.py`` -> ``pt2q.quantizers.coverage``).
Options come from ``[tool.mypy]`` in ``pyproject.toml``. Exit status 0 when clean, 1 on errors.

    .venv/bin/python scripts/typecheck.py            # the whole package
    .venv/bin/python scripts/typecheck.py lowering   # report only errors under these folders
"""

from __future__ import annotations

import sys
from pathlib import Path

from mypy import build
from mypy.errors import CompileError
from mypy.main import process_options
from mypy.modulefinder import BuildSource

ROOT = Path(__file__).resolve().parent.parent
# The same mapping as setup.py's ROOTS.
ROOTS = {
    "pt2q": "pt2q",
    "pt2q.quantizers": "quantizers",
    "pt2q.lowering": "lowering",
    "pt2q.debugger": "debugger",
}
_SIBLINGS = {"quantizers", "lowering", "debugger"}


def sources() -> list[BuildSource]:
    """Every module of the package, with the name it is installed under."""
    out = []
    for package, folder in ROOTS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if package == "pt2q" and parts and parts[0] in _SIBLINGS:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out.append(BuildSource(str(path.relative_to(ROOT)), ".".join([package, *parts])))
    return out


def main(argv: list[str]) -> int:
    _, options = process_options(["--config-file", str(ROOT / "pyproject.toml"), "-c", "pass"])
    try:
        result = build.build(sources(), options)
    except CompileError as e:  # a syntax error or a blocking error
        print("\n".join(e.messages))
        return 2
    errors = [line for line in result.errors if not argv or line.split("/")[0] in argv]
    print("\n".join(errors))
    n = sum(": error:" in line for line in errors)
    print(f"mypy: {n} error(s)" if n else "mypy: clean")
    return 1 if n else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
