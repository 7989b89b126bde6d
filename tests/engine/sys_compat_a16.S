/* 16-bit addressing in 32-bit code (an 0x67 prefix there): each ModRM form
 * of LEA, with the upper halves of the registers ignored and the offset
 * wrapping at 64 KiB; loads and a moffs store through a data segment with
 * a base, the offset wrapping inside the segment; BP forms defaulting to
 * SS; a 16-bit moffs; MOV to a segment register from memory; XLAT on BX;
 * JCXZ and LOOP on CX (the rest of ECX kept); REP MOVSB and a backward REP
 * STOSB on SI, DI and CX across the wrap (the upper halves kept). Expected
 * values are worked out by hand from the manuals' rules. */
#include "guest.inc"
#define GDT2    0xb000
#define BASED   0x40            /* flat 4 GiB data, base SCRATCH */
    .code64
    .globl _start
_start:
    mov $GDT, %rsi              /* the harness's GDT plus the based segment */
    mov $GDT2, %rdi
    mov $8, %ecx
    rep movsq
    movabs $0x00cf93200000ffff, %rax
    mov %rax, GDT2 + BASED
    lgdt gdtr2(%rip)
    movl $0x11223344, SCRATCH + 0x10
    movl $0x55667788, SCRATCH + 0xfff0
    movb $0x5a, SCRATCH + 0x30
    movw $BASED, SCRATCH + 0x50
    movb $0xa1, SCRATCH + 0xfffe
    movb $0xa2, SCRATCH + 0xffff
    movb $0xa3, SCRATCH
    movb $0xa4, SCRATCH + 1
    ljmpl *farptr(%rip)
    FAIL 1

    .code32
c32:
    mov $KDS, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    /* LEA: each form, 16-bit sums */
    mov $0xabcd1234, %ebx
    mov $0x77774321, %esi
    addr16 lea (%bx,%si), %eax
    cmp $0x5555, %eax
    CHECK_EQ 2
    mov $0x1234fff0, %ebx
    mov $0x20, %esi
    addr16 lea (%bx,%si), %eax          /* 0x10010 wraps */
    cmp $0x10, %eax
    CHECK_EQ 3
    mov $0x100, %ebp
    mov $0x10, %edi
    addr16 lea -0x20(%bp,%di), %eax     /* disp8, sign-extended */
    cmp $0xf0, %eax
    CHECK_EQ 4
    mov $0x9000, %ebx
    addr16 lea 0x8000(%bx), %eax        /* disp16 */
    cmp $0x1000, %eax
    CHECK_EQ 5
    addr16 lea 0x1234, %eax             /* mod 0, r/m 6: disp16 alone */
    cmp $0x1234, %eax
    CHECK_EQ 6
    mov $0xffffffff, %eax
    mov $0x8001, %edi
    addr16 lea 0x7fff(%di), %ax         /* 16-bit operand: AX only */
    cmp $0xffff0000, %eax
    CHECK_EQ 7
    mov $0x3, %ecx
    mov $0x40, %edx
    mov $0x10002, %ebx
    addr16 lea (%bx,%di), %eax
    cmp $0x8003, %eax
    CHECK_EQ 8
    mov $0x10007, %esi
    addr16 lea 1(%si), %eax
    cmp $8, %eax
    CHECK_EQ 9
    addr16 lea -1(%di), %eax
    cmp $0x8000, %eax
    CHECK_EQ 10
    mov $0xfffe, %ebp
    mov $0x5, %esi
    addr16 lea (%bp,%si), %eax
    cmp $3, %eax
    CHECK_EQ 11

    /* loads through the based segment: the offset wraps inside it */
    mov $BASED, %eax
    mov %eax, %ds
    mov $0xfff0, %ebx
    mov $0x20, %esi
    addr16 mov (%bx,%si), %eax          /* SCRATCH + 0x10 */
    cmp $0x11223344, %eax
    CHECK_EQ 12
    addr16 mov (%bx), %ecx              /* SCRATCH + 0xfff0 */
    cmp $0x55667788, %ecx
    CHECK_EQ 13
    addr16 mov 0x10, %edx               /* mod 0, r/m 6 */
    cmp $0x11223344, %edx
    CHECK_EQ 14
    .byte 0x67, 0xa1, 0x10, 0x00        /* mov 0x10, %eax: A1 with a 16-bit moffs */
    cmp $0x11223344, %eax
    CHECK_EQ 30
    .byte 0x67, 0xa3, 0x40, 0x00        /* mov %eax, 0x40: A3, the same */
    mov $0xfff0, %ebp
    addr16 mov %ds:(%bp), %eax          /* BP with a DS override */
    cmp $0x55667788, %eax
    CHECK_EQ 15
    mov $0x50, %ebx
    addr16 mov (%bx), %es               /* MOV Sreg from memory, not from BX */
    mov %es, %eax
    cmp $BASED, %eax
    CHECK_EQ 32
    mov $0xfff0, %ebx
    /* XLAT: AL = [BX + AL], the sum in 16 bits */
    mov $0x40, %eax                     /* 0xfff0 + 0x40 = SCRATCH + 0x30 */
    addr16 xlat
    cmp $0x5a, %eax
    CHECK_EQ 16
    mov $KDS, %eax
    mov %eax, %ds
    /* BP forms default to SS */
    mov $BASED, %eax
    mov %eax, %ss
    nop                                 /* (MOV SS's shadow) */
    addr16 mov (%bp), %ecx              /* SS: SCRATCH + 0xfff0 */
    addr16 mov 0x20(%bp), %edx          /* SS: SCRATCH + 0x10 */
    mov $KDS, %eax
    mov %eax, %ss
    cmp $0x55667788, %ecx
    CHECK_EQ 17
    cmp $0x11223344, %edx
    CHECK_EQ 18

    /* JCXZ and LOOP count in CX */
    mov $0x10000, %ecx
    jcxz 1f                             /* 67 E3 in 32-bit code; CX = 0: taken */
    FAIL 19
