/* Blocks entered straight from their predecessor (chaining; in host code
 * with the translator on): a loop of blocks in one page joined by a direct
 * JMP, a CALL and fused compare-and-branches; a chained block changed by
 * a store (self-modifying code) after it was linked; the same virtual
 * page remapped to other code (PTE change + INVLPG) after its blocks were
 * linked; and an interrupt arriving while a chained loop runs (the
 * harness stops the guest by an instruction limit inside the loop, then
 * signals vector 0x40): it must be taken inside the loop, not after;
 * and one signalled by another thread while a chained loop spins until
 * it arrives; direct CALL and JMP to another page and back. */
#include "guest.inc"
#define WINDOW 0x300000             /* the remapped virtual page */
#define PAGE1  0x310000
#define PAGE2  0x311000
    .code64
    .globl _start
_start:
    SET_GATE 0x40, irq_handler
    /* 1: a loop of chained blocks: sum of 3 * k + 1 for k = 0..99 */
    xor %eax, %eax
    xor %ecx, %ecx
    .balign 64
1:  lea (%rcx,%rcx,2), %rdx
    call add_one
    add %rdx, %rax
    jmp 2f
    nop
2:  add $1, %rcx
    cmp $100, %rcx
    jne 1b
    cmp $14950, %rax
    CHECK_EQ 1
    /* 2: a linked block changed by a store: the first two passes add 1;
     * the second one's store (from another block) changes it while the
     * branch back is linked to it; the third pass must add 5 */
    xor %ebx, %ebx
    mov $3, %ecx
    jmp 3f
    .balign 256
3:  mov $1, %eax
    add %eax, %ebx
    jmp 4f
    .balign 256
4:  cmp $2, %ecx
    jne 5f
    movb $5, 3b + 1(%rip)
    jmp 5f
    .balign 256
5:  sub $1, %ecx
    jne 3b
    cmp $7, %ebx
    CHECK_EQ 2
    /* 3: the same virtual page, other code: copy one routine to two
     * physical pages with different immediates, run it through WINDOW
     * mapped to each in turn */
    lea routine(%rip), %rsi
    mov $PAGE1, %rdi
    mov $routine_end - routine, %ecx
    rep movsb
    lea routine(%rip), %rsi
    mov $PAGE2, %rdi
    mov $routine_end - routine, %ecx
    rep movsb
    movb $7, PAGE2 + routine_imm - routine + 2
    mov $PAGE1 | 7, %rax
    mov %rax, PTE(WINDOW)
    invlpg WINDOW
    mov $WINDOW, %r8
    call *%r8                       /* 4 * 3 */
    cmp $12, %eax
    CHECK_EQ 3
    call *%r8
    cmp $12, %eax
    CHECK_EQ 4
    mov $PAGE2 | 7, %rax
    mov %rax, PTE(WINDOW)
    invlpg WINDOW
    call *%r8                       /* 7 * 3 */
    cmp $21, %eax
    CHECK_EQ 5
    /* 4: an interrupt while a chained loop runs */
    movq $0, irq_count(%rip)
    movq $-1, irq_rcx(%rip)
    mov $2000000, %ecx
    xor %eax, %eax
    sti
    .balign 64
5:  add $3, %rax
    jmp 6f
    .balign 64
6:  sub $1, %rcx
    jne 5b
    cli
    cmp $6000000, %rax
    CHECK_EQ 10
    cmpq $1, irq_count(%rip)
    CHECK_EQ 11
    mov irq_rcx(%rip), %rax
    mov %rax, RES_VAL
    cmp $0, %rax                   /* taken inside the loop */
    je 12f
    cmp $2000000, %rax
    jb 13f
12: FAIL 12
13:
    /* 5: spin in chained blocks until another thread's interrupt */
    movq $0, irq_count(%rip)
    movl $1, RES_VAL + 8            /* the harness's thread waits for this */
    xor %eax, %eax
    mov $1 << 40, %rcx
    sti
    .balign 64
9:  add $3, %rax
    jmp 10f
    .balign 64
10: cmpq $0, irq_count(%rip)
    jne 11f
    sub $1, %rcx
    jne 9b
11: cli
    cmpq $1, irq_count(%rip)
    CHECK_EQ 13
    /* 6: direct CALL and JMP to another page and back (the jump cache) */
    xor %eax, %eax
    mov $50, %ecx
14: call far_add
    jmp far_jmp
15: sub $1, %ecx
    jne 14b
    cmp $150, %eax
    CHECK_EQ 14
    PASS

add_one:
    add $1, %rax
    ret

irq_handler:
    incq irq_count(%rip)
    mov %rcx, irq_rcx(%rip)
    iretq

    .balign 64
routine:
    mov $4, %edx
    xor %eax, %eax
    mov $3, %ecx
1:
routine_imm:
    add $0x04, %eax                 /* patched: add $7 (83 c0 ib) */
    sub $1, %ecx
    jne 1b
    ret
routine_end:

    .balign 4096
far_add:
    add $1, %eax
    ret
far_jmp:
    add $2, %eax
    jmp 15b

    .balign 8
irq_count: .quad 0
irq_rcx: .quad 0
