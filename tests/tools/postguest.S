/* postguest: port writes a VMM may deliver late (ember's posted writes,
 * KVM's coalesced PIO) must still come in order, before the read that
 * could see them, and must get out even when the guest never exits again.
 * A PVH ELF (32-bit protected mode, paging off, no stack). It prints, each
 * byte after polling LSR as Linux's console does:
 *   <post>         it runs
 *   dll ok         COM1's divisor latch written (a THR-port write) and read back
 *   cmos ok        CMOS byte 0x20 written, 0x21 written, 0x20 read back
 *                  (every index write to port 0x70 is a posted one)
 *   pci ok         two CONFIG_ADDRESS writes back to back, then CONFIG_DATA
 *                  gives the second one's register (the host bridge's IDs)
 * (or "... BAD"), then "<tail>" written without a single read, and halts
 * with interrupts off: no exit ever follows, so only the VMM's own flush
 * can get that line out. A test program; not part of ember. */

#define COM1 0x3f8
#define LCR 0x3fb
#define LSR 0x3fd
#define HOST_BRIDGE_IDS 0x00081b36 /* device 0x0008, vendor 0x1b36 */

#include "pvh_entry.h"
_start:
    mov $hello, %esi
    mov $divisor, %edi
    jmp puts

divisor:
    mov $LCR, %dx
    mov $0x80, %al              /* DLAB */
    out %al, %dx
    mov $COM1, %dx
    mov $0x5a, %al              /* DLL */
    out %al, %dx
    in %dx, %al
    mov %al, %bl
    mov $LCR, %dx
    mov $0x03, %al              /* 8N1, DLAB off */
    out %al, %dx
    mov $dll_ok, %esi
    cmp $0x5a, %bl
    je 1f
    mov $dll_bad, %esi
1:  mov $cmos, %edi
    jmp puts

cmos:
    mov $0x20, %ah
    mov $0xa5, %bl
cmos_write:
    mov $0x70, %dx
    mov %ah, %al
    out %al, %dx
    mov $0x71, %dx
    mov %bl, %al
    out %al, %dx
    cmp $0x21, %ah              /* second pass done? */
    je 2f
    mov $0x21, %ah
    mov $0x3c, %bl
    jmp cmos_write
2:  mov $0x70, %dx
    mov $0x20, %al
    out %al, %dx
    mov $0x71, %dx
    in %dx, %al
    mov $cmos_ok, %esi
    cmp $0xa5, %al
    je 3f
    mov $cmos_bad, %esi
3:  mov $pci, %edi
    jmp puts

pci:
    mov $0xcf8, %dx
    mov $0x80000008, %eax       /* bus 0, device 0: class and revision */
    out %eax, %dx
    mov $0x80000000, %eax       /* ... then its IDs */
    out %eax, %dx
    mov $0xcfc, %dx
    in %dx, %eax
    mov $pci_ok, %esi
    cmp $HOST_BRIDGE_IDS, %eax
    je 4f
    mov $pci_bad, %esi
4:  mov $tail_blind, %edi
    jmp puts

tail_blind:                     /* no read from here on: no exit */
    mov $tail, %esi
    mov $COM1, %dx
5:  lodsb
    test %al, %al
    jz 6f
    out %al, %dx
    jmp 5b
6:  cli
    hlt
    jmp 6b

/* Print the NUL-terminated string at %esi on COM1, waiting for LSR's THRE
 * before each byte, then jump to %edi. */
puts:
    lodsb
    test %al, %al
    jz 8f
    mov %al, %ah
    mov $LSR, %dx
7:  in %dx, %al
    test $0x20, %al
    jz 7b
    mov $COM1, %dx
    mov %ah, %al
    out %al, %dx
    jmp puts
8:  jmp *%edi

    .data
hello:    .asciz "<post>\n"
dll_ok:   .asciz "dll ok\n"
dll_bad:  .asciz "dll BAD\n"
cmos_ok:  .asciz "cmos ok\n"
cmos_bad: .asciz "cmos BAD\n"
pci_ok:   .asciz "pci ok\n"
pci_bad:  .asciz "pci BAD\n"
tail:     .asciz "<tail>\n"
