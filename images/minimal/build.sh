#!/bin/sh
# Build the minimal Seashell test image: a root filesystem made of Debian's
# statically linked busybox, with the users an environment expects.
#
# Usage: build.sh DEST_DIR
#
# DEST_DIR must not exist or be empty. The tree is built with plain host
# ownership (root-owned); the runtime shifts ownership into the environment's
# mapped uid range when it imports the image (see docs/runtime.md).
# Needs: busybox-static (apt-get install busybox-static). No network.
set -eu

dest=${1:?usage: build.sh DEST_DIR}
busybox=${BUSYBOX:-/bin/busybox}

if [ ! -x "$busybox" ] || ! "$busybox" --list-full >/dev/null 2>&1; then
    echo "build.sh: $busybox not found or not a full busybox; install the Debian package busybox-static" >&2
    exit 1
fi
if ldd "$busybox" >/dev/null 2>&1; then
    echo "build.sh: $busybox is dynamically linked; install the Debian package busybox-static" >&2
    exit 1
fi
if [ -d "$dest" ] && [ -n "$(ls -A "$dest")" ]; then
    echo "build.sh: $dest exists and is not empty" >&2
    exit 1
fi

umask 022
mkdir -p "$dest"
cd "$dest"
mkdir -p bin sbin usr/bin usr/sbin usr/local/bin etc root home/cloudshell-user \
    tmp var/tmp proc sys dev run
chmod 1777 tmp var/tmp
chmod 0700 root

cp "$busybox" bin/busybox
chmod 0755 bin/busybox

# One symbolic link per applet, at the path busybox itself reports.
"$busybox" --list-full | while read -r applet; do
    case "$applet" in
        bin/busybox | "") continue ;;
    esac
    [ -e "$applet" ] || [ -L "$applet" ] || ln -s /bin/busybox "$applet"
done

cat > etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
cloudshell-user:x:1000:1000:CloudShell user:/home/cloudshell-user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > etc/group <<'GROUP'
root:x:0:
tty:x:5:
wheel:x:10:cloudshell-user
cloudshell-user:x:1000:
nogroup:x:65534:
GROUP
cat > etc/shadow <<'SHADOW'
root:*:19000:0:99999:7:::
cloudshell-user:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
SHADOW
chmod 0640 etc/shadow
printf 'localhost\n' > etc/hostname
printf '127.0.0.1 localhost\n::1 localhost\n' > etc/hosts
: > etc/resolv.conf
printf 'PRETTY_NAME="Seashell minimal test image"\nID=seashell-minimal\n' > etc/os-release

chown -R 1000:1000 home/cloudshell-user
chmod 0755 home/cloudshell-user
