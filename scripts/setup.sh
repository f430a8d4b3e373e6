#!/usr/bin/env bash
# pt2q set-up on a fresh machine: system packages (aarch64 cross compiler, qemu-user, SIMDe,
# llvm-mca), a .venv in the repo root with torch 2.13 (pip takes the local wheel) and pt2q with
# its test extra, then the bundled example end to end.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t apt_pkgs < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' scripts/apt-packages.txt)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  echo "[setup] installing system packages: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
echo "[setup] installing torch 2.13 and pt2q[test] into .venv"
# (stderr filtered of the machine's notes about missing local index folders; pip's exit status is kept)
pip_install() { .venv/bin/python -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v '^WARNING: Location' >&2); }
pip_install "torch==2.13.0"
pip_install -e ".[test]"
.venv/bin/python -c "import torch, pt2q; assert torch.__version__.startswith('2.13'), torch.__version__"

echo "[setup] running the bundled example: examples/quickstart.py"
.venv/bin/python examples/quickstart.py
