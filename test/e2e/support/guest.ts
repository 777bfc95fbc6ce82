/**
 * A tiny MN-VM stand-in for TCG guests: a raw disk whose boot sector (x86 real mode) prints
 * `zsha-guest tick N` with an increasing N to COM1 about once a second, sleeping in `hlt` between ticks
 * (so an idle guest costs little CPU under emulation), writes `ZSHA`, a per-boot id and the counter to its
 * disk's second sector every tick (so tests see which incarnation's writes reach the shared image), and
 * powers the machine off through ACPI as soon as it receives any byte on COM1. Tests see it running, and see the counter continue on a migration target.
 * Assembled with binutils' `as`/`ld` at test time.
 */
import { mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "./run.js";

/** A line the guest prints; group 1 is the counter. */
export const GUEST_TICK = /zsha-guest tick (\d+)/g;

const BOOT_S = `
  .code16
  .globl _start
_start:
  cli
  xor %ax, %ax
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %ss
  mov $0x7c00, %sp
  mov %dl, (0x500)                    # the boot drive (BIOS passes it in %dl), for the disk writes
  # COM1: no interrupts, 115200 baud, 8N1
  mov $0x3f9, %dx; xor %al, %al; out %al, %dx
  mov $0x3fb, %dx; mov $0x80, %al; out %al, %dx
  mov $0x3f8, %dx; mov $1, %al; out %al, %dx
  mov $0x3f9, %dx; xor %al, %al; out %al, %dx
  mov $0x3fb, %dx; mov $3, %al; out %al, %dx
  mov $0x8000, %di                    # the sector written each tick: "ZSHA", boot id, counter
  mov $256, %cx
  xor %ax, %ax
  rep stosw
  movl $0x4148535a, (0x8000)
  rdtsc                               # this boot's id: tells incarnations apart on the shared disk
  mov %eax, (0x8004)
  xor %ebp, %ebp                      # the counter
tick:
  mov $msg, %si
  call puts
  mov %ebp, %eax
  call putdec
  mov $crlf, %si
  call puts
  inc %ebp
  mov %ebp, (0x600)                   # keep a dirty page for migration to copy
  mov %ebp, (0x8008)
  mov $0x0301, %ax                    # BIOS disk write, 1 sector from 0:0x8000 to LBA 1 (C0 H0 S2)
  mov $0x0002, %cx
  xor %dh, %dh
  mov (0x500), %dl
  mov $0x8000, %bx
  int $0x13
  # about one second: 18 BIOS timer ticks (the IRQ0 handler counts at 0x46c), asleep in hlt meanwhile
  mov (0x46c), %ebx
  add $18, %ebx
wait:
  mov $0x3fd, %dx                     # any byte received on COM1: power off
  in %dx, %al
  test $1, %al
  jnz poweroff
  sti
  hlt
  cli
  mov (0x46c), %eax
  cmp %ebx, %eax
  jb wait
  jmp tick
poweroff:
  mov $0x604, %dx                     # ACPI PM1a control (QEMU with SeaBIOS): SLP_EN, S5
  mov $0x2000, %ax
  out %ax, %dx
  mov $0xb004, %dx                    # older QEMU/Bochs
  out %ax, %dx
  cli
halt:
  hlt
  jmp halt

puts:                                 # print the NUL-terminated string at %si
  lodsb
  test %al, %al
  jz 1f
  call putc
  jmp puts
1: ret

putc:                                 # print %al once the transmitter is empty
  push %ax
  mov $0x3fd, %dx
2: in %dx, %al
  test $0x20, %al
  jz 2b
  pop %ax
  mov $0x3f8, %dx
  out %al, %dx
  ret

putdec:                               # print %eax in decimal
  mov $10, %ecx
  xor %di, %di
3: xor %edx, %edx
  div %ecx
  push %dx
  inc %di
  test %eax, %eax
  jnz 3b
4: pop %ax
  add $'0', %al
  call putc
  dec %di
  jnz 4b
  ret

msg: .asciz "zsha-guest tick "
crlf: .asciz "\\r\\n"
  .org 510
  .word 0xaa55
`;

/** Writes the guest's raw disk (`sizeMiB`, default 4) to `path`. */
export async function buildGuestImage(path: string, sizeMiB = 4): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "zsha-guest-"));
  try {
    await writeFile(join(work, "boot.S"), BOOT_S);
    await run(["as", "--32", "-o", join(work, "boot.o"), join(work, "boot.S")]);
    await run([
      "ld",
      "-m",
      "elf_i386",
      "-Ttext=0x7c00",
      "--oformat=binary",
      "-o",
      join(work, "boot.bin"),
      join(work, "boot.o"),
    ]);
    const sector = await readFile(join(work, "boot.bin"));
    if (sector.length !== 512) throw new Error(`guest: boot sector is ${sector.length} bytes, not 512`);
    const f = await open(path, "w");
    try {
      await f.write(sector, 0, 512, 0);
      await f.truncate(sizeMiB * 1024 * 1024);
    } finally {
      await f.close();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export interface GuestDomain {
  readonly name: string;
  /** RBD image as `pool/image`. */
  readonly rbd: string;
  /** Monitor `ip:port`. */
  readonly monAddr: string;
  /** Ceph client id and the libvirt secret (usage ceph) holding its key. */
  readonly cephUser: string;
  readonly secretUuid: string;
  /** File on the host the guest's COM1 output is appended to. */
  readonly serialLog: string;
  readonly memoryMiB?: number;
}

/** Domain XML for the tiny guest under software emulation, booting from its RBD disk. */
export function guestDomainXml(g: GuestDomain): string {
  const [host, port] = g.monAddr.split(":");
  return `<domain type='qemu'>
  <name>${g.name}</name>
  <memory unit='MiB'>${g.memoryMiB ?? 32}</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <auth username='${g.cephUser}'><secret type='ceph' uuid='${g.secretUuid}'/></auth>
      <source protocol='rbd' name='${g.rbd}'><host name='${host}' port='${port}'/></source>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'><source path='${g.serialLog}' append='on'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

/** What the guest last wrote to its disk's second sector (LBA 1), or undefined when it never wrote. */
export function parseGuestSector(sector: Buffer): { bootId: number; tick: number } | undefined {
  if (sector.length < 12 || sector.toString("latin1", 0, 4) !== "ZSHA") return undefined;
  return { bootId: sector.readUInt32LE(4), tick: sector.readUInt32LE(8) };
}
