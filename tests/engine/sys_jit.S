/* Runs of instructions the translator turns into host code (moves, ALU,
 * LEA, MOVZX/MOVSX, PUSH/POP), checked for what the interpreter gives:
 * a #PF in the middle of a run (RIP at the faulting instruction, the ones
 * before it done, the ones after not), TLB misses inside a run, byte and
 * word registers (AH..BH), flags handed from host code to interpreted
 * instructions (ADC, SETcc, PUSHF), PUSH/POP of RSP, an FS-based load,
 * a store into the same run two instructions ahead (self-modifying
 * code), and shifts, rotates and IMUL by immediates in host code: their
 * defined flags as interpreted SETcc/PUSHF/ADC see them, and a rotate
 * keeping the other flags of the lazy, rotated or eager state before it;
 * Jccs not fused with their producer ending blocks (looping back, over a
 * page boundary, straddling one), and PUSH/POP groups faulting part way.
 * The test runs with the translator off and on (tests/run.py). */
#include "guest.inc"

.macro DEFER_INIT
    mov $0x80000002ffffffff, %rcx
    mov $-3, %rbx
    mov %ecx, %r9d
    mov %ecx, %r10d
    mov %ebx, %r11d
    mov %ebx, %r12d
.endm

.macro DEFER_CASE n, op
    DEFER_INIT
    \op
    pushfq
    pop %r15
    lea .Lresume\@(%rip), %rax
    mov %rax, resume(%rip)
    mov $0x800018, %rsi
    DEFER_INIT
    \op
    mov (%rsi), %rdx              /* not mapped */
    mov %rbx, %r8
    xor %edx, %edx                /* overwrites the flags: not reached */
.Lresume\@:
    mov pf_rflags(%rip), %rax
    xor %r15, %rax
    and $0x8d5, %eax              /* OF SF ZF AF PF CF */
    CHECK_EQ \n
.endm

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
    /* 8: shifts by immediates */
    mov $0x0fffffff, %eax
    shl $4, %eax                  /* 0xfffffff0, CF = bit 28 = 0 */
    setc %cl
    mov $0x80, %dl
    sar $3, %dl                   /* 0xf0, CF = 0, SF = 1 */
    sets %ch
    mov $0x8001, %si
    shr $1, %si                   /* 0x4000, CF = 1, OF = old MSB = 1 */
    pushf
    pop %rbx
    and $0x801, %ebx
    cmp $0x801, %ebx
    CHECK_EQ 70
    cmp $0xfffffff0, %eax
    CHECK_EQ 71
    cmp $0xf0, %dl
    CHECK_EQ 72
    cmp $0x0100, %cx
    CHECK_EQ 73
    cmp $0x4000, %si
    CHECK_EQ 74
    mov $0x123456789abcdef0, %rax
    shr $60, %rax
    mov $-64, %rdx
    sar $62, %rdx
    cmp $1, %rax
    CHECK_EQ 75
    cmp $-1, %rdx
    CHECK_EQ 76
    /* 9: rotates keep the flags before them (lazy, rotated, eager) */
    mov $0x8000000000000000, %rbx
    xor %ecx, %ecx
    cmp %rcx, %rcx                /* ZF = 1 (lazy) */
    rol $1, %rbx                  /* 1, CF = 1, OF = 0 ^ 1 */
    setz %al
    seto %ah
    rol $3, %rbx                  /* 8: ZF still 1 (rotated state) */
    setz %cl
    setc %ch                      /* CF = bit 0 = 0 */
    cmp $0x0101, %ax
    CHECK_EQ 80
    cmp $0x0001, %cx
    CHECK_EQ 81
    cmp $8, %rbx
    CHECK_EQ 82
    mov $0x1122334455667788, %rax
    ror $8, %rax
    setc %cl                      /* CF = MSB of the result = 1 */
    mov $0x81, %dl
    ror $4, %dl                   /* 0x18 */
    mov $0x1234, %si
    rol $4, %si                   /* 0x2341 */
    mov $0x8811223344556677, %rbx
    cmp %rbx, %rax
    CHECK_EQ 83
    cmp $1, %cl
    CHECK_EQ 84
    cmp $0x18, %dl
    CHECK_EQ 85
    cmp $0x2341, %si
    CHECK_EQ 86
    /* 10: IMUL r, r(, imm): CF = OF = overflow; then a rotate on that (eager) state */
    mov $0x5555555555555556, %rbx
    imul $3, %rbx, %rcx           /* 0x1_0000000000000002: overflows */
    seto %al
    setc %ah
    mov $7, %edx
    mov $-6, %esi
    imul %esi, %edx               /* -42, fits */
    setc %dh
    mov $0x4000000000000000, %r8
    imul $3, %rbx, %rcx
    rol $1, %r8                   /* CF = 0, OF = 1 */
    pushf
    pop %r9
    and $0x801, %r9d
    cmp $0x800, %r9d
    CHECK_EQ 90
    cmp $0x0101, %ax
    CHECK_EQ 91
    cmp $2, %rcx
    CHECK_EQ 92
    cmp $-42 & 0xff, %dl
    CHECK_EQ 93
    cmp $0, %dh
    CHECK_EQ 94
    mov $300, %bx
    imul $300, %bx, %ax           /* 90000 = 0x15f90 */
    setc %cl
    cmp $0x5f90, %ax
    CHECK_EQ 95
    cmp $1, %cl
    CHECK_EQ 96
    /* 11: flags a later record overwrites are not stored, except where a
     * fault in between must see them: the #PF's RFLAGS are the SUB's */
    lea 9f(%rip), %rax
    mov %rax, resume(%rip)
    mov $0x800010, %rsi
    mov $5, %ecx
    sub $6, %ecx                  /* CF = SF = 1, ZF = 0 */
