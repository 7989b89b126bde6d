/* 32-bit code as Linux's AP trampoline runs it: a far jump (FF /5, m16:32)
 * from 64-bit mode into a 32-bit code segment (compatibility mode), 32-bit
 * instructions there (INC as 40+r, absolute disp32 and moffs32 operands,
 * MOV to DS, BT), CR0.PG cleared (long mode left: EFER.LMA drops, paging
 * off, addresses are physical), CR0.PG set again (LMA back), and a direct
 * far jump (EA ptr16:32) back to 64-bit mode. SWAPGS in 32-bit code is
 * #UD and leaves the GS bases alone. */
#include "guest.inc"
    .code64
    .globl _start
_start:
    SET_GATE 6, ud_handler
    mov $0xc0000102, %ecx            /* KERNEL_GS_BASE */
    mov $0x5000, %eax
    xor %edx, %edx
    wrmsr
    movl $0x11223344, %ebx
    movq $-1, %rsi
    ljmpl *farptr(%rip)
    FAIL 1

    .code32
c32:
    .byte 0x0f, 0x01, 0xf8          /* swapgs: #UD here */
    movl $0x12345678, %eax
    incl %eax                       /* 40: INC, not a REX prefix */
    movl %eax, RES_VAL              /* A3: moffs32 */
    movl RES_VAL, %edx              /* 8B 15: an absolute disp32 */
    cmpl $0x12345679, %edx
    jne bad32
    movl $0x1235, %esi              /* a 32-bit write zero-extends RSI */
    movw $KDS, %dx
    movl %edx, %ds
    btl $0, RES_VAL
    jnc bad32
    movl %cr0, %eax                 /* leave long mode */
    andl $0x7fffffff, %eax
    movl %eax, %cr0
    movl $0xc0000080, %ecx
    rdmsr
    testl $0x400, %eax              /* EFER.LMA */
    jnz bad32
    movl $0xabcdef01, RES_VAL + 4   /* paging off: physical */
    movl %cr0, %eax                 /* and enter it again */
    orl $0x80000000, %eax
    movl %eax, %cr0
    movl $0xc0000080, %ecx
    rdmsr
    testl $0x400, %eax
    jz bad32
    ljmpl $KCS, $back64
bad32:
    ljmpl $KCS, $fail64

    .code64
back64:
    cmpl $0x11223344, %ebx
    CHECK_EQ 3
    cmpl $0xabcdef01, RES_VAL + 4
    CHECK_EQ 4
    cmpq $0x1235, %rsi
    CHECK_EQ 5
    cmpq $1, ud_count(%rip)
    CHECK_EQ 6
    mov $0xc0000102, %ecx
    rdmsr
    cmp $0x5000, %eax                /* not swapped */
    CHECK_EQ 7
    movq $0xc0000080, %rcx
    rdmsr
    testl $0x400, %eax
    jz fail64
    PASS
fail64:
    FAIL 2

ud_handler:
    incq ud_count(%rip)
    addq $3, (%rsp)
    iretq

    .data
ud_count: .quad 0
farptr: .long c32
        .word KCS32
