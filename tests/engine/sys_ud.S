/* Exceptions reach the guest's handlers with the right RIP: #UD for UD2,
 * an opcode invalid in 64-bit mode, LOCK on a register form, a VEX prefix
 * (no AVX offered), INTO; #DE for DIV by zero (RIP at the DIV); #BP from
 * INT3 (RIP after it). */
#include "guest.inc"
    .code64
    .globl _start
_start:
    SET_GATE 6, ud_handler
    SET_GATE 0, de_handler
    SET_GATE 3, bp_handler, 0, 3

    .macro EXPECT_UD n, bytes:vararg
    lea 8f(%rip), %rax
    mov %rax, expect(%rip)
    lea 9f(%rip), %rax
    mov %rax, resume(%rip)
8:  .byte \bytes
9:  cmpq $\n, ud_count(%rip)
    CHECK_EQ \n
    .endm

    EXPECT_UD 1, 0x0f, 0x0b                 /* ud2 */
    EXPECT_UD 2, 0x06                       /* push es: invalid in 64-bit mode */
    EXPECT_UD 3, 0xf0, 0x01, 0xc0           /* lock add eax, eax */
    EXPECT_UD 4, 0xc5, 0xf8, 0x77           /* vzeroupper */
    EXPECT_UD 5, 0xce                       /* into */
    EXPECT_UD 6, 0x0f, 0xff, 0xc0           /* ud0 */
    EXPECT_UD 7, 0x8e, 0xc8                 /* mov cs, eax */

    /* #DE at the DIV */
    lea 8f(%rip), %rax
    mov %rax, expect(%rip)
    lea 9f(%rip), %rax
    mov %rax, resume(%rip)
    xor %ecx, %ecx
    mov $5, %eax
    xor %edx, %edx
8:  div %ecx
9:  cmpq $1, de_count(%rip)
    CHECK_EQ 20
    /* #BP: RIP after INT3 */
    int3
bp_after:
    cmpq $1, bp_count(%rip)
    CHECK_EQ 30
    PASS

ud_handler:
    mov expect(%rip), %rax
    cmp %rax, (%rsp)
    CHECK_EQ 40
    incq ud_count(%rip)
    mov resume(%rip), %rax
    mov %rax, (%rsp)
    iretq
de_handler:
    mov expect(%rip), %rax
    cmp %rax, (%rsp)
    CHECK_EQ 41
    incq de_count(%rip)
    mov resume(%rip), %rax
    mov %rax, (%rsp)
    iretq
bp_handler:
    lea bp_after(%rip), %rax
    cmp %rax, (%rsp)
    CHECK_EQ 42
    incq bp_count(%rip)
    iretq

    .data
expect: .quad 0
resume: .quad 0
ud_count: .quad 0
de_count: .quad 0
bp_count: .quad 0
