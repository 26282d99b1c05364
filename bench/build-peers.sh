#!/usr/bin/env bash
# Builds the peer that takumi's inference speed is compared against: llama.cpp's
# CPU tools and llama-server (the serving peer of bench/serve_load.sh), from the llama.cpp source that the PyPI source distribution of
# llama-cpp-python carries in vendor/llama.cpp. Nothing of llama.cpp is committed:
# everything lives under bench/.peers/ (git-ignored). Idempotent: a finished build
# is detected and skipped. Usage: bench/build-peers.sh [--jobs N]
# Environment: LLAMA_CPP_PYTHON_VERSION (default below), PEERS_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
jobs=2
while [ $# -gt 0 ]; do
  case "$1" in
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "build-peers.sh: unknown option $1" >&2; exit 1 ;;
  esac
done

peers=${PEERS_DIR:-bench/.peers}
src=$peers/llama_cpp_python-$version
bld=$peers/llama.cpp-build
stamp=$bld/.built-$version
targets="llama-bench llama-simple llama-perplexity llama-server"

if [ -f "$stamp" ]; then
  echo "llama.cpp (llama-cpp-python $version) already built in $bld" >&2
  exit 0
fi

mkdir -p "$peers"
if [ ! -d "$src/vendor/llama.cpp" ]; then
  tarball=$peers/llama_cpp_python-$version.tar.gz
  if [ ! -s "$tarball" ]; then
    python3 -m pip download --no-deps --no-binary :all: -q -d "$peers" \
      "llama-cpp-python==$version"
  fi
  tar -xzf "$tarball" -C "$peers"
fi
[ -f "$src/vendor/llama.cpp/CMakeLists.txt" ] || {
  echo "build-peers.sh: $src/vendor/llama.cpp has no CMakeLists.txt" >&2; exit 1; }

# CPU only, tuned for this machine, OpenMP threading (as llama.cpp ships it).
cmake -S "$src/vendor/llama.cpp" -B "$bld" -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_OPENMP=ON -DLLAMA_CURL=OFF \
  -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_TOOLS=ON >&2
nice -n 19 cmake --build "$bld" --config Release -j"$jobs" --target $targets >&2

for t in $targets; do
  [ -x "$bld/bin/$t" ] || { echo "build-peers.sh: $bld/bin/$t was not built" >&2; exit 1; }
done
# Record what was built, for the benchmark tables.
# The llama.cpp commit this sdist vendors is named in its CHANGELOG.
commit=$(grep -m1 -o 'ggml-org/llama.cpp@[0-9a-f]*' "$src/CHANGELOG.md" 2>/dev/null | cut -d@ -f2 || true)
echo "llama.cpp ${commit:-unknown} (vendored in llama-cpp-python $version)" > "$stamp"
echo "built $targets in $bld/bin" >&2
