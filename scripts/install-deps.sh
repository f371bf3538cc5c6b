#!/usr/bin/env bash
# Installs fabric's build and test dependencies from Debian 12 packages.
# Idempotent: does nothing when every package is already installed.
set -euo pipefail

packages=(
  build-essential cmake make pkg-config git
  libzmq3-dev cppzmq-dev
  libmsgpack-cxx-dev libboost-dev
  liblmdb-dev
  libgtest-dev libgmock-dev
  libcli11-dev
  nlohmann-json3-dev
  libczmq-dev  # tests only: certificates written by CZMQ's zcert are read by fabric, and back
  iproute2  # network namespaces and veth pairs for the two-host fault tests
  clang libclang-rt-14-dev  # the libFuzzer targets (tests/fuzz/): clang++ and its fuzzer runtime
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
  echo "install-deps: run as root, or install them with apt-get yourself" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
