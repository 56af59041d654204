#!/usr/bin/env bash
# Build the demo stack's Docker images without any registry:
#
#   gauntlet-demo:latest   FROM scratch + the static gauntlet binary (api, pipeline)
#   gauntlet-redis:latest  FROM scratch + Debian's redis-server and the shared libraries it
#                          links (from ldd) + the static gauntlet binary, which starts it
#
# Usage:  docker/build.sh            (from any folder; needs cargo, docker, redis-server)
#
# Idempotent and fast when nothing changed: cargo rebuilds nothing, and docker reuses its
# layer cache because the build contexts have the same content.
#
# Environment:
#   GAUNTLET_STATIC_TARGET_DIR  cargo target folder of the static build
#                               (default: <repo>/target/static, apart from the normal one
#                               because RUSTFLAGS differ and would rebuild it every time)
#   REDIS_SERVER                redis-server to package (default: found on PATH)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
target_dir=${GAUNTLET_STATIC_TARGET_DIR:-$root/target/static}
triple=x86_64-unknown-linux-gnu

die() { echo "docker/build.sh: $*" >&2; exit 1; }

# Quiet unless it fails (the legacy builder prints a deprecation notice on every build).
build_image() {
    local tag=$1 dir=$2 log
    if ! log=$(docker build -q -t "$tag" "$dir" 2>&1); then
        echo "$log" >&2
        die "docker build of $tag failed"
    fi
}

command -v docker >/dev/null || die "docker not found on PATH"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (is dockerd running?)"
redis_server=${REDIS_SERVER:-$(command -v redis-server || true)}
[ -n "$redis_server" ] || die "redis-server not found: install Debian's redis-server package (apt-get install redis-server)"

echo "docker/build.sh: static gauntlet binary (cargo, target $target_dir)" >&2
# crt-static: glibc linked in, so the binary runs on an empty image. Every TLS dependency
# here is rustls (aws-lc-rs, built from source by cc), so there is no OpenSSL to link.
# --features demo: the images run `gauntlet demo ...` (on by default; named so it stays on).
RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --manifest-path "$root/Cargo.toml" --release \
    --target "$triple" --target-dir "$target_dir" --bin gauntlet --features demo
bin="$target_dir/$triple/release/gauntlet"
if ldd "$bin" >/dev/null 2>&1 && ! ldd "$bin" 2>&1 | grep -q "statically linked"; then
    die "$bin is dynamically linked; it would not run FROM scratch"
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT

# --- gauntlet-demo ---
mkdir -p "$ctx/demo"
cp "$bin" "$ctx/demo/gauntlet"
cp "$root/docker/Dockerfile.gauntlet" "$ctx/demo/Dockerfile"
echo "docker/build.sh: image gauntlet-demo:latest" >&2
build_image gauntlet-demo:latest "$ctx/demo"

# --- gauntlet-redis ---
rootfs="$ctx/redis/rootfs"
mkdir -p "$rootfs/usr/bin" "$rootfs/data"
# Debian ships redis-server as a symlink to redis-check-rdb (one multi-call program that
# picks its role from argv[0]); copy the file under the server's name.
cp -L "$redis_server" "$rootfs/usr/bin/redis-server"
# The loader and every library at the path ldd resolved it to.
ldd "$redis_server" | awk '/=> \//{print $3} /^[ \t]*\//{print $1}' | sort -u |
while read -r lib; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
done
cp "$bin" "$rootfs/gauntlet"
cp "$root/docker/Dockerfile.redis" "$ctx/redis/Dockerfile"
# Same content, same times: the COPY layer's cache key only depends on content, but keep
# the context stable anyway.
find "$rootfs" -exec touch -h -d @0 {} +
echo "docker/build.sh: image gauntlet-redis:latest ($("$redis_server" --version | awk '{print $3}'))" >&2
build_image gauntlet-redis:latest "$ctx/redis"

docker image ls --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}' | grep -E '^gauntlet-(demo|redis):latest ' >&2
echo "docker/build.sh: done. Start the stack with: docker-compose -f docker/compose.yml -p gauntlet-demo up -d" >&2