8:  mov (%rsi), %rdx              /* not mapped */
    xor %ecx, %ecx                /* ZF = 1: not reached */
9:  mov pf_rflags(%rip), %rax
    and $0xc1, %eax               /* SF ZF CF */
    cmp $0x81, %eax
    CHECK_EQ 100
    /* 12: SETcc and CMOVcc after the flags' producer, MOVs in between; a
     * producer whose flags a second one overwrites */
    mov $3, %eax
    mov $9, %ebx
    cmp %ebx, %eax                /* 3 < 9: CF = 1, SF = 1 */
    mov %rax, %rdx
    mov $77, %ecx
    setb %r8b
    setl %r9b
    setg %r10b
    cmovb %rcx, %rdx              /* 77 */
    cmovae %rbx, %rax             /* stays 3 */
    add %ebx, %ebx                /* overwritten unread */
    and $0, %ebx                  /* ZF = 1 */
    sete %r11b
    cmp $1, %r8b
    jne 7f
    cmp $1, %r9b                  /* SF != OF */
    jne 7f
    cmp $0, %r10b
    jne 7f
    cmp $77, %rdx
    jne 7f
    cmp $3, %rax
    jne 7f
    cmp $1, %r11b
7:  CHECK_EQ 101
    /* 13: RET through the jump cache, a near and a far (another page) target */
    call 5f
    mov $1, %eax
    call far_ret
    add $1, %eax
    cmp $2, %eax
    CHECK_EQ 102
    /* 14: CALL and JMP through a register and through memory */
    lea far_ret(%rip), %rbx
    call *%rbx
    mov %rbx, jmp_slot(%rip)
    call *jmp_slot(%rip)
    lea 4f(%rip), %rcx
    mov %rcx, jmp_slot(%rip)
    mov $5, %eax
    jmp *jmp_slot(%rip)
    mov $6, %eax                  /* skipped */
4:  lea 3f(%rip), %rdx
    jmp *%rdx
    mov $7, %eax                  /* skipped */
3:  cmp $5, %eax
    CHECK_EQ 103
    /* 15: registers a run keeps in host registers (each used three times
     * or more): a TLB miss in the middle (the handler runs the record, the
     * next record is entered from outside and reloads them), a #PF with
     * four of them changed (RSP among them: the exception frame goes where
     * the guest's RSP is), byte and word writes into them, AH beside them,
     * and INC after no producer the run knows (a call into C) */
    mov $SCRATCH + 0x5000, %rdi   /* not yet in the TLB */
    mov $3, %eax
    mov $4, %ebx
    add %eax, %ebx
    add %ebx, %eax
    mov %eax, (%rdi)              /* miss: 10 stored */
    add %ebx, %eax
    add (%rdi), %eax              /* 10 + 7 + 10 */
    cmp $27, %eax
    CHECK_EQ 104
    lea 9f(%rip), %rax
    mov %rax, resume(%rip)
    mov %rsp, %rbp
    mov $1, %ecx                  /* (the #PF handler clobbers RAX) */
    mov $2, %ebx
    mov $0x800020, %rsi
    add %ecx, %ecx
    add %ebx, %ebx
    push %rcx
    push %rbx
    add %ecx, %ebx
    add %ebx, %ecx
