/**
 * What a test host's "disk" holds before its first boot, and the script that runs as PID 1 of its fresh
 * namespaces to build its private filesystem view before exec'ing the host's init (systemd or mini-init).
 * Ported from the verified recipe (hosts-up.sh, systemd-seed.sh, host-init.sh).
 */
import { randomUUID } from "node:crypto";
import { mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";

export type InitMode = "systemd" | "mini";

/** The trees a host keeps on its own persistent disk (overlay upper dirs over the real machine's). */
export const DISK_TREES = ["etc", "opt", "var", "root", "usr", "home", "srv"] as const;

/**
 * Units a containerised systemd must not start: they touch the shared kernel, devices or the real
 * machine's services (Ceph and others run by the tests themselves, not by the hosts' boot).
 */
const MASKED_UNITS = [
  "ceph.target ceph-mon.target ceph-mgr.target ceph-osd.target ceph-crash.service rbdmap.service",
  "etcd.service postgresql.service smartmontools.service e2scrub_reap.service",
  "nvmefc-boot-connections.service nvmf-autoconnect.service",
  "getty.target getty@tty1.service getty-static.service console-getty.service serial-getty@.service",
  "container-getty@.service dm-event.socket systemd-journald-audit.socket",
  "blk-availability.service lvm2-lvmpolld.socket lvm2-monitor.service systemd-pstore.service",
  "systemd-timesyncd.service dev-hugepages.mount proc-sys-fs-binfmt_misc.automount",
  "sys-fs-fuse-connections.mount sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount",
  "kmod-static-nodes.service systemd-binfmt.service systemd-modules-load.service systemd-sysctl.service",
  "systemd-firstboot.service systemd-repart.service systemd-pcrphase.service",
  "systemd-pcrphase-sysinit.service systemd-tmpfiles-setup-dev.service systemd-udevd.service",
  "systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-udev-trigger.service",
  "systemd-udev-settle.service systemd-remount-fs.service systemd-fsck-root.service",
  "systemd-hwdb-update.service systemd-random-seed.service apt-daily.timer apt-daily-upgrade.timer",
  "dpkg-db-backup.timer e2scrub_all.timer fstrim.timer man-db.timer",
]
  .join(" ")
  .split(" ");

export interface SeedSpec {
  /** The host's folder: its disk is `upper/` + `work/`. */
  readonly hostDir: string;
  readonly name: string;
  readonly init: InitMode;
  /** Every host's name and address, for /etc/hosts. */
  readonly peers: readonly { name: string; ip: string }[];
}

/** Writes the host's identity (hostname, fresh machine-id, /etc/hosts) and, for systemd, its unit masks. */
export async function seedDisk(s: SeedSpec): Promise<void> {
  const etc = join(s.hostDir, "upper", "etc");
  await mkdir(etc, { recursive: true });
  await writeFile(join(etc, "hostname"), `${s.name}\n`);
  await writeFile(join(etc, "machine-id"), `${randomUUID().replaceAll("-", "")}\n`);
  const hosts = [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    ...s.peers.map((p) => `${p.ip}\t${p.name}`),
  ];
  await writeFile(join(etc, "hosts"), `${hosts.join("\n")}\n`);
  if (s.init !== "systemd") return;
  const units = join(etc, "systemd", "system");
  await mkdir(units, { recursive: true });
  const link = async (target: string, path: string) => {
    await rm(path, { force: true });
    await symlink(target, path);
  };
  await link("/lib/systemd/system/multi-user.target", join(units, "default.target"));
  for (const u of MASKED_UNITS) await link("/dev/null", join(units, u));
  const journald = join(etc, "systemd", "journald.conf.d");
  await mkdir(journald, { recursive: true });
  await writeFile(join(journald, "ztest.conf"), "[Journal]\nReadKMsg=no\nStorage=persistent\n");
}

/**
 * PID 1 of a fresh pid+mount+uts+ipc+cgroup namespace (already inside the host's netns) runs this with
 * `sh -c INIT_SCRIPT init NAME HOSTDIR INIT MINI_INIT`: private overlays for the disk trees, a fresh
 * /run /tmp /dev/shm, its own /proc and boot id, read-only kernel-global sysctls, a cgroup2 mount rooted at
 * the host's cgroup, its hostname; then exec of the init.
 */
export const INIT_SCRIPT = `set -eu
name=$1; H=$2; init=$3; mini=$4
umount -l /run/netns 2>/dev/null || true   # drop references to other hosts' netns held by the copied mount
for d in ${DISK_TREES.join(" ")}; do
  mkdir -p "$H/upper/$d" "$H/work/$d"
  mount -t overlay "ovl-$name-$d" -o "lowerdir=/$d,upperdir=$H/upper/$d,workdir=$H/work/$d" "/$d"
done
mount -t tmpfs -o mode=755,size=256m "run-$name" /run
cp "$mini" /run/mini-init.py
umount -l /proc; mount -t proc proc /proc
mount --bind /proc/sys /proc/sys; mount -o remount,bind,ro /proc/sys
mount --bind /proc/sys/net /proc/sys/net; mount -o remount,bind,rw /proc/sys/net
cat /proc/sys/kernel/random/uuid > /run/.boot_id
mount --bind /run/.boot_id /proc/sys/kernel/random/boot_id
if [ -e /proc/sysrq-trigger ]; then
  mount --bind /proc/sysrq-trigger /proc/sysrq-trigger; mount -o remount,bind,ro /proc/sysrq-trigger
fi
mount -t tmpfs -o mode=1777,size=256m "shm-$name" /dev/shm
touch "$H/console.log"; mount --bind "$H/console.log" /dev/console   # never the real console
umount -l /sys
if [ "$init" = systemd ]; then mount -t sysfs -o ro sysfs /sys; else mount -t sysfs sysfs /sys; fi
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs -o mode=1777,size=1g "tmp-$name" /tmp   # also hides the harness state (under /tmp)
hostname "$name"
cd /
if [ "$init" = systemd ]; then
  exec env -i container=ztest TERM=dumb PATH=/usr/sbin:/usr/bin:/sbin:/bin /lib/systemd/systemd --show-status=0
fi
exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /usr/bin/python3 /run/mini-init.py
`;
