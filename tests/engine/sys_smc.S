/* Self-modifying code: a store into the next instruction of the same block,
 * a loop body rewritten while it runs, code rewritten through a second
 * virtual alias of its physical page, (with the harness) code changed
 * by a "device" write between two runs (cpu_notify_write), and a block
 * that five others jump to directly (their host code linked to it, one
 * link replaced) rewritten: every one of them then runs the new code. */
#include "guest.inc"
    .code64
    .globl _start
_start:
    SET_GATE 2, nmi_handler
    /* 1: the next instruction */
    movb $5, patch1 + 1(%rip)
patch1:
    mov $1, %eax
    cmp $5, %eax
    CHECK_EQ 1
    /* 2: a loop that rewrites its own body: the immediate counts up */
    xor %ebx, %ebx
    mov $3, %ecx
loop2:
patch2:
    add $0, %ebx
    incb patch2 + 2(%rip)
    loop loop2
    cmp $(0 + 1 + 2), %ebx
    CHECK_EQ 2
    /* 3: an alias: VA 1 GiB -> code page 0x220000 (execute), VA 1 GiB + 4K ->
     * the same page (write) */
    mov %cr3, %rax
    and $~0xfff, %rax
    mov (%rax), %rbx
    and $~0xfff, %rbx
    movq $(0x300000 | 3), 8(%rbx)    /* PDPT[1] -> PD 0x300000 */
    movq $(0x301000 | 3), 0x300000   /* PD[0] -> PT 0x301000 */
    movq $(0x220000 | 3), 0x301000   /* PT[0]: exec view */
    movq $(0x220000 | 3), 0x301008   /* PT[1]: write view */
    mov %cr3, %rax
    mov %rax, %cr3
    /* func: mov $1, %eax; ret */
    movb $0xb8, 0x220000
    movl $1, 0x220001
    movb $0xc3, 0x220005
    mov $0x40000000, %rax
    call *%rax
    cmp $1, %eax
    CHECK_EQ 3
    movl $7, 0x40001001              /* through the alias */
    mov $0x40000000, %rax
    call *%rax
    cmp $7, %eax
    CHECK_EQ 4
    /* 4: the harness rewrites func (a device write) while we are halted */
    mov $0x40000000, %rax
    call *%rax
    mov %eax, RES_VAL
    cli
    hlt                              /* harness: write 9, notify, NMI */
    mov $0x40000000, %rax
    call *%rax
    cmp $9, %eax
    CHECK_EQ 5
    /* 6: five stubs at 0x40000100 + 8k (k = 0..4), each 'jmp target';
     * target at 0x40000200: mov $imm, %eax; ret */
    mov $0x220100, %rdi
    mov $5, %ecx
1:  movb $0xe9, (%rdi)               /* jmp rel32 */
    lea 5(%rdi), %rax
    mov $0x220200, %edx
    sub %eax, %edx
    mov %edx, 1(%rdi)
    add $8, %rdi
    loop 1b
    movb $0xb8, 0x220200
    movl $11, 0x220201
    movb $0xc3, 0x220205
    mov $4, %r12d                    /* rounds: unlinked, linked, direct */
2:  call call_stubs
    cmp $(5 * 11), %ebx
    CHECK_EQ 6
    dec %r12d
    jnz 2b
    movl $13, 0x220201               /* the target rewritten */
    call call_stubs
    cmp $(5 * 13), %ebx
    CHECK_EQ 7
    call call_stubs                  /* and linked again */
    call call_stubs
    cmp $(5 * 13), %ebx
    CHECK_EQ 8
    PASS
/* ebx = the sum of what the five stubs return */
call_stubs:
    xor %ebx, %ebx
    mov $0x40000100, %rsi
    mov $5, %ecx
3:  push %rcx
    push %rsi
    call *%rsi
    pop %rsi
    pop %rcx
    add %eax, %ebx
    add $8, %rsi
    loop 3b
    ret
nmi_handler:
    iretq
