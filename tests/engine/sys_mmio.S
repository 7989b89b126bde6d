/* MMIO through cpu_ops.mmio: a claimed device at 0xd0000000 (the harness
 * stores writes and answers reads), unclaimed space reads all-ones, a
 * read-modify-write, and an access split across two pages. The harness
 * checks the callback log. */
#include "guest.inc"
    .code64
    .globl _start
_start:
    /* VA 1 GiB -> PA 0xd0000000 with a 2 MiB page */
    mov %cr3, %rax
    and $~0xfff, %rax
    mov (%rax), %rbx
    and $~0xfff, %rbx
    movq $(0x300000 | 3), 8(%rbx)
    mov $(0xd0000000 | 0x83), %eax
    mov %rax, 0x300000
    mov $(0xe0000000 | 0x83), %eax       /* VA 1 GiB + 2 MiB -> unclaimed */
    mov %rax, 0x300008
    mov %cr3, %rax
    mov %rax, %cr3
    movl $0x12345678, 0x40000010         /* write 4 @ 0xd0000010 */
    mov 0x40000010, %eax                 /* read 4 */
    cmp $0x12345678, %eax
    CHECK_EQ 1
    addl $1, 0x40000010                  /* RMW: read 4, write 4 */
    mov 0x40000010, %eax
    cmp $0x12345679, %eax
    CHECK_EQ 2
    mov 0x40200000, %rax                 /* unclaimed: all ones */
    cmp $-1, %rax
    CHECK_EQ 3
    movq $0x1122334455667788, %rax
    mov %rax, 0x40000ffc                 /* split: 4 @ 0xd0000ffc, 4 @ 0xd0001000 */
    mov 0x40000ffc, %rbx
    cmp %rax, %rbx
    CHECK_EQ 4
    PASS
