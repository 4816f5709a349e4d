#!/usr/bin/env bash
# Installs the Debian packages zendmm's targets need; a no-op when all are there.
# Usage: scripts/install-deps.sh [test|bench|php]...   (default: test)
set -euo pipefail

TEST_PACKAGES=(build-essential pkg-config valgrind)
BENCH_PACKAGES=(libjemalloc-dev libmimalloc-dev libgoogle-perftools-dev hyperfine time)
PHP_PACKAGES=(php8.2-cli libphp8.2-embed php8.2-dev)

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(test)

wanted=()
for g in "${groups[@]}"; do
    case "$g" in
        test)  wanted+=("${TEST_PACKAGES[@]}") ;;
        bench) wanted+=("${BENCH_PACKAGES[@]}") ;;
        php)   wanted+=("${PHP_PACKAGES[@]}") ;;
        *) echo "install-deps: unknown group '$g' (known: test bench php)" >&2; exit 2 ;;
    esac
done

if ! command -v cargo >/dev/null 2>&1; then
    echo "install-deps: cargo not found. Install a Rust toolchain (rustup, https://rustup.rs," >&2
    echo "or your distribution's cargo/rustc packages) and put cargo on PATH." >&2
    exit 1
fi

missing=()
for p in "${wanted[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: ${groups[*]}: all ${#wanted[@]} packages present"
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "install-deps: missing ${missing[*]}, and not root and no sudo to install them" >&2
        exit 1
    fi
fi

echo "install-deps: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
