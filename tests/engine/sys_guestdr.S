/* The guest's own debug registers: a write breakpoint (DR0, 4 bytes) that a
 * read passes and an overlapping write hits (a trap: RIP after the store),
 * an instruction breakpoint (DR1: a fault at the instruction; the handler
 * sets RF in the frame, the instruction then runs once, and the next call
 * faults again), a read-write breakpoint (DR2, 8 bytes, address low bits
 * ignored) that a read hits, DR6 saying which each time; then DR7 cleared:
 * nothing fires. */
#include "guest.inc"
    .code64
    .globl _start
_start:
    SET_GATE 1, db_handler
    lea watched(%rip), %rax
    mov %rax, %dr0
    lea bp_here(%rip), %rax
    mov %rax, %dr1
    lea rwvar + 5(%rip), %rax           /* low bits ignored: rwvar's 8 bytes */
    mov %rax, %dr2
    /* L0 L1 L2; RW0 01 LEN0 11 (4); RW1 00 LEN1 00; RW2 11 LEN2 10 (8) */
    mov $(0x15 | (1 << 16) | (3 << 18) | (3 << 24) | (2 << 26)), %rax
    mov %rax, %dr7
    movl watched(%rip), %ecx            /* a read: a write breakpoint lets it be */
    cmpl $0, db_count(%rip)
    CHECK_EQ 1
    movl $5, watched + 2(%rip)          /* bytes 2-5: two of them watched */
after_write:
    cmpl $1, db_count(%rip)
    CHECK_EQ 2
    lea after_write(%rip), %rax
    cmp %rax, last_rip(%rip)
    CHECK_EQ 3
    mov last_dr6(%rip), %rax
    and $0xf, %eax
    cmp $1, %eax
    CHECK_EQ 4
    call bp_here                        /* a fault, then the call goes on */
    cmpl $2, db_count(%rip)
    CHECK_EQ 5
    cmpl $1, bp_runs(%rip)
    CHECK_EQ 6
    lea bp_here(%rip), %rax
    cmp %rax, last_rip(%rip)
    CHECK_EQ 7
    mov last_dr6(%rip), %rax
    and $0xf, %eax
    cmp $2, %eax
    CHECK_EQ 8
    call bp_here                        /* RF cleared since: it faults again */
    cmpl $3, db_count(%rip)
    CHECK_EQ 9
    cmpl $2, bp_runs(%rip)
    CHECK_EQ 10
    mov rwvar + 6(%rip), %cl            /* a read-write breakpoint: a read hits */
after_read:
    cmpl $4, db_count(%rip)
    CHECK_EQ 11
    lea after_read(%rip), %rax
    cmp %rax, last_rip(%rip)
    CHECK_EQ 12
    mov last_dr6(%rip), %rax
    and $0xf, %eax
    cmp $4, %eax
    CHECK_EQ 13
    xor %eax, %eax
    mov %rax, %dr7                      /* all off */
    movl $7, watched(%rip)
    call bp_here
    mov rwvar(%rip), %rcx
    cmpl $4, db_count(%rip)
    CHECK_EQ 14
    cmpl $3, bp_runs(%rip)
    CHECK_EQ 15
    /* A MOV SS that reads a watched word holds its #DB over the next
     * instruction: after a NOP; inside the handler an INT3 enters; dropped
     * when the next instruction faults. */
    SET_GATE 3, bp_handler
    SET_GATE 6, ud_handler
    lea ssval(%rip), %rax
    mov %rax, %dr2
    mov $(0x10 | (3 << 24) | (2 << 26)), %rax /* L2, RW2 11, LEN2 10 (8) */
    mov %rax, %dr7
    mov ssval(%rip), %ss
    nop
after_nop:
    cmpl $5, db_count(%rip)
    CHECK_EQ 16
    lea after_nop(%rip), %rax
    cmp %rax, last_rip(%rip)
    CHECK_EQ 17
    mov ssval(%rip), %ss
    int3
    cmpl $6, db_count(%rip)
    CHECK_EQ 18
    lea bp_handler(%rip), %rax          /* the #DB came at the handler's first instruction */
    cmp %rax, last_rip(%rip)
    CHECK_EQ 19
    cmpl $1, int3_count(%rip)
    CHECK_EQ 20
    mov ssval(%rip), %ss
    ud2
    cmpl $6, db_count(%rip)             /* a fault drops it */
    CHECK_EQ 21
    cmpl $1, ud_count(%rip)
    CHECK_EQ 22
    xor %eax, %eax
    mov %rax, %dr7
    PASS

bp_handler:
    incl int3_count(%rip)
    iretq

ud_handler:
    incl ud_count(%rip)
    addq $2, (%rsp)
    iretq

bp_here:
    incl bp_runs(%rip)
    ret

db_handler:
    push %rax
    incl db_count(%rip)
    mov 8(%rsp), %rax
    mov %rax, last_rip(%rip)
    mov %dr6, %rax
    mov %rax, last_dr6(%rip)
    test $2, %eax                       /* the instruction breakpoint: go on past it */
    jz 1f
    orq $0x10000, 24(%rsp)              /* RF in the frame's RFLAGS */
1:  xor %eax, %eax
    mov %rax, %dr6
    pop %rax
    iretq

    .data
    .balign 8
db_count: .long 0
bp_runs: .long 0
last_rip: .quad 0
last_dr6: .quad 0
    .balign 8
watched: .quad 0
    .balign 8
rwvar: .quad 0x1122334455667788
ssval: .quad KDS
int3_count: .long 0
ud_count: .long 0
