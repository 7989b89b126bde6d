/* Single-stepping (TF) over a REP MOVSB of three bytes: a trap after each
 * element, RIP at the REP for the first two and after it for the last,
 * with RCX counting down; a REP with RCX = 0 traps once, after it. */
#include "guest.inc"
    .code64
    .globl _start
_start:
    SET_GATE 1, db_handler
    lea src(%rip), %rsi
    lea dst(%rip), %rdi
    mov $3, %ecx
    pushf
    orq $0x100, (%rsp)
    popf
    nop                             /* trap 0: RIP at the REP */
rep_at:
    rep movsb                       /* traps 1, 2 at rep_at; 3 after */
after:
    rep stosb                       /* RCX = 0: trap 4 after it */
after2:
    pushf
    andq $~0x100, (%rsp)
    popf
    cmpl $0, ntraps(%rip)
    jne 1f
    FAIL 1
1:  lea rep_at(%rip), %rax
    cmp %rax, log(%rip)
    CHECK_EQ 2
    cmp %rax, log + 8(%rip)
    CHECK_EQ 3
    cmp %rax, log + 16(%rip)
    CHECK_EQ 4
    lea after(%rip), %rax
    cmp %rax, log + 24(%rip)
    CHECK_EQ 5
    lea after2(%rip), %rax
    cmp %rax, log + 32(%rip)
    CHECK_EQ 6
    cmpq $2, rcx_log + 8(%rip)      /* RCX after the first element */
    CHECK_EQ 7
    cmpq $1, rcx_log + 16(%rip)
    CHECK_EQ 8
    cmpq $0, rcx_log + 24(%rip)
    CHECK_EQ 9
    cmpl $0x00332211, dst(%rip)
    CHECK_EQ 10
    PASS

db_handler:                         /* log the frame's RIP and RCX, for the first 8 */
    push %rax
    push %rdx
    mov ntraps(%rip), %eax
    cmp $8, %eax
    jae 1f
    mov 16(%rsp), %rdx
    mov %rdx, log(,%rax,8)
    mov %rcx, rcx_log(,%rax,8)
    incl ntraps(%rip)
1:  pop %rdx
    pop %rax
    iretq

    .data
src: .byte 0x11, 0x22, 0x33, 0x44
dst: .long 0
ntraps: .long 0
    .balign 8
log: .fill 8, 8, 0
rcx_log: .fill 8, 8, 0
