/* An access that crosses from one page into the next whose soft-TLB slot is
 * the first page's own (pages 0x7ffff and 0x80000 shared slot 0x200 under
 * the engine's former index hash): the access must still be split between
 * the two pages' own frames. The two pages map to frames 2 MiB apart, so
 * writing the four bytes through the second page's frame alone (the bug
 * the fuzzer found) lands two of them in the frame below it. */
#include "guest.inc"
#define PD_LOW  0x20000     /* VA 1-2 GiB: its last 2 MiB page -> GPA 0x200000 */
#define PD_HIGH 0x21000     /* VA 2-3 GiB: its first 2 MiB page -> GPA 0x600000 */
#define PDPT    0x2000      /* the harness's */
    .code64
    .globl _start
_start:
    mov $PD_LOW, %rdi
    mov $1024, %ecx
    xor %eax, %eax
    rep stosq                               /* both directories empty */
    movq $(0x200000 | 0x87), PD_LOW + 511 * 8
    movq $(0x600000 | 0x87), PD_HIGH
    movq $(PD_LOW | 7), PDPT + 8
    movq $(PD_HIGH | 7), PDPT + 16
    mov %cr3, %rax
    mov %rax, %cr3
    movq $0, 0x3ffff8
    movq $0, 0x5ffff8
    movq $0, 0x600000

    mov $0x80000000, %rbx
    movq $0x55, (%rbx)                      /* the slot now holds page 0x80000 */
    movl $0x11223344, 0x7ffffffe            /* crosses 0x7ffff -> 0x80000 */
    cmpw $0x3344, 0x3ffffe                  /* the low half in page 0x7ffff's frame */
    CHECK_EQ 1
    cmpw $0x1122, 0x600000
    CHECK_EQ 2
    cmpq $0, 0x5ffff8                       /* nothing below page 0x80000's frame */
    CHECK_EQ 3
    movq $0x66, (%rbx)
    mov 0x7ffffffe, %eax                    /* a crossing read, the same way */
    cmp $0x00663344, %eax
    CHECK_EQ 4
    movq $0x77, (%rbx)
    mov $0x7ffffff0, %rdi                   /* a crossing REP STOSD */
    mov $8, %ecx
    mov $0xabcdabcd, %eax
    rep stosl
    cmpl $0xabcdabcd, 0x3ffffc
    CHECK_EQ 5
    cmpl $0xabcdabcd, 0x60000c
    CHECK_EQ 6
    cmpq $0, 0x5ffff8
    CHECK_EQ 7
    PASS
