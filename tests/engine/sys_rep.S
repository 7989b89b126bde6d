/* A #PF in the middle of REP MOVSB / REP STOSQ: RCX/RSI/RDI show the
 * progress at the fault, the handler maps the page, the instruction
 * resumes and finishes; nothing beyond the fault was written early. */
#include "guest.inc"
#define SRC (SCRATCH + 0x10000)
#define DST (SCRATCH + 0x20800)
#define HOLE (SCRATCH + 0x21000)
    .code64
    .globl _start
_start:
    SET_GATE 14, pf_handler
    /* source pattern */
    mov $SRC, %rdi
    mov $0x1800, %ecx
1:  mov %cl, (%rdi)
    inc %rdi
    loop 1b
    /* make the destination's second page not present */
    andq $~1, PTE(HOLE)
    invlpg HOLE
    mov $SRC, %rsi
    mov $DST, %rdi
    mov $0x1000, %ecx
    cld
    rep movsb
    cmpq $1, pf_count(%rip)
    CHECK_EQ 1
    cmpq $0x800, f_rcx(%rip)         /* 0x800 bytes were copied before the fault */
    CHECK_EQ 2
    cmpq $(SRC + 0x800), f_rsi(%rip)
    CHECK_EQ 3
    cmpq $HOLE, f_rdi(%rip)
    CHECK_EQ 4
    cmpq $HOLE, f_cr2(%rip)
    CHECK_EQ 5
    cmpq $2, f_err(%rip)
    CHECK_EQ 6
    test %rcx, %rcx
    CHECK_EQ 7
    cmp $(DST + 0x1000), %rdi
    CHECK_EQ 8
    /* the copy is complete and right */
    mov $SRC, %rsi
    mov $DST, %rdi
    mov $0x1000, %ecx
    repe cmpsb
    CHECK_EQ 9
    /* REP STOSQ backwards (DF=1) into a not-present page */
    andq $~1, PTE(SCRATCH + 0x30000)
    invlpg SCRATCH + 0x30000
    movq $0, pf_count(%rip)
    mov $(SCRATCH + 0x30000 + 8 * 7), %rdi
    mov $16, %ecx
    mov $0x5a5a5a5a5a5a5a5a, %rax
    movq $0x1111, SCRATCH + 0x2fff8  /* below the page: written after resume */
    std
    rep stosq
    cld
    cmpq $1, pf_count(%rip)
    CHECK_EQ 10
    cmpq $16, f_rcx(%rip)            /* first element faulted: nothing done */
    CHECK_EQ 11
    mov $0x5a5a5a5a5a5a5a5a, %rax
    cmp %rax, SCRATCH + 0x2fff8
    CHECK_EQ 12
    cmp %rax, SCRATCH + 0x30000
    CHECK_EQ 13
    cmp $(SCRATCH + 0x30000 - 8 * 9), %rdi
    CHECK_EQ 14
    PASS

pf_handler:                          /* preserves every register */
    push %rax
    push %rbx
    mov %rcx, f_rcx(%rip)
    mov %rsi, f_rsi(%rip)
    mov %rdi, f_rdi(%rip)
    mov 16(%rsp), %rax
    mov %rax, f_err(%rip)
    mov %cr2, %rax
    mov %rax, f_cr2(%rip)
    incq pf_count(%rip)
    mov %rax, %rbx
    shr $12, %rbx
    orq $1, PT_BASE(,%rbx,8)         /* map the page */
    invlpg (%rax)
    pop %rbx
    pop %rax
    add $8, %rsp                     /* the error code */
    iretq

    .data
pf_count: .quad 0
f_rcx: .quad 0
f_rsi: .quad 0
f_rdi: .quad 0
f_err: .quad 0
f_cr2: .quad 0
