/* A 32-bit user process under a 64-bit kernel, as far as the engine runs
 * it: IRETQ into flat 32-bit code at CPL3, INT 0x80 from there to a 64-bit
 * handler (which sees the compatibility-mode CS in its frame) and IRETQ
 * back; PUSH/POP, CALL/RET and LEAVE on the 32-bit stack (4-byte slots);
 * x87 and SSE with 32-bit addresses; PUSHFD/POPFD; a GS-relative access
 * at a negative offset (the linear address wraps at 4 GiB); then an instruction the engine does not
 * run in 32-bit code (a far jump to a code segment with a base) raises #UD at CPL3 instead of
 * stopping the VM. Then a 64-bit user
 * program's LRETQ into the same 32-bit code segment, SYSCALL from there
 * (AMD's SYSCALL32: to CSTAR) and SYSRETL back, and a far jump to a 16-bit
 * code segment, which the engine does not run: #UD again. */
#include "guest.inc"
#define GDT2  0xb000
#define UCS32 0x43
#define UDS32 0x4b
#define UCS16 0x53
#define UTLS  0x5b       /* user data with base TLS_BASE, loaded into GS */
#define UCSB  0x63       /* 32-bit user code with a base, which the engine does not run */
#define TLS_BASE 0x300000
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
    movabs $0x00cff3000000ffff, %rax        /* user data, SYSRETL's SS */
    mov %rax, GDT2 + 0x48
    movabs $0x0000fb000000ffff, %rax        /* 16-bit user code (D = 0) */
    mov %rax, GDT2 + 0x50
    movabs $0x00cff3300000ffff, %rax        /* user data based at TLS_BASE */
    mov %rax, GDT2 + 0x58
    movabs $0x00cffb001000ffff, %rax        /* 32-bit user code based at 0x1000 */
    mov %rax, GDT2 + 0x60
    movl $0x7e57, TLS_BASE - 4              /* what %gs:-4 reads: the sum wraps at 4 GiB */
    mov $0xc0000081, %ecx                   /* STAR: SYSCALL CS 0x08, SYSRETL CS 0x43 */
    xor %eax, %eax
    mov $0x00400008, %edx
    wrmsr
    mov $0xc0000083, %ecx                   /* CSTAR: SYSCALL from 32-bit code */
    lea cstar_entry(%rip), %rax
    mov %rax, %rdx
    shr $32, %rdx
    wrmsr
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
    cmpl $5, (%rsp)                         /* the first call: its EIP is after the INT */
    jne 1f
    mov 8(%rsp), %rax
    lea after_int(%rip), %rcx
    cmp %rcx, %rax
    CHECK_EQ 1
1:  pop %rax
    add $1, %eax                            /* a system call's result */
    iretq

ud_handler:
    incq ud_count(%rip)
    cmpq $2, ud_count(%rip)
    je second_ud
    cmpq $UCS32, 8(%rsp)
    CHECK_EQ 2
    lea fpu_at(%rip), %rcx
    cmp %rcx, (%rsp)
    CHECK_EQ 3
    cmp $0x5678, %ebx                       /* popped back */
    CHECK_EQ 11
    cmp $0x5678, %edi                       /* read through the frame */
    CHECK_EQ 12
    cmp $USTACK, %esi                       /* ESP where it started */
    CHECK_EQ 13
    cmpl $0x5678, USTACK - 4                /* 4-byte slots */
    CHECK_EQ 14
    lea after_call(%rip), %rcx
    cmp %ecx, USTACK - 8                    /* CALL's 32-bit return address */
    CHECK_EQ 15
    cmpl $USTACK - 8, USTACK - 12           /* the EBP that LEAVE popped */
    CHECK_EQ 16
    cmpl $2, fpu_out(%rip)                  /* FLD1, FADD, FISTP */
    CHECK_EQ 23
    cmpl $6, sse_out(%rip)                  /* MOVD, PADDD, MOVD */
    CHECK_EQ 24
    cmpl $12, sse_out + 4(%rip)             /* through (%edi) */
    CHECK_EQ 25
    cmpl $0x200000, flags_diff(%rip)        /* PUSHFD/POPFD */
    CHECK_EQ 26
    cmpl $USTACK, esp_after(%rip)           /* 4 bytes each way */
    CHECK_EQ 27
    cmpl $0x7e57, tls_read(%rip)            /* GS base + 0xfffffffc, wrapped */
    CHECK_EQ 28
    cmpl $5, RES_VAL
    CHECK_EQ 4
    cmpq $UCS32, RES_VAL + 8
    CHECK_EQ 5
    cmp $6, %eax                            /* back in 32-bit code with the result */
    CHECK_EQ 6
    cmp $0x1234, %edx                       /* and went on there */
    CHECK_EQ 7
    lea user64(%rip), %rax                  /* now a 64-bit user program */
    mov %rax, (%rsp)
    movq $UCS, 8(%rsp)
    iretq

