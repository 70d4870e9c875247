#!/usr/bin/env bash
# Prepares the Linux guest that the kernel tests boot under QEMU (test/kernel/, test/kit/guest-vm.ts): this host's
# kernel lacks XFS quota and device-mapper, so the xfs and lvm quota strategies are tested in a Debian kernel that
# has them. Builds, into the repository's gitignored cache,
#   .cache/guest-kernel/<package>_<version>-<hash>/vmlinux         Debian's kernel (pinned below), uncompressed
#   .cache/guest-kernel/<package>_<version>-<hash>/initramfs.img   busybox, the modules the tests need, test/kernel/guest-init.sh
#   .cache/guest-kernel/<package>_<version>-<hash>/manifest.json   what was built from what
# where <hash> covers this script and the guest init, so changing either builds a new guest beside the old one
# (worktrees share the cache) and test/kit/guest-vm.ts finds the one that matches its checkout.
# Idempotent: an existing folder is complete (it is built in a temporary folder and moved into place). Needs
# apt-get download (Debian), dpkg-deb, depmod/modprobe (kmod), cpio, gzip and a static busybox
# (.ci/install-system-deps installs them). Takes ~15 s and 70 MB of download; the result is ~30 MB.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: a kernel ABI Debian bookworm ships. Debian's security archive drops an ABI's packages a while after the
# next one comes out; then apt offers no such version, this script fails naming the ones it offers, and the pin is
# bumped here (the tests do not depend on the patch level; XFS quota, dm-thin, 9p and overlay are in every 6.1 build).
KERNEL_PACKAGE=linux-image-6.1.0-56-amd64
KERNEL_PACKAGE_VERSION=6.1.192-2
# Modules the tests load (modprobe adds what they depend on): disks, the 9p shares, the overlay root, the file
# systems and quota, device-mapper thin provisioning for LVM, loop devices.
MODULES=(virtio_pci virtio_blk 9pnet_virtio 9p overlay xfs ext4 loop dm-mod dm-thin-pool dm-snapshot)

die() {
  echo "prepare-guest-kernel: ERROR: $*" >&2
  exit 1
}

for tool in apt-get dpkg-deb depmod modprobe cpio gzip xz sha256sum; do
  command -v "$tool" >/dev/null || die "'$tool' is not installed; run \`bash .ci/install-system-deps\`"
done
busybox=""
for candidate in /bin/busybox /usr/bin/busybox; do
  if [ -x "$candidate" ] && ! ldd "$candidate" >/dev/null 2>&1; then busybox="$candidate"; break; fi
done
[ -n "$busybox" ] || die "no static busybox (package busybox-static); run \`bash .ci/install-system-deps\`"

hash=$(cat scripts/prepare-guest-kernel.sh test/kernel/guest-init.sh | sha256sum | cut -c1-12)
cache=".cache/guest-kernel"
target="${cache}/${KERNEL_PACKAGE}_${KERNEL_PACKAGE_VERSION}-${hash}"
if [ -f "${target}/manifest.json" ]; then exit 0; fi

start=$(date +%s)
echo "prepare-guest-kernel: building ${target}"
mkdir -p "$cache"
work=$(mktemp -d "$(pwd)/${cache}/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# apt-get download writes into the current folder and, as root, warns that the _apt user cannot write there: the
# download itself is checked by apt against the archive's signed index either way.
download() { (cd "$work" && apt-get download -q "${KERNEL_PACKAGE}=${KERNEL_PACKAGE_VERSION}" 2>"${work}/apt.log" >/dev/null); }
# A machine whose package lists are missing or older than the pin needs them refreshed once.
if ! download && ! { apt-get update -qq 2>>"${work}/apt.log" && download; }; then
  offered=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' 2>/dev/null | cut -d' ' -f1 | sort -V | tr '\n' ' ')
  die "cannot download ${KERNEL_PACKAGE}=${KERNEL_PACKAGE_VERSION}: $(grep -v '^W:' "${work}/apt.log" | tr '\n' ' ')
  apt offers: ${offered:-nothing (run apt-get update first)}
  bump KERNEL_PACKAGE and KERNEL_PACKAGE_VERSION in scripts/prepare-guest-kernel.sh (apt-cache policy <package> shows the version)"
fi
dpkg-deb -x "${work}/${KERNEL_PACKAGE}_"*.deb "${work}/kernel"
release=$(ls "${work}/kernel/lib/modules")
[ -n "$release" ] && [ -f "${work}/kernel/boot/vmlinuz-${release}" ] || die "the package holds no kernel image"
depmod -b "${work}/kernel" "$release"

root="${work}/initramfs"
mkdir -p "${root}/bin" "${root}/modules" "${root}/proc" "${root}/sys" "${root}/dev"
cp "$busybox" "${root}/bin/busybox"
cp test/kernel/guest-init.sh "${root}/init"
chmod 0755 "${root}/init" "${root}/bin/busybox"
# modprobe --show-depends lists `insmod <path>` lines in load order, dependencies first; a module may appear under
# several requested ones, so keep the first occurrence only.
: >"${root}/modules/load-order"
for module in "${MODULES[@]}"; do
  modprobe -d "${work}/kernel" -S "$release" --show-depends "$module" | awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' | while read -r path; do
  name=$(basename "$path")
  cp "$path" "${root}/modules/${name}"
  echo "$name" >>"${root}/modules/load-order"
done
[ -s "${root}/modules/load-order" ] || die "no modules resolved"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"${work}/initramfs.img"

# QEMU boots an uncompressed ELF vmlinux through its PVH entry point, skipping the xz decompression that takes a
# TCG guest ~10 s of every boot (measured: 18 s to userspace with the bzImage, 9 s with the ELF). The bzImage's
# payload is an xz stream: unpack from the first offset of the xz magic that yields an ELF.
mkdir -p "${work}/out"
for offset in $(LC_ALL=C grep -abo $'\xfd7zXZ\x00' "${work}/kernel/boot/vmlinuz-${release}" | cut -d: -f1); do
  tail -c +$((offset + 1)) "${work}/kernel/boot/vmlinuz-${release}" | xz -dcq >"${work}/out/vmlinux" 2>/dev/null || true
  [ "$(head -c 4 "${work}/out/vmlinux" | od -An -tx1 | tr -d ' ')" = "7f454c46" ] && break
  rm -f "${work}/out/vmlinux"
done
[ -f "${work}/out/vmlinux" ] || die "cannot unpack the kernel image (no xz-compressed ELF in vmlinuz-${release})"
mv "${work}/initramfs.img" "${work}/out/initramfs.img"
cat >"${work}/out/manifest.json" <<JSON
{
  "package": "${KERNEL_PACKAGE}",
  "packageVersion": "${KERNEL_PACKAGE_VERSION}",
  "release": "${release}",
  "hash": "${hash}",
  "modules": [$(sed 's/.*/"&"/' "${root}/modules/load-order" | paste -sd, -)]
}
JSON
# Another worktree may have finished the same build meanwhile: theirs is as good as ours.
mv -T "${work}/out" "$target" 2>/dev/null || [ -f "${target}/manifest.json" ] || die "cannot move the build to ${target}"
echo "prepare-guest-kernel: ${target} ready in $(( $(date +%s) - start ))s"
