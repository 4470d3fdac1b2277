#!/bin/sh
# redis-rootfs.sh DIR — assemble the build context for redis.Dockerfile.
#
# Copies the host's redis-server and redis-cli (Debian package redis-server /
# redis-tools) and every shared library `ldd` reports for them, including the
# dynamic loader, into DIR/rootfs at the same paths, with a minimal /etc/passwd
# and /etc/group, and creates the empty directories DIR/data and DIR/tmp (the
# Dockerfile copies those with --chown: COPY always makes files root-owned).
# Copy the Dockerfile yourself. Override the binaries with REDIS_SERVER and
# REDIS_CLI.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD-CONTEXT-DIR" >&2
	exit 2
fi
ctx=$1
server=${REDIS_SERVER:-/usr/bin/redis-server}
cli=${REDIS_CLI:-/usr/bin/redis-cli}
root=$ctx/rootfs

for bin in "$server" "$cli"; do
	if [ ! -x "$bin" ]; then
		echo "$0: $bin not found; install Debian's redis-server package" >&2
		exit 1
	fi
done

mkdir -p "$root/usr/bin" "$root/etc" "$ctx/data" "$ctx/tmp"
# Debian's redis-server is a symlink to redis-check-rdb, which picks its mode
# from argv[0]: copy the target under the name redis-server.
cp -L "$server" "$root/usr/bin/redis-server"
cp -L "$cli" "$root/usr/bin/redis-cli"

# ldd prints "name => /path (0x...)", "/lib64/ld-linux... (0x...)" for the
# loader, "linux-vdso.so.1 (0x...)" for the vDSO and "name => not found" for a
# missing library.
libs=$(for bin in "$server" "$cli"; do ldd "$bin"; done | awk '
	/not found/        { print "MISSING:" $1; next }
	$2 == "=>" && $3 ~ /^\// { print $3; next }
	$1 ~ /^\//         { print $1 }
' | sort -u)

if [ -z "$libs" ]; then
	echo "$0: ldd listed no libraries for $server; is it a dynamic executable?" >&2
	exit 1
fi

for lib in $libs; do
	case $lib in
	MISSING:*)
		echo "$0: shared library ${lib#MISSING:} not found" >&2
		exit 1
		;;
	esac
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done

printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/data:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"

chmod 0755 "$ctx/data"
chmod 1777 "$ctx/tmp"
