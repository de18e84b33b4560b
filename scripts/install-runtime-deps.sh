#!/bin/sh
# Installs the host packages the local OCI runtime (crates/runtime) and its
# integration tests need. Idempotent: packages already installed are left
# alone, and apt-get runs only when something is missing.
#
#   runc            OCI runtime that runs environments
#   busybox-static  statically linked busybox for the minimal test image
#   e2fsprogs       mkfs.ext4 and debugfs for home volumes
#   mount           mount, umount, losetup (loop-mounted home volumes)
#   iproute2        ip (network namespaces, veth pairs)
#   iptables        NAT and egress filtering for environment networks
#   procps          ps, used by diagnostics
#   util-linux      nsenter (configuring environment network namespaces)
#   coreutils       cp (image import)
#   gcc, libc6-dev  build the static socket helper of
#                   crates/runtime/tests/isolation.rs
#   debootstrap     builds the default image (its test in
#                   crates/runtime/tests/default_image.rs, and image::ensure)
#   dnsmasq-base    the DNS servers of the network tests (the binary only:
#                   unlike `dnsmasq`, it installs no service that would
#                   start answering on the host's port 53)
#   chromium        the headless browser of the web console's test
#                   (crates/cli/tests/console_browser.rs, driven by
#                   playwright-core from web/node_modules)
#   nodejs, npm     build the web console (crates/server/build.rs); only
#                   when no `node` is on the PATH already
set -eu

packages="runc busybox-static e2fsprogs mount util-linux iproute2 iptables procps coreutils gcc libc6-dev dnsmasq-base debootstrap chromium"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    packages="$packages nodejs npm"
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-runtime-deps.sh: must run as root" >&2
    exit 1
fi

missing=""
for p in $packages; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # busybox-static conflicts with busybox; apt replaces it.
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
else
    echo "runtime dependencies already installed"
fi

# Loop devices and overlayfs are usually modules loaded on demand.
modprobe loop 2>/dev/null || true
modprobe overlay 2>/dev/null || true
