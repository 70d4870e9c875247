#!/bin/busybox sh
# PID 1 of the test guest (packed into the initramfs by scripts/prepare-guest-kernel.sh). It loads the modules the
# tests need, makes the host's root file system (shared read-only over 9p) the guest's root under a tmpfs overlay —
# so node, the project's dist/, mkfs.xfs, xfs_quota and lvm are the host's own, at the same paths — runs the job the
# host put in the `job` share, writes its exit code there and powers off. Whatever happens, the machine ends: a
# failure here ends PID 1, the kernel panics, and `panic=-1` with QEMU's -no-reboot turns that into QEMU's exit.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

fail() {
  echo "wsd-guest: $*" >/dev/console
  poweroff -f
}

# Dependency order, computed on the host with modprobe --show-depends. A module the CPU cannot use (crc32c-intel
# without SSE 4.2) fails to load and its generic fallback serves instead.
while read -r module; do
  insmod "/modules/$module" 2>/dev/null || echo "wsd-guest: could not load $module" >/dev/console
done </modules/load-order

mkdir -p /host /job /layers /newroot
# cache=loose: the host root is read-only for the guest and only read during one short run, so page-caching it is
# safe and makes node's many small reads of node_modules fast enough under TCG.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose host /host || fail "cannot mount the host root (9p tag host)"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 job /job || fail "cannot mount the job folder (9p tag job)"
mount -t tmpfs -o mode=0755 layers /layers
mkdir -p /layers/upper /layers/work
mount -t overlay -o lowerdir=/host,upperdir=/layers/upper,workdir=/layers/work overlay /newroot || fail "cannot mount the overlay root"

mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
mkdir -p /newroot/run/wsd-guest /newroot/run/lock
mount --bind /job /newroot/run/wsd-guest
# The project at its own path (it may live below /tmp, which is a fresh tmpfs here), writable through an overlay
# like the root.
if [ -s /job/project-root ]; then
  project=$(cat /job/project-root)
  mkdir -p /layers/project /layers/project-upper /layers/project-work
  mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose project /layers/project || fail "cannot mount the project (9p tag project)"
  mkdir -p "/newroot$project"
  mount -t overlay -o lowerdir=/layers/project,upperdir=/layers/project-upper,workdir=/layers/project-work overlay "/newroot$project" || fail "cannot mount the project overlay"
fi
# No network device, but tests talk to servers they start on 127.0.0.1.
ip link set lo up || fail "cannot bring up the loopback interface"
hostname wsd-guest

echo "wsd-guest: running the job" >/dev/console
chroot /newroot /bin/sh /run/wsd-guest/job.sh </dev/null >/dev/console 2>&1
status=$?
echo "$status" >/job/exit-code.tmp && mv /job/exit-code.tmp /job/exit-code
echo "wsd-guest: job exited with $status" >/dev/console
sync
poweroff -f