8:  mov (%rsi), %rdx              /* not mapped: #PF, the frame below the pushes */
    add $100, %ecx
9:  cmp $8, %ecx                  /* the ADD after the fault not done */
    CHECK_EQ 105
    cmp $6, %ebx
    CHECK_EQ 106
    pop %rcx
    pop %rdx
    cmp %rbp, %rsp
    CHECK_EQ 107
    cmp $4, %rcx
    jne 7f
    cmp $2, %rdx
7:  CHECK_EQ 108
    mov $0x1122334455667788, %rax
    mov $0xaabb, %ecx
    add %rax, %rax                /* 0x22446688aaccef10 */
    mov %cl, %al                  /* 0x22446688aaccefbb: a byte write */
    mov %cx, %dx
    mov %ax, %dx
    add %rax, %rax
    mov %ah, %bl                  /* AH read: RAX stays in memory */
    movabs $0x4488cd115599df76, %r8
    cmp %r8, %rax
    jne 7f
    cmp $0xdf, %bl
    jne 7f
    cmp $0xefbb, %dx
7:  CHECK_EQ 109
    stc
    mov $5, %r8
    lea (%r8,%r8), %r8
    lea (%r8,%r8), %r8
    inc %ecx                      /* CF kept: from the STC, through C */
    adc $0, %r8
    cmp $21, %r8
    CHECK_EQ 110
    xor %eax, %eax                /* a loop ending in a fused DEC/JNZ in */
    mov $10, %ecx                 /* the middle of a block, a TLB miss and */
    mov $SCRATCH + 0x40000, %rdi  /* a store each pass */
    lea loop_sum(%rip), %rsi
    jmp 1f
    .balign 64
1:  mov (%rdi), %r14
    add $4096, %rdi
    add %ecx, (%rsi)
    add %ecx, %eax
    add %ecx, %eax
    add $1, %eax
    dec %ecx
    jnz 1b
    cmp $120, %eax                /* 2 * 55 + 10 */
    jne 7f
    cmpq $55, loop_sum(%rip)
7:  CHECK_EQ 111
    movq $0, loop_sum(%rip)
    xor %eax, %eax                /* the same with the JNZ ending a block, */
    mov $10, %ecx                 /* a TLB miss at the loop's start each time */
    mov $SCRATCH + 0x20000, %rdi
    lea loop_sum(%rip), %rsi      /* and a store each time, not to be repeated */
    call loop_at_page_end
    cmp $120, %eax
    jne 7f
    cmpq $55, loop_sum(%rip)
7:  CHECK_EQ 112
    /* nine registers used three times each (the cache's callee-saved
     * slots too), a TLB miss and a #PF among them */
    lea 9f(%rip), %rax
    mov %rax, resume(%rip)
    mov $SCRATCH + 0x7000, %rdi   /* not yet in the TLB */
    mov $0x800028, %rsi
    mov $1, %ebx
    mov $2, %ecx
    mov $3, %edx
    mov $4, %r8d
    mov $5, %r9d
    mov $6, %r10d
    mov $7, %r11d
    mov $8, %r12d
    mov $9, %r13d
    add %ebx, %ecx
    add %ecx, %edx
    add %edx, %r8d
    add %r8d, %r9d
    add %r9d, %r10d
    add %r10d, %r11d
    add %r11d, %r12d
    add %r12d, %r13d              /* 1 3 6 10 15 21 28 36 45 */
    mov %r13d, (%rdi)             /* a miss */
    add %ebx, %ecx
    add %ecx, %edx
    add %edx, %r8d
    add %r8d, %r9d
    add %r9d, %r10d
    add %r10d, %r11d
    add %r11d, %r12d
    add %r12d, %r13d              /* 1 4 10 20 35 56 84 120 165 */
