/* Runs of instructions the translator turns into host code (moves, ALU,
 * LEA, MOVZX/MOVSX, PUSH/POP), checked for what the interpreter gives:
 * a #PF in the middle of a run (RIP at the faulting instruction, the ones
 * before it done, the ones after not), TLB misses inside a run, byte and
 * word registers (AH..BH), flags handed from host code to interpreted
 * instructions (ADC, SETcc, PUSHF), PUSH/POP of RSP, an FS-based load,
 * and a store into the same run two instructions ahead (self-modifying
 * code). The test runs with the translator off and on (tests/run.py). */
#include "guest.inc"
    .code64
    .globl _start
_start:
    SET_GATE 14, pf_handler
    /* 1: #PF in the middle of a run */
    lea 9f(%rip), %rax
    mov %rax, resume(%rip)
    xor %ebx, %ebx
    xor %edx, %edx
    mov $0x800008, %rsi
    mov $1, %ebx
    mov %ebx, %ecx
8:  mov (%rsi), %rdx              /* 8 MiB: not mapped */
    mov $7, %ebx
9:  cmp $1, %ebx
    CHECK_EQ 1
    cmp $0, %rdx
    CHECK_EQ 2
    lea 8b(%rip), %rax
    cmp %rax, pf_rip(%rip)
    CHECK_EQ 3
    cmpq $0x800008, pf_cr2(%rip)
    CHECK_EQ 4
    /* 2: loads and stores that miss the TLB inside a run, then hit */
    mov $SCRATCH + 0x3000, %rdi
    mov $5, %ecx
    xor %eax, %eax
1:  mov %rcx, (%rdi)
    mov (%rdi), %rdx
    add %rdx, %rax
    mov %eax, 0x1000(%rdi)
    movzwl 0x1000(%rdi), %edx
    add %edx, %eax
    lea 8(%rdi,%rcx,2), %rdi
    dec %ecx
    jnz 1b
    cmp $258, %eax               /* each round: (eax + rcx) * 2 */
    CHECK_EQ 10
    /* 3: byte and word registers */
    mov $0x11223344, %eax
    mov $0x55, %ah
    mov $0x66778899, %ebx
    add %ah, %bl                  /* 0x99 + 0x55 = 0xee */
    movzbl %ah, %ecx
    movsbq %bl, %rdx
    mov %ax, %si
    sub $0x5544, %si
    cmp $0x88, %bh
    CHECK_EQ 20
    cmp $0x11225544, %eax
    CHECK_EQ 21
    cmp $0x667788ee, %ebx
    CHECK_EQ 22
    cmp $0x55, %ecx
    CHECK_EQ 23
    cmp $-0x12, %rdx
    CHECK_EQ 24
    cmp $0, %si
    CHECK_EQ 25
    /* 4: flags from host code read by interpreted instructions */
    mov $1, %eax
    mov $2, %ebx
    sub %ebx, %eax                /* borrow: CF=1 */
    mov $10, %ecx
    adc $0, %ecx
    cmp $11, %ecx
    CHECK_EQ 30
    mov $0xffffffff, %eax
    add $1, %eax                  /* ZF=1 CF=1 */
    setc %cl
    setz %ch
    pushf
    pop %rdx
    and $0x8d5, %edx
    cmp $0x55, %edx               /* CF PF AF ZF */
    CHECK_EQ 31
    cmp $0x0101, %cx
    CHECK_EQ 32
    /* 5: PUSH/POP, RSP as operand */
    mov %rsp, %rbp
    push %rsp
    pop %rax
    cmp %rbp, %rax
    CHECK_EQ 40
    push %rbp
    pop %rsp
    cmp %rbp, %rsp
    CHECK_EQ 41
    mov $0x1234, %rax
    push %rax
    push %rax
    pop %rbx
    pop %rcx
    add %rbx, %rcx
    cmp $0x2468, %rcx
    CHECK_EQ 42
    cmp %rbp, %rsp
    CHECK_EQ 43
    /* 6: an FS-based load */
    mov $0xc0000100, %ecx
    mov $SCRATCH, %eax
    xor %edx, %edx
    wrmsr
    movq $0x5a5a, SCRATCH + 0x10
    mov %fs:0x10, %rax
    cmp $0x5a5a, %rax
    CHECK_EQ 50
    /* 7: a store into the run, two instructions ahead */
    xor %eax, %eax
    movb $9, 7f + 1(%rip)
    mov %eax, %ebx
7:  mov $1, %eax
    cmp $9, %eax
    CHECK_EQ 60
    PASS

pf_handler:
    mov %cr2, %rax
    mov %rax, pf_cr2(%rip)
    mov 8(%rsp), %rax
    mov %rax, pf_rip(%rip)
    mov resume(%rip), %rax
    mov %rax, 8(%rsp)
    add $8, %rsp                  /* the error code */
    iretq

    .balign 8
resume: .quad 0
pf_rip: .quad 0
pf_cr2: .quad 0
