/* An i386 Linux program (no libc) exercising what only 32-bit code has.
 *
 * It prints "legacy32 bcd XXXXXXXX": a hash over DAA, DAS, AAA, AAS and
 * AAM/AAD (bases 10, 16, 7, 255) of every AL (AH = AL ^ 0x5a), each with
 * CF and AF in or out, of AX and the flags each instruction defines (the
 * test computes the same hash from the manual's definitions). Then it
 * checks PUSHA/POPA (32- and 16-bit), ENTER with nesting levels and LEAVE,
 * PUSH/POP of DS, ES, SS and PUSH CS, LES/LDS, BOUND within bounds, ARPL,
 * SALC, a data segment with a base (an LDT entry from modify_ldt) in DS,
 * ES (STOS, MOVS, an override) and SS (PUSH/POP), and INTO
 * with OF clear, and exits with the number of the first check that failed
 * (0: all passed).
 * The hash: h = (h ^ v) * 16777619, from 0x811c9dc5, v = AX | flags << 16. */
    .code32
    .text
    .globl _start
_start:
    mov $0x811c9dc5, %ebp
    xor %esi, %esi                  /* the instruction: 0..11 */
op_loop:
    xor %edi, %edi                  /* flags in: bit 0 CF, bit 1 AF */
fl_loop:
    xor %ecx, %ecx                  /* AL */
al_loop:
    mov %ecx, %eax
    xor $0x5a, %eax
    shl $8, %eax
    mov %cl, %al
    mov %edi, %edx
    and $1, %edx
    mov %edi, %ebx
    and $2, %ebx
    shl $3, %ebx
    or %ebx, %edx
    or $0x202, %edx
    push %edx
    popf
    call *optab(,%esi,4)
    pushf
    pop %edx
    and masks(,%esi,4), %edx
    shl $16, %edx
    movzwl %ax, %eax
    or %edx, %eax
    xor %eax, %ebp
    imul $16777619, %ebp, %ebp
    inc %ecx
    cmp $256, %ecx
    jne al_loop
    inc %edi
    cmp $4, %edi
    jne fl_loop
    inc %esi
    cmp $12, %esi
    jne op_loop

    mov $hexout + 7, %edi           /* the hash in hex */
    mov $8, %ecx