second_ud:                                  /* its far jump to 16-bit code */
    cmpq $UCS32, 8(%rsp)
    CHECK_EQ 8
    lea jmp16_at(%rip), %rcx
    cmp %rcx, (%rsp)
    CHECK_EQ 9
    cmpl $0x77, RES_VAL                     /* the INT 0x80 after its LRETQ ... */
    CHECK_EQ 10
    cmpq $UCS32, RES_VAL + 8                /* ... and SYSCALL, SYSRETL */
    CHECK_EQ 17
    cmpq $1, syscall_seen(%rip)
    CHECK_EQ 18
    cmp $0x99, %ebx                         /* SYSRETL kept the result */
    CHECK_EQ 19
    PASS

cstar_entry:                                /* SYSCALL from 32-bit code, at CPL0 */
    cmp $0x99, %eax
    CHECK_EQ 20
    lea after_syscall(%rip), %rdx           /* RCX: the next EIP */
    cmp %rdx, %rcx
    CHECK_EQ 21
    mov %cs, %edx
    cmp $KCS, %edx
    CHECK_EQ 22
    movq $1, syscall_seen(%rip)
    sysretl

syscall_seen:
    .quad 0
fpu_out:
    .quad 0
sse_out:
    .quad 0
flags_diff:
    .quad 0
esp_after:
    .quad 0
tls_read:
    .quad 0

ud_count:
    .quad 0

user64:
    pushq $UCS32
    lea user32b(%rip), %rax
    pushq %rax
    lretq

gdtr2:
    .word 0x67
    .quad GDT2

    .code32
user32:
    mov $5, %eax
    int $0x80
after_int:
    mov $0x1234, %edx
    mov $USTACK - 8, %ebp
    push $0x5678
    call sub32
after_call:
    pop %ebx
    mov %esp, %esi
    fld1
    fadd %st(0), %st(0)
    fistpl fpu_out
    mov $3, %ecx
    movd %ecx, %xmm0
    paddd %xmm0, %xmm0
    movd %xmm0, sse_out
    push %edi
    mov $sse_out, %edi
    movd (%edi), %xmm1
    paddd %xmm1, %xmm1
    movd %xmm1, 4(%edi)
    pop %edi
    sub $64, %esp                           /* (keep the slots checked above) */
    pushf                                   /* EFLAGS.ID toggled, as CPUID probes do */
    pop %ecx
    mov %ecx, %ebp
    xor $0x200000, %ebp
    push %ebp
    popf
    pushf
    pop %ebp
    xor %ecx, %ebp
    mov %ebp, flags_diff
    add $64, %esp
    mov %esp, esp_after
    mov $UTLS, %ecx
    mov %ecx, %gs
    mov %gs:0xfffffffc, %ecx
    mov %ecx, tls_read
fpu_at:
    ljmp $UCSB, $0
    hlt
sub32:
    push %ebp
    mov %esp, %ebp
    mov 8(%ebp), %edi
    leave
    ret
user32b:
    mov $0x99, %eax
    syscall
after_syscall:
    mov %eax, %ebx
    mov $0x77, %eax
    int $0x80
jmp16_at:
    ljmp $UCS16, $0
