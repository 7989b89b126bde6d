/* BMI1 and BMI2 with answers worked out by hand (not taken from a host):
 * CPUID offers both; each instruction's result, register roles (vvvv as
 * source or destination, MULX's two destinations), flags, 32-bit forms and
 * a memory operand; #UD for VEX.L1 and for a 66 prefix before VEX. */
#include "guest.inc"
#define CF 0x1
#define ZF 0x40

/* SAVE_FLAGS right after the instruction; FLAGS_WERE mask, want, n:
 * (saved RFLAGS & mask) == want, else FAIL n */
.macro SAVE_FLAGS
    pushfq
    pop %r15
.endm
.macro FLAGS_WERE mask, want, n
    and $\mask, %r15
    cmp $\want, %r15
    CHECK_EQ \n
.endm

    .code64
    .globl _start
_start:
    SET_GATE 6, ud_handler
    mov $7, %eax
    xor %ecx, %ecx
    cpuid
    and $0x108, %ebx                /* BMI1 (bit 3), BMI2 (bit 8) */
    cmp $0x108, %ebx
    CHECK_EQ 1

    /* ANDN: dest = ~vvvv & r/m */
    mov $0xf0f0, %rbx
    mov $0xff00, %rcx
    andn %rcx, %rbx, %rax
    SAVE_FLAGS
    cmp $0x0f00, %rax
    CHECK_EQ 2
    mov $-1, %rbx
    stc
    andn %rcx, %rbx, %rax           /* zero: ZF set, CF cleared */
    SAVE_FLAGS
    FLAGS_WERE CF|ZF, ZF, 3
    movq $0xff00, SCRATCH
    movabs $0xffffffff0000f0f0, %rbx
    mov $-1, %rax
    andn SCRATCH, %ebx, %eax        /* 32 bits from memory, zero-extended */
    SAVE_FLAGS
    cmp $0x0f00, %rax
    CHECK_EQ 4

    /* BEXTR: start 8, length 16 */
    movabs $0x123456789abcdef0, %rcx
    mov $0x1008, %edx
    bextr %rdx, %rcx, %rax
    SAVE_FLAGS
    cmp $0xbcde, %rax
    CHECK_EQ 5
    mov $0x4000, %edx               /* start 0, length 64: all of it */
    bextr %rdx, %rcx, %rax
    SAVE_FLAGS
    cmp %rcx, %rax
    CHECK_EQ 6
    mov $0x0840, %edx               /* start 64: nothing */
    bextr %rdx, %rcx, %rax
    SAVE_FLAGS
    FLAGS_WERE CF|ZF, ZF, 7

    /* BLSI, BLSMSK, BLSR: the destination is vvvv */
    mov $0x58, %rcx
    blsi %rcx, %rax
    SAVE_FLAGS
    cmp $0x8, %rax
    CHECK_EQ 8
    FLAGS_WERE CF|ZF, CF, 9
    blsmsk %rcx, %rax
    SAVE_FLAGS
    cmp $0xf, %rax
    CHECK_EQ 10
    blsr %rcx, %rax
    SAVE_FLAGS
    cmp $0x50, %rax
    CHECK_EQ 11
    xor %ecx, %ecx
    blsr %rcx, %rax                 /* source 0: CF and ZF */
    SAVE_FLAGS
    FLAGS_WERE CF|ZF, CF|ZF, 12

    /* TZCNT */
    mov $0x58, %rcx
    tzcnt %rcx, %rax
    SAVE_FLAGS
    cmp $3, %rax
    CHECK_EQ 13
    xor %ecx, %ecx
    tzcnt %rcx, %rax
    SAVE_FLAGS
    cmp $64, %rax
    CHECK_EQ 14
    FLAGS_WERE CF|ZF, CF, 15
    tzcnt %ecx, %eax
    SAVE_FLAGS
    cmp $32, %rax
    CHECK_EQ 16
    mov $1, %ecx
    tzcnt %rcx, %rax                /* a zero count: ZF */
    SAVE_FLAGS
    FLAGS_WERE CF|ZF, ZF, 17

    /* BZHI: index from vvvv's low byte */
    mov $-1, %rcx
    mov $0x10c, %edx                /* 12 (bits above the low byte ignored) */
    bzhi %rdx, %rcx, %rax
    SAVE_FLAGS
    cmp $0xfff, %rax
    CHECK_EQ 18
    FLAGS_WERE CF, 0, 19
    mov $70, %edx                   /* past the size: unchanged, CF */
    bzhi %rdx, %rcx, %rax
    SAVE_FLAGS
    cmp $-1, %rax
    CHECK_EQ 20
    FLAGS_WERE CF, CF, 21

    /* PDEP, PEXT: mask from r/m, source from vvvv */
    mov $0x1234, %rbx
    mov $0xff00ff00, %rcx
    pdep %rcx, %rbx, %rax
    SAVE_FLAGS
    cmp $0x12003400, %rax
    CHECK_EQ 22
    pext %rcx, %rax, %rdx
    SAVE_FLAGS
    cmp $0x1234, %rdx
    CHECK_EQ 23
    mov $0xb, %ebx
    mov $0xf0f0, %ecx
    pdep %ecx, %ebx, %eax
    SAVE_FLAGS
    cmp $0xb0, %rax
    CHECK_EQ 24

    /* MULX: hi:lo = RDX * r/m, flags kept */
    mov $-1, %rdx
    mov $2, %rcx
    stc
    mulx %rcx, %rbx, %rax           /* lo -> rbx (vvvv), hi -> rax (reg) */
    SAVE_FLAGS
    FLAGS_WERE CF, CF, 25
    cmp $1, %rax
    CHECK_EQ 26
    mov $-2, %r8
    cmp %r8, %rbx
    CHECK_EQ 27
    mulx %rcx, %rax, %rax           /* the same register: the high half */
    SAVE_FLAGS
    cmp $1, %rax
    CHECK_EQ 28
    mov $0x80000000, %edx
    mov $4, %ecx
    mulx %ecx, %ebx, %eax
    SAVE_FLAGS
    cmp $2, %rax
    CHECK_EQ 29
    test %rbx, %rbx
    CHECK_EQ 30

    /* SHLX, SARX, SHRX: the count from vvvv, masked */
    movabs $0x8000000000000000, %rcx
    mov $63, %edx
    sarx %rdx, %rcx, %rax
    SAVE_FLAGS
    cmp $-1, %rax
    CHECK_EQ 31
    mov $65, %edx
    mov $3, %ecx
    shlx %rdx, %rcx, %rax           /* 65 & 63 = 1 */
    SAVE_FLAGS
    cmp $6, %rax
    CHECK_EQ 32
    mov $0x80000000, %ecx
    mov $63, %edx                   /* 63 & 31 = 31 */
    shrx %edx, %ecx, %eax
    SAVE_FLAGS
    cmp $1, %rax
    CHECK_EQ 33

    /* RORX */
    movabs $0x1122334455667788, %rcx
    rorx $8, %rcx, %rax
    SAVE_FLAGS
    movabs $0x8811223344556677, %rdx
    cmp %rdx, %rax
    CHECK_EQ 34
    mov $0x12345678, %ecx
    rorx $36, %ecx, %eax            /* 36 & 31 = 4 */
    SAVE_FLAGS
    mov $0x81234567, %edx
    cmp %rdx, %rax
    CHECK_EQ 35

    /* #UD: ANDN with VEX.L1; a 66 prefix before VEX */
    lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    .byte 0xc4, 0xe2, 0x64, 0xf2, 0xc1  /* andn eax, ebx, ecx with L1 */
    FAIL 36
1:  lea 2f(%rip), %rax
    mov %rax, resume(%rip)
    .byte 0x66, 0xc4, 0xe2, 0x60, 0xf2, 0xc1
    FAIL 37
2:  cmpl $2, ud_count(%rip)
    CHECK_EQ 38
    PASS

    UD_RESUMER
