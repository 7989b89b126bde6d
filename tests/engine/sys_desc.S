/* Descriptor tables and system registers: SGDT/SIDT/STR/SLDT, LLDT and a
 * segment from the LDT, LAR/LSL/VERR/VERW, far RET/JMP/CALL through the
 * GDT at the same privilege, FS/GS bases through MSRs and SWAPGS,
 * unknown MSRs (#GP), debug registers, TSC/RDTSCP/TSC_AUX, and I/O
 * permission through IOPL and the TSS bitmap. */
#include "guest.inc"
#define LDT_ADDR 0x9800
    .code64
    .globl _start
_start:
    SET_GATE 13, gp_handler
    SET_GATE 6, ud_handler
    SET_GATE 0x80, int80, 0, 3
    /* SGDT/SIDT/STR/SLDT */
    sgdt scratch(%rip)
    cmpw $(8 * 8 - 1), scratch(%rip)
    CHECK_EQ 1
    cmpq $GDT, scratch + 2(%rip)
    CHECK_EQ 2
    sidt scratch(%rip)
    cmpq $IDT, scratch + 2(%rip)
    CHECK_EQ 3
    str %ax
    cmp $TSS_SEL, %ax
    CHECK_EQ 4
    /* an LDT in GDT slot 8-9 (selector 0x40) with one data segment */
    mov $(LDT_ADDR & 0xffffff), %eax
    shl $16, %rax
    or $0x0f, %rax                   /* limit 15: two descriptors */
    mov $0x82, %rbx                  /* present, type 2 (LDT) */
    shl $40, %rbx
    or %rbx, %rax
    mov %rax, GDT + 8 * 8
    movq $0, GDT + 9 * 8
    lgdt gdtr2(%rip)
    movq $0, LDT_ADDR
    mov $0x00cf93000000ffff, %rax    /* LDT[1]: data, DPL0 */
    mov %rax, LDT_ADDR + 8
    mov $0x40, %ax
    lldt %ax
    sldt %bx
    cmp $0x40, %bx
    CHECK_EQ 10
    mov $0x0c, %ax                   /* LDT index 1, TI=1 */
    mov %ax, %es
    mov %es, %bx
    cmp $0x0c, %bx
    CHECK_EQ 11
    /* LAR/LSL/VERR/VERW */
    mov $UCS, %eax
    lar %eax, %ecx
    CHECK_EQ 12
    and $0x00ffff00, %ecx
    cmp $0x00affb00, %ecx             /* AMD returns limit 19:16 too */
    CHECK_EQ 13
    mov $KDS, %eax
    lsl %eax, %ecx
    CHECK_EQ 14
    cmp $0xffffffff, %ecx
    CHECK_EQ 15
    mov $0x78, %eax                  /* beyond the GDT limit: ZF=0 */
    lsl %eax, %ecx
    jnz 1f
    FAIL 16
1:  mov $KCS, %eax
    verw %ax                         /* code: not writable */
    jnz 1f
    FAIL 17
1:  verr %ax
    CHECK_EQ 18
    /* far return and far jump/call through the GDT, same privilege */
    pushq $KCS
    lea 1f(%rip), %rax
    push %rax
    lretq
1:  ljmpl *farjmp(%rip)
    FAIL 20
far_target:
    lcall *farcall(%rip)
    cmpq $1, called(%rip)
    CHECK_EQ 21
    /* FS/GS bases through MSRs; SWAPGS */
    movq $0x4242, SCRATCH + 0x10
    mov $0xc0000100, %ecx
    mov $SCRATCH, %eax
    xor %edx, %edx
    wrmsr
    mov %fs:0x10, %rax
    cmp $0x4242, %rax
    CHECK_EQ 30
    mov $0xc0000102, %ecx            /* KERNEL_GS_BASE */
    mov $(SCRATCH + 8), %eax
    wrmsr
    swapgs
    mov %gs:0x8, %rax
    cmp $0x4242, %rax
    CHECK_EQ 31
    swapgs
    mov $0xc0000101, %ecx
    rdmsr
    test %eax, %eax                  /* GS base is 0 again */
    CHECK_EQ 32
    /* an MSR nobody owns: #GP(0) */
    lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    mov $0x12345, %ecx
    rdmsr
1:  cmpq $1, gp_count(%rip)
    CHECK_EQ 33
    /* a non-canonical LSTAR: #GP(0) */
    lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    mov $0xc0000082, %ecx
    xor %eax, %eax
    mov $0x80000000, %edx
    wrmsr
1:  cmpq $2, gp_count(%rip)
    CHECK_EQ 34
    /* debug registers: DR4/DR5 alias DR6/DR7 without CR4.DE, #UD with it */
    mov $0x401, %rax
    mov %rax, %dr7
    mov %dr5, %rbx
    cmp $0x401, %rbx
    CHECK_EQ 40
    mov %cr4, %rax
    or $8, %rax
    mov %rax, %cr4
    lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    mov %dr4, %rbx
1:  cmpq $1, ud_count(%rip)
    CHECK_EQ 41
    mov %cr4, %rax
    and $~8, %rax
    mov %rax, %cr4
    /* TSC: increasing; RDTSCP gives TSC_AUX in ECX */
    mov $0xc0000103, %ecx
    mov $0x77, %eax
    xor %edx, %edx
    wrmsr
    rdtsc
    shl $32, %rdx
    or %rax, %rdx
    mov %rdx, %r12
    rdtscp
    cmp $0x77, %ecx
    CHECK_EQ 50
    shl $32, %rdx
    or %rax, %rdx
    cmp %r12, %rdx
    ja 1f
    FAIL 51
1:
    /* I/O permission: the TSS bitmap allows port 0x80 only; IOPL 3 all */
    andb $~1, TSS + 0x68 + 0x80 / 8
    TO_USER user_io, 0x2
user_io:
    out %al, $0x80                   /* allowed by the bitmap */
    lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    out %al, $0x81                   /* denied */
1:  cmpq $3, gp_count(%rip)
    CHECK_EQ 60
    int $0x80                        /* sets IOPL 3 for the return */
    out %al, $0x81                   /* allowed by IOPL */
    cli                              /* IOPL 3: allowed */
    int $0x80
    FAIL 61

int80:
    cmpq $0, stage(%rip)
    jne 1f
    incq stage(%rip)
    orq $0x3000, 16(%rsp)            /* IOPL 3 in the frame */
    iretq
1:  PASS

far_target2:
    incq called(%rip)
    lretl

gp_handler:
    incq gp_count(%rip)
    add $8, %rsp
    mov resume(%rip), %rax
    mov %rax, (%rsp)
    iretq
ud_handler:
    incq ud_count(%rip)
    mov resume(%rip), %rax
    mov %rax, (%rsp)
    iretq

    .data
gdtr2: .word 10 * 8 - 1
       .quad GDT
farjmp: .long far_target
        .word KCS
farcall: .long far_target2
        .word KCS
scratch: .quad 0, 0
resume: .quad 0
gp_count: .quad 0
ud_count: .quad 0
called: .quad 0
stage: .quad 0