1:  mov %ebp, %eax
    and $15, %eax
    movb digits(%eax), %al
    movb %al, (%edi)
    dec %edi
    shr $4, %ebp
    loop 1b
    mov $4, %eax                    /* write(1, line, len) */
    mov $1, %ebx
    mov $line, %ecx
    mov $linelen, %edx
    int $0x80

    /* PUSHA: EAX ECX EDX EBX ESP EBP ESI EDI, the first pushed highest */
    mov %esp, saved_esp
    mov $0x11111111, %eax
    mov $0x22222222, %ecx
    mov $0x33333333, %edx
    mov $0x44444444, %ebx
    mov $0x55555555, %ebp
    mov $0x66666666, %esi
    mov $0x77777777, %edi
    pusha
    mov $1, %ebx
    cmpl $0x77777777, (%esp)
    jne fail
    cmpl $0x66666666, 4(%esp)
    jne fail
    cmpl $0x55555555, 8(%esp)
    jne fail
    mov saved_esp, %eax
    cmp %eax, 12(%esp)              /* ESP as it was before PUSHA */
    jne fail
    cmpl $0x44444444, 16(%esp)
    jne fail
    cmpl $0x11111111, 28(%esp)
    jne fail
    lea 32(%esp), %eax
    cmp saved_esp, %eax
    jne fail
    movl $0x12345678, 12(%esp)      /* POPA skips the saved ESP */
    xor %eax, %eax
    xor %ecx, %ecx
    xor %edx, %edx
    xor %ebp, %ebp
    xor %esi, %esi
    xor %edi, %edi
    popa
    cmp saved_esp, %esp
    jne fail_esp
    mov $2, %eax
    cmp $0x44444444, %ebx
    jne fail_eax
    cmp $0x22222222, %ecx
    jne fail_eax
    cmp $0x33333333, %edx
    jne fail_eax
    cmp $0x55555555, %ebp
    jne fail_eax
    cmp $0x66666666, %esi
    jne fail_eax
    cmp $0x77777777, %edi
    jne fail_eax

    /* PUSHAW/POPAW: 2-byte slots, the upper halves kept */
    mov $0xaaaa1111, %eax
    mov $0xbbbb2222, %ecx
    pushaw
    mov $3, %ebx
    lea 16(%esp), %edx
    cmp saved_esp, %edx
    jne fail
    cmpw $0x2222, 12(%esp)
    jne fail
    cmpw $0x1111, 14(%esp)
    jne fail
    movw $0x5555, 14(%esp)          /* the AX POPAW will load */
    popaw
    mov $4, %ebx
    cmp $0xaaaa5555, %eax
    jne fail
    cmp $0xbbbb2222, %ecx
    jne fail
    cmp saved_esp, %esp
    jne fail_esp

    /* ENTER 16, 3: EBP, two frame pointers copied from the old frame, the
     * new frame pointer, 16 bytes; LEAVE undoes it */
    mov $oldframe + 8, %ebp         /* [EBP-4] and [EBP-8]: the old display */
    enter $16, $3
    mov $5, %ebx
    lea -4(%ebp), %eax              /* the new frame: just below the pushed EBP */
    mov saved_esp, %edx
    lea -4(%edx), %edx
    cmp %edx, %ebp
    jne fail
    cmpl $oldframe + 8, (%ebp)
    jne fail
    cmpl $0xd1d1d1d1, -4(%ebp)
    jne fail
    cmpl $0xd2d2d2d2, -8(%ebp)
    jne fail
    cmp %ebp, -12(%ebp)
    jne fail
    lea -28(%ebp), %eax
    cmp %eax, %esp
    jne fail
    leave
    mov $6, %ebx
    cmp $oldframe + 8, %ebp
    jne fail
    cmp saved_esp, %esp
    jne fail_esp

    /* segment registers: the selector in the slot's low 16 bits (Intel
     * leaves the upper ones, AMD zeroes them) */
    mov $7, %ebx
    mov %ds, %ecx
    push %ds
    pop %eax
    cmp %cx, %ax
    jne fail
    mov %cs, %ecx
    push %cs
    pop %eax
    cmp %cx, %ax
    jne fail
    mov %ss, %ecx
    push %ss
    pop %eax
    cmp %cx, %ax
    jne fail
    push %es
    pop %es
    push %ds
    pop %ds
    push %ss
    pop %ss
    mov %esp, %eax
    push %ds                        /* 4 bytes with a 32-bit operand ... */
    sub %esp, %eax
    cmp $4, %eax
    jne fail
    pop %ds
    mov %esp, %eax
    pushw %ds                       /* ... 2 with a 16-bit one */
    sub %esp, %eax
    cmp $2, %eax
    jne fail
    popw %ds
    mov $8, %ebx
    mov %ds, %eax
    cmp %cx, %ax                    /* DS and SS: both the user data selector */
    jne fail
    cmp saved_esp, %esp
    jne fail_esp

    /* LES/LDS: the user data selector from m16:32 */
    mov $9, %ebx
    mov %ds, %ecx
    mov %cx, farp + 4
    les farp, %eax
    cmp $0x1234, %eax
    jne fail
    mov %es, %eax
    cmp %cx, %ax
    jne fail
    lds farp, %eax
    cmp $0x1234, %eax
    jne fail
    /* BOUND within bounds; ARPL; SALC */
    mov $10, %ebx
    mov $7, %eax
    bound %eax, bounds
    mov %cx, %ax                    /* a user selector: RPL 3 already */
    mov $1, %edx
    arpl %dx, %ax
    jz fail
    and $0xfffc, %eax
    arpl %dx, %ax
    jnz fail
    test $3, %al
    jz fail
    stc
    .byte 0xd6                      /* SALC */
    cmp $0xff, %al
    jne fail
    /* (No far CALL here: in the nested harness QEMU 7.2's TCG pushes a
     * 32-bit far CALL's return address with supervisor rights, which SMAP
     * refuses, and the guest kernel oopses. sys_compat_legacy.S has it.) */

    /* A data segment based at 'based' with a 4 GiB limit, LDT entry 0
     * (selector 7): DS, ES and SS add its base. */
    mov $123, %eax                  /* modify_ldt(1, &ldtdesc, 16) */
    mov $1, %ebx
    mov $ldtdesc, %ecx
    mov $16, %edx
    int $0x80
    mov $11, %ebx
    test %eax, %eax
    jnz fail
    mov %ds, %ecx                   /* the flat selectors, to come back to */
    mov %ss, %ebp
    mov $7, %eax
    mov %eax, %ds
    mov 4, %edx                     /* DS:4 is based + 4 */
    mov %ecx, %ds
    cmp $0x600dcafe, %edx
    jne fail
    mov $12, %ebx
    mov %eax, %es
    mov $0x11223344, %eax
    mov $8, %edi
    stosl                           /* ES:8 */
    mov $srcword, %esi
    movsl                           /* DS:srcword (flat) to ES:12 */
    mov %es:4, %edx                 /* an override */
    mov %ecx, %es
    cmpl $0x11223344, based + 8
    jne fail
    cmpl $0x55667788, based + 12
    jne fail
    cmp $0x600dcafe, %edx
    jne fail
    mov $13, %ebx
    mov %esp, saved_esp
    mov $7, %eax
    mov %eax, %ss
    mov $64, %esp
    push $0xbeef                    /* SS:60 */
    pushl -56(%esp)                 /* SS:4, pushed at SS:56 */
    pop %edx
    pop %eax
    mov %ebp, %ss
    mov saved_esp, %esp
    cmp $0xbeef, %eax
    jne fail
    cmpl $0xbeef, based + 60
    jne fail
    cmp $0x600dcafe, %edx
    jne fail

    /* INTO with OF clear does nothing */
    xor %eax, %eax
    into
    xor %ebx, %ebx
    jmp exit