1:  mov $0x30001, %ecx
    addr16 loop 2f                      /* CX 1 -> 0: not taken */
    cmp $0x30000, %ecx
    CHECK_EQ 20
    mov $0x50000, %ecx
    addr16 loop 3f                      /* CX 0 -> 0xffff: taken */
2:  FAIL 21
3:  cmp $0x5ffff, %ecx
    CHECK_EQ 22

    /* REP MOVSB on SI, DI and CX, across the wrap */
    mov $BASED, %eax
    mov %eax, %ds
    mov %eax, %es
    mov $0x7770fffe, %esi
    mov $0x88880100, %edi
    mov $0x00090004, %ecx
    cld
    addr16 rep movsb                    /* 0xfffe, 0xffff, 0, 1 -> 0x100.. */
    cmp $0x77700002, %esi
    CHECK_EQ 23
    cmp $0x88880104, %edi
    CHECK_EQ 24
    cmp $0x00090000, %ecx
    CHECK_EQ 25
    /* a backward REP STOSB across the wrap: 1, 0, 0xffff */
    mov $0x12340001, %edi
    mov $3, %ecx
    mov $0xee, %al
    std
    addr16 rep stosb
    cld
    cmp $0x1234fffe, %edi
    CHECK_EQ 26
    mov $KDS, %eax
    mov %eax, %ds
    mov %eax, %es
    cmpl $0xa4a3a2a1, SCRATCH + 0x100
    CHECK_EQ 27
    cmpl $0xeea1, SCRATCH + 0xfffe      /* 0xa1, 0xee; the wrap wrote at 0 */
    CHECK_EQ 28
    cmpw $0xeeee, SCRATCH               /* offsets 0 and 1 */
    CHECK_EQ 29
    cmpl $0x11223344, SCRATCH + 0x40    /* the moffs store */
    CHECK_EQ 31
    ljmpl $KCS, $pass64

    .code64
pass64:
    PASS

    .data
farptr: .long c32
        .word KCS32
gdtr2:  .word 0x47
        .quad GDT2
