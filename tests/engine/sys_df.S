/* #DF: a #PF whose gate is not present (#NP, contributory) becomes a
 * double fault, delivered on IST1 with error code 0. */
#include "guest.inc"
    .code64
    .globl _start
_start:
    SET_GATE 8, df_handler, 1
    SET_GATE 14, pf_handler
    andb $0x7f, IDT + 14 * 16 + 5   /* #PF gate not present */
    mov $PTE(SCRATCH), %rbx
    andq $~1, (%rbx)
    invlpg SCRATCH
    mov SCRATCH, %rax                /* #PF -> #NP -> #DF */
    FAIL 1
df_handler:
    lea 6*8(%rsp), %rax
    cmp $IST1_TOP, %rax
    CHECK_EQ 2
    cmpq $0, (%rsp)                  /* error code 0 */
    CHECK_EQ 3
    mov %cr2, %rax
    cmp $SCRATCH, %rax
    CHECK_EQ 4
    PASS
pf_handler:
    FAIL 5
