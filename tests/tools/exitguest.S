/* exitguest: the smallest guest there is, for measuring what one VM exit
 * costs in a VMM. An ELF entered through its PVH note (32-bit protected
 * mode, paging off) by ember and by QEMU alike: it prints "<go>" on COM1,
 * writes EXITS times to port 0x80 (an exit each, handled by every VMM and
 * ignored), prints "<end>", then loads an empty IDT and traps, so the vCPU
 * triple-faults and the VMM stops. The time between the two markers over
 * EXITS is the cost of an exit and its round trip through the VMM.
 * A benchmark tool; not part of ember. */
#define EXITS 100000

#include "pvh_entry.h"
_start:
    mov $go, %esi
    mov $after_go, %edi
    jmp puts
after_go:
    mov $EXITS, %ecx
    mov $0x80, %dx
1:  out %al, %dx
    dec %ecx
    jnz 1b
    mov $end, %esi
    mov $after_end, %edi
    jmp puts
after_end:
    lidt empty_idt
    int3                        /* no IDT: #GP, #DF, triple fault */
    hlt

/* Print the NUL-terminated string at %esi on COM1, then jump to %edi
 * (no stack: PVH gives none). */
puts:
    mov $0x3f8, %dx
2:  lodsb
    test %al, %al
    jz 3f
    out %al, %dx
    jmp 2b
3:  jmp *%edi

    .data
go:  .asciz "<go>\n"
end: .asciz "<end>\n"
    .balign 8
empty_idt:
    .word 0
    .long 0
