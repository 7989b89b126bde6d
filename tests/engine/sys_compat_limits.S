/* Segment limits in 32-bit code: data segments whose limit leaves offsets
 * out — expand-up with a byte limit, expand-up with a page limit, expand
 * down with B = 1 (up to 4 GiB) and with B = 0 (up to 64 KiB) — load, and
 * an access outside the limit raises #GP(0) (#SS(0) through SS) before
 * anything is written: a load or a store through DS, ES (an override), FS;
 * a PUSH on the stack; a REP STOSB that reaches the limit stops there with
 * ECX and EDI at the element that faulted. Inside the limits everything
 * runs, the base applied; LEA computes offsets without looking at limits.
 * Expected values follow the manuals' rules for limits. */
#include "guest.inc"
#define GDT2    0xb000
#define SMALL   0x40            /* base SCRATCH, byte limit 0xfff */
#define DOWN    0x48            /* expand-down, limit 0xfff, B = 1: 0x1000..4 GiB */
#define DOWN16  0x50            /* expand-down, limit 0xfff, B = 0: 0x1000..0xffff */
#define PAGES   0x58            /* page granular, limit 1 page: 0..0x1fff */
    .code64
    .globl _start
_start:
    SET_GATE 13, gp_handler, 1
    SET_GATE 12, ss_handler, 1
    mov $GDT, %rsi
    mov $GDT2, %rdi
    mov $8, %ecx
    rep movsq
    movabs $0x0040932000000fff, %rax
    mov %rax, GDT2 + SMALL
    movabs $0x0040972000000fff, %rax
    mov %rax, GDT2 + DOWN
    movabs $0x0000972000000fff, %rax
    mov %rax, GDT2 + DOWN16
    movabs $0x00c0932000000001, %rax
    mov %rax, GDT2 + PAGES
    lgdt gdtr2(%rip)
    movl $0x600df00d, SCRATCH + 0xffc
    movl $0x12345678, SCRATCH + 0x1000
    ljmpl *farptr(%rip)
    FAIL 1

    .code32
c32:
    mov $KDS, %eax
    mov %eax, %ss
    mov $STACK0, %esp
    /* expand-up, byte limit, in DS: the last dword in, the next byte out */
    mov $SMALL, %eax
    mov %eax, %ds
    movl 0xffc, %ebx
    cmp $0x600df00d, %ebx
    CHECK_EQ 2
    movl $2f, %ss:resume
    movb $0x77, 0x1000              /* #GP(0), nothing written */
    FAIL 3
2:  cmpl $1, %ss:gp_count
    CHECK_EQ 4
    cmpl $0, %ss:last_err
    CHECK_EQ 5
    lea 0x5000, %eax                /* no limit for LEA */
    cmp $0x5000, %eax
    CHECK_EQ 6
    /* a REP STOSB stops at the limit: offsets 0xffe and 0xfff written */
    mov %ds, %eax
    mov %eax, %es
    mov $0xffe, %edi
    mov $4, %ecx
    mov $0xab, %al
    movl $3f, %ss:resume
    cld
    rep stosb
    FAIL 7
3:  cmpl $2, %ss:gp_count
    CHECK_EQ 8
    cmp $2, %ecx
    CHECK_EQ 9
    cmp $0x1000, %edi
    CHECK_EQ 10
    /* FS with the same limit */
    mov $SMALL, %eax
    mov %eax, %fs
    movl $4f, %ss:resume
    movb %fs:0x1000, %al
    FAIL 11
4:  cmpl $3, %ss:gp_count
    CHECK_EQ 12
    /* expand down, B = 1: offsets above the limit, up to 4 GiB */
    mov $DOWN, %eax
    mov %eax, %es
    movl %es:0x1000, %ebx           /* SCRATCH + 0x1000 */
    cmp $0x12345678, %ebx
    CHECK_EQ 13
    movl $5f, %ss:resume
    movb %es:0xfff, %al
    FAIL 14
5:  cmpl $4, %ss:gp_count
    CHECK_EQ 15
    /* expand down, B = 0: up to 0xffff only */
    mov $DOWN16, %eax
    mov %eax, %es
    movb %es:0xffff, %al
    movl $6f, %ss:resume
    movb %es:0x10000, %al
    FAIL 16
6:  cmpl $5, %ss:gp_count
    CHECK_EQ 17
    /* the stack: a page-granular SS, 0..0x1fff; a push at 0x2000 would
     * write 0x1ffc..0x1fff (in), one at 0x2002 0x1ffe..0x2001 (out) */
    mov $KDS, %eax
    mov %eax, %ds
    mov %esp, saved_esp
    mov $PAGES, %eax
    mov %eax, %ss
    mov $0x2000, %esp
    mov $0x5a5a5a5a, %eax
    push %eax
    cmp $0x1ffc, %esp
    CHECK_EQ 18
    cmpl $0x5a5a5a5a, SCRATCH + 0x1ffc
    CHECK_EQ 19
    mov $0x2002, %esp
    movl $7f, resume
    push %eax                       /* #SS(0) */
    FAIL 20
7:  cmpl $1, ss_count
    CHECK_EQ 21
    cmp $0x2002, %esp
    CHECK_EQ 22
    cmpl $0, last_err
    CHECK_EQ 23
    mov $KDS, %eax
    mov %eax, %ss
    mov saved_esp, %esp
    cmpw $0xabab, SCRATCH + 0xffe   /* the two bytes STOSB wrote... */
    CHECK_EQ 24
    cmpl $0x12345678, SCRATCH + 0x1000 /* ... and no more */
    CHECK_EQ 25
    ljmpl $KCS, $pass64

    .code64
gp_handler:                         /* IST 1; the error code, then on at 'resume' */
    incl gp_count(%rip)
    jmp 1f
ss_handler:
    incl ss_count(%rip)
1:  mov (%rsp), %rax
    mov %eax, last_err(%rip)
    add $8, %rsp
    mov resume(%rip), %eax
    mov %rax, (%rsp)
    iretq
pass64:
    PASS

    .data
farptr: .long c32
        .word KCS32
gdtr2:  .word 0x5f
        .quad GDT2
resume: .long 0
gp_count: .long 0
ss_count: .long 0
last_err: .long -1
saved_esp: .long 0