8:  mov (%rsi), %r14              /* not mapped */
    add $1, %r13d
9:  add %ebx, %ecx
    add %ecx, %edx
    add %edx, %r8d
    add %r8d, %r9d
    add %r9d, %r10d
    add %r10d, %r11d
    add %r11d, %r12d
    add %r12d, %r13d              /* 1 5 15 35 70 126 210 330 495 */
    add (%rdi), %r13d             /* + 45 */
    cmp $540, %r13d
    jne 7f
    cmp $330, %r12d
    jne 7f
    cmp $70, %r9d
7:  CHECK_EQ 113

    /* cached registers changed in place: 32-bit moves, loads, NOT, shifts
     * and ALU ops clear the upper half, 64-bit ones keep it; one ALU op's
     * flags are read after it; addresses from cached base and index */
    mov $0xffffffff00000001, %rbx
    mov %rbx, %rcx
    mov %ebx, %edx
    mov %ebx, %r10d               /* 1 */
    lea inplace_q - 8(%rip), %rsi
    mov (%rsi,%r10,8), %r14       /* an index in r8..r15 */
    mov inplace_q(%rip), %r8d
    mov inplace_q(%rip), %r9
    mov inplace_q(%rip), %r11d    /* 0x55555555 */
    add %r10, %r11                /* 0x55555556 */
    add %r11, %r10                /* 0x55555557 */
    not %ecx                      /* 0xfffffffe */
    not %r9                       /* 0x55555555aaaaaaaa */
    add %ecx, %edx                /* 0xffffffff */
    shl $4, %r8d                  /* 0x55555550 */
    xor %r8d, %ebx                /* 0x55555551 */
    sub %edx, %ecx                /* 0xffffffff */
    or $0x10, %r9d                /* 0xaaaaaaba */
    ror $8, %r9                   /* 0xba00000000aaaaaa */
    add %rbx, %r9                 /* 0xba00000055fffffb */
    add %ecx, %edx                /* 0xfffffffe, CF */
    setc %sil
    mov $0xffffffff, %eax
    cmp %rax, %rcx
    jne 7f
    dec %eax
    cmp %rax, %rdx
    jne 7f
    mov $0x55555551, %eax
    cmp %rax, %rbx
    jne 7f
    mov $0x55555550, %eax
    cmp %rax, %r8
    jne 7f
    cmp $1, %sil
    jne 7f
    mov $0x55555556, %eax
    cmp %rax, %r11
    jne 7f
    inc %eax
    cmp %rax, %r10
    jne 7f
    mov inplace_q(%rip), %rax
    cmp %rax, %r14
    jne 7f
    mov $0xba00000055fffffb, %rax
    cmp %rax, %r9
7:  CHECK_EQ 114

    /* MOVZX/MOVSX into cached registers, from memory and a register */
    mov $-1, %r12
    mov $-1, %r13
    movsbl inplace_q + 4(%rip), %r12d /* 0xffffffaa, the upper half clear */
    movzwl inplace_q(%rip), %r13d /* 0x5555 */
    mov $0xffffffaa, %eax
    cmp %rax, %r12
    jne 7f
    cmp $0x5555, %r13
    jne 7f
    movsbq %r12b, %r12            /* -0x56 */
    cmp $-0x56, %r12
