/* A 32-bit user process under a 64-bit kernel, as far as the engine runs
 * it: IRETQ into flat 32-bit code at CPL3, INT 0x80 from there to a 64-bit
 * handler (which sees the compatibility-mode CS in its frame) and IRETQ
 * back; then an instruction the engine does not run in 32-bit code (PUSH)
 * raises #UD at CPL3 instead of stopping the VM. */
#include "guest.inc"
#define GDT2  0xb000
#define UCS32 0x43
    .code64
    .globl _start
_start:
    SET_GATE 0x80, int80_handler, 0, 3
    SET_GATE 6, ud_handler
    mov $GDT, %rsi                          /* the harness's GDT plus 32-bit user code */
    mov $GDT2, %rdi
    mov $8, %ecx
    rep movsq
    movabs $0x00cffb000000ffff, %rax
    mov %rax, GDT2 + 0x40
    lgdt gdtr2(%rip)
    pushq $UDS
    pushq $USTACK
    pushq $0x2
    pushq $UCS32
    lea user32(%rip), %rax
    pushq %rax
    iretq

int80_handler:
    push %rax
    mov %eax, RES_VAL                       /* the process's EAX */
    mov 16(%rsp), %rax                      /* its CS */
    mov %rax, RES_VAL + 8
    mov 8(%rsp), %rax                       /* its EIP: after the INT */
    lea after_int(%rip), %rcx
    cmp %rcx, %rax
    CHECK_EQ 1
    pop %rax
    add $1, %eax                            /* a system call's result */
    iretq

ud_handler:
    cmpq $UCS32, 8(%rsp)
    CHECK_EQ 2
    lea push_at(%rip), %rcx
    cmp %rcx, (%rsp)
    CHECK_EQ 3
    cmpl $5, RES_VAL
    CHECK_EQ 4
    cmpq $UCS32, RES_VAL + 8
    CHECK_EQ 5
    cmp $6, %eax                            /* back in 32-bit code with the result */
    CHECK_EQ 6
    cmp $0x1234, %edx                       /* and went on there */
    CHECK_EQ 7
    PASS

gdtr2:
    .word 0x47
    .quad GDT2

    .code32
user32:
    mov $5, %eax
    int $0x80
after_int:
    mov $0x1234, %edx
push_at:
    push %eax
    hlt
