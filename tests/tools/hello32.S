/* An i386 Linux program (no libc): writes a line through INT 0x80 and exits
 * 42; with any argument it first executes PUSH, which ember's engine does not
 * run in 32-bit code (the process then dies of SIGILL; the VM goes on). */
    .code32
    .text
    .globl _start
_start:
    mov $4, %eax                /* write(1, msg, len) */
    mov $1, %ebx
    mov $msg, %ecx
    mov $len, %edx
    int $0x80
    mov (%esp), %eax            /* argc */
    cmp $1, %eax
    je 1f
    push %eax
1:  mov $1, %eax                /* exit(42) */
    mov $42, %ebx
    int $0x80

    .data
msg:
    .ascii "hello from 32-bit code\n"
len = . - msg
