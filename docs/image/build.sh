#!/bin/sh
# build.sh BINARY NAME:TAG - the moat container image (make image), offline, with buildah:
# from scratch, the binary (built with PREFIX=/usr), exactly the shared
# libraries ldd names and the dynamic loader, /etc/moat/moat.conf (the
# example), the rule files, the public suffix list, a user of its own (uid and gid 65532, numeric in
# the image config, so that runAsNonRoot can check it); no shell, no package
# manager. Runs as root (buildah mount), or under "buildah unshare".
# BUILDAH: the buildah command (e.g. with --root DIR for a store of its own).
set -eu
bin=$1
ref=$2
buildah=${BUILDAH:-buildah}
uid=65532
version=${ref##*:}

[ -x "$bin" ] || { echo "build.sh: no binary $bin" >&2; exit 1; }
ctr=$($buildah from scratch)
trap '$buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
root=$($buildah mount "$ctr")

# The binary, without its debug sections (the symbols stay, for backtraces).
install -d -m 755 "$root/usr/sbin"
objcopy --strip-debug "$bin" "$root/usr/sbin/moat"
chmod 755 "$root/usr/sbin/moat"

# Its libraries, each at the path the loader finds it by (as ldd says),
# and the loader itself. Nothing else is loaded at run time: OpenSSL's
# default provider is built in, and the user lookups of glibc >= 2.34
# read /etc/passwd and /etc/group without an NSS module.
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u |
while read -r lib; do
	install -d -m 755 "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
	chmod 644 "$root$lib"
done
interp=$(ldd "$bin" | awk '$1 ~ /^\// { print $1 }')
chmod 755 "$root$interp"

# The public suffix list DMARC reads (Debian's publicsuffix package).
install -d -m 755 "$root/usr/share/publicsuffix"
install -m 644 /usr/share/publicsuffix/public_suffix_list.dat "$root/usr/share/publicsuffix/"

# The configuration and the rules, read-only for moat.
install -d -m 755 "$root/etc/moat" "$root/usr/share/moat/rules"
install -m 644 docs/moat.conf.example "$root/etc/moat/moat.conf"
install -m 644 rules/*.rules "$root/usr/share/moat/rules/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nmoat:x:%d:%d:moat:/nonexistent:/sbin/nologin\n' $uid $uid \
	> "$root/etc/passwd"
printf 'root:x:0:\nmoat:x:%d:\n' $uid > "$root/etc/group"
printf 'passwd: files\ngroup: files\n' > "$root/etc/nsswitch.conf"
chmod 644 "$root/etc/passwd" "$root/etc/group" "$root/etc/nsswitch.conf"
# spool_dir = /tmp: large messages spill there
install -d -m 1777 "$root/tmp"

size=$(du -sk "$root" | cut -f1)
$buildah umount "$ctr" >/dev/null
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
$buildah config \
	--user "$uid:$uid" --workingdir / \
	--entrypoint '["/usr/sbin/moat"]' --cmd '' \
	--stop-signal SIGTERM \
	--label org.opencontainers.image.title=moat \
	--label "org.opencontainers.image.description=moat, an anti-spam SMTP filtering proxy" \
	--label "org.opencontainers.image.version=$version" \
	--label "org.opencontainers.image.revision=$revision" \
	--label org.opencontainers.image.documentation=man:moat.8 \
	"$ctr"
$buildah commit --quiet --rm "$ctr" "$ref" >/dev/null
trap - EXIT
echo "image $ref: $size KiB unpacked ($($buildah images --format '{{.Size}}' "$ref") as buildah counts)"
