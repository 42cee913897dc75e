#!/usr/bin/env bash
# Installs the Debian 12 packages ltxvfs needs to build, test, fuzz and benchmark.
# Idempotent: when everything is already installed it prints nothing and touches nothing.
# Run as root (or with sudo available). Used by scripts/demo.sh and scripts/test.sh.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates
  clang libclang-rt-14-dev   # sanitizer builds and libFuzzer targets
  liblz4-dev lz4             # LTX page compression; the lz4 CLI is the benchmark baseline
  libsqlite3-dev sqlite3     # the VFS, the demo, round-trip tests
  check                      # unit tests
  libjansson-dev             # JSON (test vectors' sidecars)
  libmicrohttpd-dev libcurl4-openssl-dev libssl-dev  # fakes3 and the S3 client
  libexpat1-dev              # fakes3: request XML bodies (pkg-config expat)
  curl python3-boto3         # fakes3 tests: curl --aws-sigv4 and the AWS SDK for Python
  python3-botocore           # the S3 client's signatures checked by botocore's own signer
  python3                    # test helpers; /usr/bin/python3 loads the VFS extension in tests
  locales                    # the chaos parser's locale-independence test (de_DE definitions)
  awscli s3cmd rclone        # fakes3 compatibility suite: real S3 clients (tests/cli/test_fakes3_compat_*)
  nodejs npm                 # the AWS SDK for JavaScript (compat suite) and s3rver (bench_fakes3), from npm
  libnode-dev                # Node.js headers: better-sqlite3 is built from source (tests/cli/test_vfs_node.sh)
  golang-go golang-github-mattn-go-sqlite3-dev  # the Go example (examples/go), built offline
  docker-compose             # validates docker/compose.yaml (tests/cli/test_docker_compose.sh); no engine needed
)

# Satisfied by the command in /usr/bin as well as by the Debian package: a Node.js installed another
# way (e.g. NodeSource's nodejs, which bundles npm and conflicts with Debian's npm package) is used
# as it is. (The tests run clients with PATH=/usr/bin:/bin.)
declare -A by_command=([nodejs]=node [npm]=npm)
# Satisfied by a file as well: the headers a Node.js installed another way ships itself.
declare -A by_file=([libnode-dev]=/usr/include/node/node.h)

missing=()
for p in "${packages[@]}"; do
  if [ -n "${by_command[$p]:-}" ] &&
    env PATH=/usr/bin:/bin sh -c 'command -v "$1"' _ "${by_command[$p]}" >/dev/null; then
    continue
  fi
  if [ -n "${by_file[$p]:-}" ] && [ -f "${by_file[$p]}" ]; then
    continue
  fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "bootstrap: need root to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "bootstrap: done"
