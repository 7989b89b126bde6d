/* What only 32-bit code has, run in 32-bit kernel code (compatibility
 * mode at CPL0): MOV SS and POP SS, whose next instruction runs alone (the
 * interrupt shadow: the engine runs it as a one-record copy of its block),
 * PUSHA/POPA, PUSH/POP of segment registers, ENTER with a nesting level,
 * DAA, DAS, AAA, AAS, AAM, AAD on values worked out by hand, AAM 0 (#DE),
 * INTO with OF set (#OF, a trap: the handler sees the next EIP), LES/LDS,
 * BOUND in and out of bounds (#BR, a fault), ARPL, SALC, far CALLs (direct
 * and through memory) and their RETFs within 32-bit code, IRETD at the
 * same level (no SS:ESP popped) within 32-bit code and to 64-bit code, and
 * a RETF from it to 64-bit code at the end. The
 * harness fills the block arena with stale bytes first, as a flushed and
 * reused arena holds. */
#include "guest.inc"
#define STACK32 0x8f000
    .code64
    .globl _start
_start:
    SET_GATE 4, of_handler
    SET_GATE 0, de_handler
    SET_GATE 5, br_handler
    ljmpl *farptr(%rip)
    FAIL 1

    .code32
c32:
    mov $KDS, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss                   /* the next instruction runs alone */
    mov $STACK32, %esp
    /* PUSHA: EDI lowest, the old ESP in the middle; POPA skips it */
    mov $0x11, %eax
    mov $0x22, %ecx
    mov $0x33, %edx
    mov $0x44, %ebx
    mov $0x55, %ebp
    mov $0x66, %esi
    mov $0x77, %edi
    pusha
    cmpl $0x77, (%esp)
    jne bad
    cmpl $STACK32, 12(%esp)
    jne bad
    cmpl $0x11, 28(%esp)
    jne bad
    movl $0x99, 4(%esp)             /* ESI's slot */
    movl $0, 12(%esp)
    popa
    cmp $STACK32, %esp
    jne bad
    cmp $0x99, %esi
    jne bad
    cmp $0x11, %eax
    jne bad
    /* segment registers on the stack: 4-byte slots, POP SS's shadow */
    push %ss
    cmpl $KDS, (%esp)
    jne bad
    pop %ss
    push %cs
    cmpl $KCS32, (%esp)
    jne bad
    pop %eax
    push %ds
    pop %es
    mov %es, %eax
    cmp $KDS, %eax
    jne bad
    cmp $STACK32, %esp
    jne bad
    /* ENTER 8, 2: EBP, one frame pointer from the old display, the new one */
    movl $0xabcd, display - 4
    mov $display, %ebp
    enter $8, $2
    cmp $STACK32 - 4, %ebp
    jne bad
    cmpl $display, (%ebp)
    jne bad
    cmpl $0xabcd, -4(%ebp)
    jne bad
    cmp %ebp, -8(%ebp)
    jne bad
    cmp $STACK32 - 20, %esp
    jne bad
    leave
    cmp $display, %ebp
    jne bad
    /* decimal arithmetic */
    mov $0x15, %al                  /* 15 + 27 = 42 */
    add $0x27, %al
    daa
    cmp $0x42, %al
    jne bad
    mov $0x42, %al                  /* 42 - 15 = 27 */
    sub $0x15, %al
    das
    cmp $0x27, %al
    jne bad
    mov $0x0509, %ax                /* 9 + 8 = 17, unpacked: AH 6, AL 7 */
    add $8, %al
    aaa
    jc 1f
    jmp bad
1:  cmp $0x0607, %ax
    jne bad
    mov $0x0603, %ax                /* 3 - 8: AH - 1, AL 5, CF */
    sub $8, %al
    aas
    jnc bad
    cmp $0x0505, %ax
    jne bad
    mov $73, %al                    /* AAM: 73 = 7 * 10 + 3 */
    aam
    cmp $0x0703, %ax
    jne bad
    aad                             /* and back */
    cmp $73, %ax
    jne bad
    .byte 0xd4, 0                   /* AAM 0: #DE */
