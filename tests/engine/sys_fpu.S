/* x87/SSE system rules: CR0.TS -> #NM (SSE, x87, FWAIT with MP),
 * CR0.EM -> #UD for SSE and #NM for x87, CR4.OSFXSR=0 -> #UD for SSE,
 * unmasked SIMD exceptions -> #XM (or #UD without CR4.OSXMMEXCPT), a pending
 * x87 exception -> #MF at the next waiting instruction, LDMXCSR with a
 * reserved bit -> #GP, FXSAVE/FXRSTOR round trip. */
#include "guest.inc"
    .code64
    .globl _start

    .macro EXPECT vec, count
    lea 9f(%rip), %rax
    mov %rax, resume(%rip)
    movq $-1, last(%rip)
    .endm
    .macro GOT vec, n
9:  cmpq $\vec, last(%rip)
    CHECK_EQ \n
    .endm

_start:
    SET_GATE 7, h7
    SET_GATE 6, h6
    SET_GATE 16, h16
    SET_GATE 19, h19
    SET_GATE 13, h13
    fninit
    /* CR0.TS: SSE and x87 #NM */
    mov %cr0, %rax
    or $8, %rax
    mov %rax, %cr0
    EXPECT 7
    addps %xmm1, %xmm0
    GOT 7, 1
    EXPECT 7
    fld1
    GOT 7, 2
    /* FWAIT: #NM only with MP too (MP is set) */
    EXPECT 7
    fwait
    GOT 7, 3
    mov %cr0, %rax
    and $~2, %rax                    /* MP off: FWAIT runs */
    mov %rax, %cr0
    EXPECT 7
    fwait
    GOT -1, 4
    clts
    mov %cr0, %rax
    or $2, %rax
    mov %rax, %cr0
    /* CR0.EM: SSE #UD, x87 #NM */
    mov %cr0, %rax
    or $4, %rax
    mov %rax, %cr0
    EXPECT 6
    addps %xmm1, %xmm0
    GOT 6, 5
    EXPECT 7
    fld1
    GOT 7, 6
    mov %cr0, %rax
    and $~4, %rax
    mov %rax, %cr0
    /* CR4.OSFXSR=0: SSE #UD */
    mov %cr4, %rax
    and $~0x200, %rax
    mov %rax, %cr4
    EXPECT 6
    addps %xmm1, %xmm0
    GOT 6, 7
    mov %cr4, %rax
    or $0x200, %rax
    mov %rax, %cr4
    /* unmasked SIMD exception: divide by zero unmasked */
    ldmxcsr mx_zm_off(%rip)
    xorps %xmm1, %xmm1
    movss one(%rip), %xmm0
    EXPECT 19
    divss %xmm1, %xmm0
    GOT 19, 8
    movd %xmm0, %eax
    cmp $0x3f800000, %eax            /* destination unchanged */
    CHECK_EQ 9
    stmxcsr scratch(%rip)
    testl $4, scratch(%rip)          /* ZE flag set */
    jnz 1f
    FAIL 10
1:  mov %cr4, %rax
    and $~0x400, %rax                /* OSXMMEXCPT off: #UD */
    mov %rax, %cr4
    EXPECT 6
    divss %xmm1, %xmm0
    GOT 6, 11
    mov %cr4, %rax
    or $0x400, %rax
    mov %rax, %cr4
    ldmxcsr mx_default(%rip)
    /* LDMXCSR with a reserved bit */
    EXPECT 13
    ldmxcsr mx_bad(%rip)
    GOT 13, 12
    /* x87: unmasked divide-by-zero is pending until the next FWAIT */
    fninit
    fldcw fcw_zm_off(%rip)
    fld1
    fldz
    fdivrp                           /* 1/0: sets ZE, ES; no trap yet */
    EXPECT 16
    fwait
    GOT 16, 13
    fnstsw %ax
    test $0x80, %ax                  /* ES still set */
    jnz 1f
    FAIL 14
1:  fninit
    /* FXSAVE/FXRSTOR round trip */
    movss one(%rip), %xmm5
    fld1
    fxsave64 fxarea(%rip)
    xorps %xmm5, %xmm5
    fninit
    fxrstor64 fxarea(%rip)
    movd %xmm5, %eax
    cmp $0x3f800000, %eax
    CHECK_EQ 15
    fstps scratch(%rip)
    cmpl $0x3f800000, scratch(%rip)
    CHECK_EQ 16
    /* misaligned FXSAVE: #GP */
    EXPECT 13
    fxsave64 fxarea + 8(%rip)
    GOT 13, 17
    PASS

    .macro HANDLER name, vec, errcode=0
\name:
    .if \errcode
    add $8, %rsp
    .endif
    movq $\vec, last(%rip)
    mov resume(%rip), %rax
    mov %rax, (%rsp)
    iretq
    .endm
    HANDLER h7, 7
    HANDLER h6, 6
    HANDLER h16, 16
    HANDLER h19, 19
    HANDLER h13, 13, 1

    .data
    .align 16
fxarea: .fill 528, 1, 0
resume: .quad 0
last: .quad 0
scratch: .quad 0
one: .long 0x3f800000
mx_zm_off: .long 0x1f80 & ~0x200
mx_default: .long 0x1f80
mx_bad: .long 0x1f80 | 0x80000
fcw_zm_off: .word 0x37f & ~4