7:  CHECK_EQ 115
    /* 13: a producer whose flags a later record overwrites, with only
     * moves between: its host code leaves them unstored, and a #PF in
     * between sees them recomputed from its registers. Each case runs
     * twice: PUSHF's reading of the flags, then the fault's RFLAGS;
     * CF PF AF ZF SF OF must agree. ECX and EBX are used often enough to
     * be cached in host registers. */
    DEFER_CASE 116, "add %ebx, %ecx"
    DEFER_CASE 117, "add $1, %ecx"
    DEFER_CASE 118, "sub %rbx, %rcx"
    DEFER_CASE 119, "sub $0x12345, %rcx"
    DEFER_CASE 120, "and $0x8000, %ecx"
    DEFER_CASE 121, "or %ebx, %ecx"
    DEFER_CASE 122, "xor %rbx, %rcx"
    DEFER_CASE 123, "cmp %ebx, %ecx"
    DEFER_CASE 124, "cmp $0x7fffffff, %rcx"
    DEFER_CASE 125, "test %ebx, %ecx"
    DEFER_CASE 126, "test $0x40000000, %rcx"
    DEFER_CASE 127, "sub %ecx, %ecx"
    DEFER_CASE 128, "add %rcx, %rcx"
    DEFER_CASE 129, "sub $-1, %ecx"
    /* 14: a #PF in such a window whose handler changes the saved flags and
     * resumes at the next load, which faults too: that second #PF must see
     * the handler's flags (ZF alone), not the producer's recomputed */
    SET_GATE 14, pf_handler_twice
    lea 9f(%rip), %rax
    mov %rax, resume(%rip)
    lea 2f(%rip), %rax
    mov %rax, pf2_next(%rip)
    movq $0, pf2_count(%rip)
    mov $0x800020, %rsi
    mov $0x800028, %rdi
    mov $5, %ecx
    mov %ecx, %r9d
    mov %ecx, %r10d
    sub $6, %ecx                  /* CF = SF = 1 */
1:  mov (%rsi), %rdx              /* not mapped: the handler sets ZF, goes to 2 */
2:  mov (%rdi), %rdx              /* not mapped */
    mov %rcx, %r8
    xor %edx, %edx                /* overwrites the flags: not reached */
9:  SET_GATE 14, pf_handler
    mov pf_rflags(%rip), %rax
    and $0x8d5, %eax
    cmp $0x40, %eax
    CHECK_EQ 130
    cmpq $2, pf2_count(%rip)
    CHECK_EQ 131
    /* 15: a Jcc on its own (a move between it and its producer, so not
     * fused) ending the block at a page's end: back to the loop's start,
     * then (lone_jcc_at_page_end's second loop) forward over the page
     * boundary both ways */
    xor %eax, %eax
    mov $10, %ecx
    mov $SCRATCH + 0x60000, %rdi
    call lone_jcc_at_page_end
    cmp $65, %eax                 /* 55 + 10 */
    CHECK_EQ 132
    cmp $13, %r13d                /* taken at 4, 2 and 0 of 5..0, then 10 */
    CHECK_EQ 133
    /* 16: eight PUSHes (registers, an imm8 and an imm32) as one group
     * whose slots reach down into an unmapped page: the group's probe
     * misses, the first two land, the third faults (#PF on the IST, CR2
     * at its slot, RSP after the second); then two POPs as a group read
     * them back */
    movq $0, PTE(SCRATCH + 0x6f000)
    invlpg SCRATCH + 0x6f000
    SET_GATE 14, pf_handler, 1
    lea 9f(%rip), %rax
    mov %rax, resume(%rip)
    mov %rsp, %rbp
    mov $SCRATCH + 0x70010, %rsp
    mov $0x1111, %eax
    mov $0x2222, %ebx
    push %rax
    push %rbx
    push $-5
    push $0x12345678
    pushq inplace_q(%rip)
    push %rcx
    push %rdx
    push %r8
    push %r9
9:  mov %rsp, %rsi
    mov %rbp, %rsp
    SET_GATE 14, pf_handler
    movq $(SCRATCH + 0x6f000) | 7, PTE(SCRATCH + 0x6f000)
    invlpg SCRATCH + 0x6f000
    mov pf_cr2(%rip), %rax
    cmp $SCRATCH + 0x6fff8, %rax
    jne 7f
    cmp $SCRATCH + 0x70000, %rsi
7:  CHECK_EQ 134
    mov $SCRATCH + 0x70000, %rsp
    pop %rcx
    pop %rdx
    mov %rbp, %rsp
    cmp $0x2222, %rcx
    jne 7f
    cmp $0x1111, %rdx
7:  CHECK_EQ 135
    /* 17: three POPs as a group from 16 bytes below the end of RAM: the
     * third faults (CR2 at the end, RSP after the second, both values in) */
    lea 9f(%rip), %rax
    mov %rax, resume(%rip)
    movq $0x3333, 0x7ffff0
    movq $0x4444, 0x7ffff8
    xor %ecx, %ecx
    xor %edx, %edx
    mov $0x5555, %r8d
    mov $0x7ffff0, %rsp
    pop %rcx
    pop %rdx
    pop %r8