de_resume:
    cmpl $1, de_seen
    jne bad
    /* INTO: nothing with OF clear, #OF with it set */
    xor %eax, %eax
    into
    mov $0x7f, %al
    add $1, %al
    into
after_into:
    cmpl $1, of_seen
    jne bad
    /* LES, LDS: the offset and the segment from m16:32 */
    xor %eax, %eax
    mov %eax, %es
    les farp, %eax
    cmp $0x1234, %eax
    jne bad
    mov %es, %eax
    cmp $KDS, %eax
    jne bad
    lds farp, %ecx
    cmp $0x1234, %ecx
    jne bad
    /* BOUND: 5 within [0, 10]; 11 beyond: #BR, EIP at the BOUND */
    mov $5, %eax
    bound %eax, bounds
    mov $11, %eax
br_at:
    bound %eax, bounds
    cmpl $1, br_seen
    jne bad
    /* ARPL raises the RPL and sets ZF; a second time, nothing to raise */
    mov $0x10, %eax
    mov $3, %ecx
    arpl %cx, %ax
    jnz bad
    cmp $0x13, %eax
    jne bad
    arpl %cx, %ax
    jz bad
    /* SALC: AL from CF */
    stc
    .byte 0xd6
    cmp $0xff, %al
    jne bad
    clc
    .byte 0xd6
    test %al, %al
    jnz bad
    /* far CALL and RETF within 32-bit code: CS and EIP in 4-byte slots */
    mov %esp, %ebx
    lcall $KCS32, $farfn
    cmp %ebx, %esp
    jne bad
    cmpl $1, far_calls
    jne bad
    lcall *farcall_ptr
    cmpl $2, far_calls
    jne bad
    /* IRETD at the same level: EIP, CS and EFLAGS popped, SS:ESP not */
    mov %esp, %ebx
    pushf
    orl $0x801, (%esp)              /* CF and OF come back set */
    push %cs
    call iret_fn
    jnc bad
    jno bad
    cmp %ebx, %esp
    jne bad
    cmp $0xabcd4321, %eax
    jne bad
    /* ... and from 32-bit code to 64-bit code */
    pushf
    push $KCS
    push $iret64
    iret
    .code64
iret64:
    cmp %rbx, %rsp
    CHECK_EQ 7
    ljmpl *farptr2(%rip)
    .code32
c32b:
    /* RETF to 64-bit code */
    push $KCS
    push $good
    lret
iret_fn:
    mov $0xabcd4321, %eax
    iret
farfn:                              /* the caller's CS above its EIP */
    cmpl $KCS32, 4(%esp)
    jne bad
    incl far_calls
    lret
bad:
    ljmpl $KCS, $fail64

    .code64
of_handler:                         /* a trap: the frame's EIP follows INTO */
    incl of_seen(%rip)
    lea after_into(%rip), %rax
    cmp %rax, (%rsp)
    CHECK_EQ 3
    cmpq $KCS32, 8(%rsp)
    CHECK_EQ 4
    iretq
br_handler:                         /* a fault: EIP at the BOUND; go on past it */
    incl br_seen(%rip)
    lea br_at(%rip), %rax
    cmp %rax, (%rsp)
    CHECK_EQ 6
    addq $6, (%rsp)
    iretq
de_handler:                         /* a fault: EIP at the AAM; go on past it */
    incl de_seen(%rip)
    lea de_resume - 2(%rip), %rax
    cmp %rax, (%rsp)
    CHECK_EQ 5
    addq $2, (%rsp)
    iretq
good:
    PASS
fail64:
    FAIL 2

    .data
farptr: .long c32
        .word KCS32
farptr2: .long c32b
        .word KCS32
of_seen: .long 0
de_seen: .long 0
br_seen: .long 0
far_calls: .long 0
farp: .long 0x1234
      .word KDS
bounds: .long 0, 10
farcall_ptr: .long farfn
      .word KCS32
        .long 0
display: .long 0
