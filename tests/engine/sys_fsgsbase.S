/* RDFSBASE/RDGSBASE/WRFSBASE/WRGSBASE: #UD while CR4.FSGSBASE is clear;
 * then each reads and writes the base the MSRs see and a %gs: access uses;
 * the 32-bit forms zero-extend; a non-canonical base is #GP(0). */
#include "guest.inc"
    .code64
    .globl _start
_start:
    SET_GATE 6, ud_handler
    SET_GATE 13, gp_handler
    lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    rdfsbase %rax                   /* CR4.FSGSBASE clear: #UD */
    FAIL 1
1:  cmpl $1, ud_count(%rip)
    CHECK_EQ 2
    mov %cr4, %rax
    or $0x10000, %rax
    mov %rax, %cr4
    movabs $SCRATCH + 0x100, %rax
    wrgsbase %rax
    movl $0x5eed, SCRATCH + 0x108
    cmpl $0x5eed, %gs:8             /* the new base addresses memory */
    CHECK_EQ 3
    mov $0xc0000101, %ecx           /* IA32_GS_BASE sees it */
    rdmsr
    shl $32, %rdx
    or %rdx, %rax
    cmp $SCRATCH + 0x100, %rax
    CHECK_EQ 4
    rdgsbase %rbx
    cmp $SCRATCH + 0x100, %rbx
    CHECK_EQ 5
    movabs $0x123456789abcdef0, %rax /* not canonical: #GP(0) */
    lea 2f(%rip), %rcx
    mov %rcx, resume(%rip)
    wrfsbase %rax
    FAIL 6
2:  cmpl $1, gp_count(%rip)
    CHECK_EQ 7
    movabs $0x00007fff12345678, %rax
    wrfsbase %rax
    mov $0xc0000100, %ecx           /* IA32_FS_BASE */
    rdmsr
    cmp $0x12345678, %eax
    CHECK_EQ 8
    cmp $0x7fff, %edx
    CHECK_EQ 9
    mov $-1, %rbx
    rdfsbase %ebx                   /* 32 bits, zero-extended */
    cmp $0x12345678, %rbx
    CHECK_EQ 10
    mov $0xffffffff, %eax
    wrfsbase %eax                   /* writes 0x00000000ffffffff */
    rdfsbase %rcx
    mov $0xffffffff, %edx
    cmp %rdx, %rcx
    CHECK_EQ 11
    PASS

ud_handler:
    incl ud_count(%rip)
    jmp 1f
gp_handler:
    incl gp_count(%rip)
    add $8, %rsp                    /* the error code */
1:  mov resume(%rip), %rax
    mov %rax, (%rsp)
    iretq

    .data
    .balign 8
resume: .quad 0
ud_count: .long 0
gp_count: .long 0