fail_esp:
    mov saved_esp, %esp
    jmp fail
fail_eax:
    mov %eax, %ebx
fail:
exit:
    mov $1, %eax                    /* exit(ebx) */
    int $0x80

op_daa: daa
    ret
op_das: das
    ret
op_aaa: aaa
    ret
op_aas: aas
    ret
op_aam10: .byte 0xd4, 10
    ret
op_aam16: .byte 0xd4, 16
    ret
op_aam7: .byte 0xd4, 7
    ret
op_aam255: .byte 0xd4, 255
    ret
op_aad10: .byte 0xd5, 10
    ret
op_aad16: .byte 0xd5, 16
    ret
op_aad7: .byte 0xd5, 7
    ret
op_aad255: .byte 0xd5, 255
    ret

    .data
optab:
    .long op_daa, op_das, op_aaa, op_aas
    .long op_aam10, op_aam16, op_aam7, op_aam255, op_aad10, op_aad16, op_aad7, op_aad255
masks:                              /* the flags each one defines */
    .long 0xd5, 0xd5, 0x11, 0x11
    .long 0xc4, 0xc4, 0xc4, 0xc4, 0xc4, 0xc4, 0xc4, 0xc4
digits:
    .ascii "0123456789abcdef"
line:
    .ascii "legacy32 bcd "
hexout:
    .ascii "00000000\n"
linelen = . - line
    .balign 4
oldframe:
    .long 0xd2d2d2d2, 0xd1d1d1d1, 0
saved_esp:
    .long 0
farp:
    .long 0x1234
    .word 0
bounds:
    .long 1, 7
    .balign 16
based:                              /* LDT entry 0's base */
    .long 0, 0x600dcafe, 0, 0
    .fill 16, 4, 0
srcword:
    .long 0x55667788
ldtdesc:                            /* struct user_desc */
    .long 0                         /* entry_number */
    .long based                     /* base_addr */
    .long 0xfffff                   /* limit, in pages: 4 GiB */
    .long 0x11                      /* seg_32bit, limit_in_pages; data, expands up */

