/* An i386 Linux program (no libc): writes a line through INT 0x80 from a
 * subroutine (CALL/RET, PUSH/POP on the 32-bit stack) and exits 42; with any
 * argument it first executes x87's FLD1, which ember's engine does not run
 * in 32-bit code (the process then dies of SIGILL; the VM goes on). */
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
    fld1
1:  mov $1, %eax                /* exit(42) */
    mov $42, %ebx
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
msg:
    .ascii "hello from 32-bit code\n"
len = . - msg