9:  mov %rsp, %rsi
    mov %rbp, %rsp
    cmpq $0x800000, pf_cr2(%rip)
    jne 7f
    cmp $0x800000, %rsi
    jne 7f
    cmp $0x3333, %rcx
    jne 7f
    cmp $0x4444, %rdx
    jne 7f
    cmp $0x5555, %r8
7:  CHECK_EQ 136
    /* 18: a PUSH of memory inside a group, its load faulting: the pushes
     * before it done (RSP after them), CR2 its address; then a group with
     * a PUSH of memory that works */
    lea 9f(%rip), %rax
    mov %rax, resume(%rip)
    mov $SCRATCH + 0x71000, %rsp
    mov $0x6666, %eax
    push %rax
    push %rax
    pushq 0x800020                /* not mapped */
    push %rax
9:  mov %rsp, %rsi
    mov %rbp, %rsp
    cmpq $0x800020, pf_cr2(%rip)
    jne 7f
    cmp $SCRATCH + 0x71000 - 16, %rsi
    jne 7f
    cmpq $0x6666, SCRATCH + 0x71000 - 16
7:  CHECK_EQ 137
    mov $SCRATCH + 0x71000, %rsp
    push $7
    pushq inplace_q(%rip)
    push %rax
    mov %rsp, %rsi
    mov %rbp, %rsp
    cmp $SCRATCH + 0x71000 - 24, %rsi
    jne 7f
    mov inplace_q(%rip), %rax
    cmp %rax, SCRATCH + 0x71000 - 16
    jne 7f
    cmpq $7, SCRATCH + 0x71000 - 8
7:  CHECK_EQ 138
    PASS
5:  ret

pf_handler_twice:                 /* the first #PF: flags ZF only, RIP pf2_next */
    incq pf2_count(%rip)
    cmpq $1, pf2_count(%rip)
    jne pf_handler
    mov 24(%rsp), %rax
    and $~0x8d5, %rax
    or $0x40, %rax
    mov %rax, 24(%rsp)
    mov pf2_next(%rip), %rax
    mov %rax, 8(%rsp)
    add $8, %rsp
    iretq

pf_handler:
    mov %cr2, %rax
    mov %rax, pf_cr2(%rip)
    mov 24(%rsp), %rax
    mov %rax, pf_rflags(%rip)
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
pf_rflags: .quad 0
pf2_next: .quad 0
pf2_count: .quad 0
jmp_slot: .quad 0
loop_sum: .quad 0
inplace_q: .quad 0xaaaaaaaa55555555
    .balign 4096
far_ret:
    ret
    .balign 4096
    .skip 4096 - 23               /* the loop below: 23 bytes */
loop_at_page_end:
    mov (%rdi), %r14              /* a page not yet in the TLB */
    add $4096, %rdi
    add %ecx, (%rsi)
    add %ecx, %eax
    add %ecx, %eax
    add $1, %eax
    dec %ecx
    jnz loop_at_page_end
    ret

    .balign 4096
    .skip 4096 - 22               /* the loop below: 22 bytes */
lone_jcc_at_page_end:
    mov (%rdi), %r14              /* a page not yet in the TLB */
    add $4096, %rdi
    add %ecx, %eax
    add $1, %eax
    sub $1, %ecx
    mov %ecx, %edx                /* between the producer and the Jcc */
    jnz lone_jcc_at_page_end
    /* on the next page */
    xor %r13d, %r13d
    mov $5, %ecx
    jmp 2f
    .balign 4096
    .skip 4096 - 11               /* from 2 to the page's end: 11 bytes */
2:  test $1, %cl
    mov %ecx, %edx
    jnz 3f                        /* taken: forward over the page boundary */
    add $1, %r13d                 /* not taken: the next page */
3:  sub $1, %ecx
    jns 2b
    /* a lone Jcc straddling the page boundary ends a block that spans
     * two pages, which does not chain: both ways leave through its
     * handler */
    mov $3, %ecx
    jmp 4f
    .balign 4096
    .skip 4096 - 8
4:  sub $1, %ecx                  /* 3 bytes */
    mov %ecx, %edx                /* 2 */
    nop
    nop
    jnz 4b                        /* its second byte on the next page */
    add $10, %r13d
    ret
