/* An i386 Linux program (no libc): writes a line through INT 0x80 from a
 * subroutine (CALL/RET, PUSH/POP on the 32-bit stack), adds 1 + 1 with x87
 * and 20 + 20 with SSE2 into its exit status (42); with any argument it
 * first executes an LEA with 16-bit addressing, which ember's engine does
 * not run in 32-bit code (the process then dies of SIGILL; the VM goes on). */
    .code32
    .text
    .globl _start
_start:
    mov (%esp), %eax            /* argc */
    push $len
    push $msg
    call print
    add $8, %esp
    cmp $1, %eax
    je 1f
    addr16 lea (%bx,%si), %eax
1:  fld1                        /* 1 + 1 */
    fadd %st(0), %st(0)
    fistpl two
    mov $20, %ecx               /* 20 + 20 */
    movd %ecx, %xmm0
    paddd %xmm0, %xmm0
    movd %xmm0, %ebx
    add two, %ebx
    mov $1, %eax                /* exit(42) */
    int $0x80

print:                          /* print(buf, len): write(1, buf, len) */
    push %ebp
    mov %esp, %ebp
    push %eax
    push %ebx
    mov $4, %eax
    mov $1, %ebx
    mov 8(%ebp), %ecx
    mov 12(%ebp), %edx
    int $0x80
    pop %ebx
    pop %eax
    leave
    ret

    .data
two:
    .long 0
msg:
    .ascii "hello from 32-bit code\n"
len = . - msg
