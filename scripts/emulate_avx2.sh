#!/usr/bin/env bash
# Run a command as an x86 CPU with AVX2 and no VNNI / AVX-512 would, on a newer x86 CPU:
#   bash scripts/emulate_avx2.sh .venv/bin/python bench/x86.py --no-package
#   bash scripts/emulate_avx2.sh .venv/bin/python -m pytest -q
# All four are needed; each limits one library to its AVX2 code.
set -euo pipefail
export ONEDNN_MAX_CPU_ISA=AVX2         # oneDNN: vpmaddubsw int8 kernels (saturating int16 pairs)
export ATEN_CPU_CAPABILITY=avx2        # ATen's vector kernels and Inductor's vector width
export TORCHINDUCTOR_CPP_MARCH=haswell # Inductor's C++ flags: its default -march=native on an
                                       # AVX-512 CPU, with AVX2 vector headers, compiles wrong
                                       # code (per-token quantize: 14711 of 16384 values wrong)
export MKL_ENABLE_INSTRUCTIONS=AVX2    # MKL's float GEMMs (the fp32 baselines)
exec "$@"
