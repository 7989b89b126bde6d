/* An i386 Linux program (no libc): writes a line through INT 0x80 from a
 * subroutine (CALL/RET, PUSH/POP on the 32-bit stack), adds 1 + 1 with x87
 * and 20 + 20 with SSE2 into its exit status (42), with an LEA of 16-bit
 * addressing (whose offset wraps at 64 KiB) adding 0 when right. With any
 * argument it first installs a 32-bit code segment with a base in its LDT
 * (modify_ldt) and jumps there and back, which ember's engine does not run
 * (the process then dies of SIGILL; the VM goes on). Debian's cloud
 * kernel refuses 16-bit segments (no CONFIG_X86_16BIT). */
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
    mov $123, %eax              /* modify_ldt(1, &based_desc, 16) */
    mov $1, %ebx
    mov $based_desc, %ecx
    mov $16, %edx
    int $0x80
    test %eax, %eax
    jnz no_ldt
    ljmp $0x7, $0               /* LDT entry 0, RPL 3 */
1:  fld1                        /* 1 + 1 */
    fadd %st(0), %st(0)
    fistpl two
    mov $20, %ecx               /* 20 + 20 */
    movd %ecx, %xmm0
    paddd %xmm0, %xmm0
    movd %xmm0, %ebx
    add two, %ebx
    mov $0x1fff0, %edx          /* 16-bit addressing: 0xfff0 + 0x13 + 4 */
    mov $0x13, %esi
    xchg %edx, %ebx
    addr16 lea 4(%bx,%si), %eax /* = 7: the sum wraps at 64 KiB */
    xchg %edx, %ebx
    sub $7, %eax
    add %eax, %ebx
    mov $1, %eax                /* exit(42) */
    int $0x80

back32:                         /* from the based code */
    jmp 1b
no_ldt:                         /* modify_ldt failed: exit(3) */
    mov $3, %ebx
    mov $1, %eax
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

based_code:                     /* at offset 0 of the LDT segment: back to Linux's */
    ljmp $0x23, $back32         /* flat 32-bit user code segment */

    .data
based_desc:                     /* struct user_desc: entry 0, 32-bit code at based_code */
    .long 0, based_code, 0xffff, 0x45
two:
    .long 0
msg:
    .ascii "hello from 32-bit code\n"
len = . - msg
