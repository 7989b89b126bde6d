/* Rings: IRETQ to CPL3, INT n through DPL3 gates with the stack switch to
 * RSP0 and to an IST stack, #GP error codes for gate checks, user-mode
 * #PF error codes, SYSCALL/SYSRET round trips. */
#include "guest.inc"
    .code64
    .globl _start
_start:
    SET_GATE 0x80, int80, 0, 3
    SET_GATE 0x81, int81, 1, 3
    SET_GATE 0x82, int82, 0, 0
    SET_GATE 13, gp_handler, 0, 0
    SET_GATE 14, pf_handler, 2, 0
    /* SYSCALL/SYSRET: kernel CS 0x08/SS 0x10, user SS 0x18|3, CS 0x20|3 */
    mov $0xc0000081, %ecx
    xor %eax, %eax
    mov $((0x10 << 16) | 0x08), %edx
    wrmsr
    mov $0xc0000082, %ecx
    lea syscall_entry(%rip), %rax
    mov %rax, %rdx
    shr $32, %rdx
    wrmsr
    mov $0xc0000084, %ecx
    mov $0x600, %eax                 /* SFMASK: IF DF */
    xor %edx, %edx
    wrmsr
    /* a supervisor-only page for the user-mode faults */
    andq $~4, PTE(SCRATCH + 0x3000)
    invlpg SCRATCH + 0x3000
    TO_USER user_code, 0x202

user_code:
    mov %cs, %ax
    cmp $UCS, %ax
    CHECK_EQ 1
    /* INT 0x80: CPL change, RSP0 stack, frame contents */
    mov $0x11, %rdi
    mov %rsp, %r12
    int $0x80
    cmp $0x11 + 1, %rdi
    CHECK_EQ 2
    cmp %rsp, %r12
    CHECK_EQ 3
    /* INT 0x81: IST1 */
    int $0x81
    cmp $0x81, %rdi
    CHECK_EQ 4
    /* INT 0x82: DPL0 gate from CPL3 -> #GP(0x82*8+2) */
    lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    int $0x82
1:  cmpq $(0x82 * 8 + 2), gp_err(%rip)
    CHECK_EQ 5
    /* HLT at CPL3 -> #GP(0) */
    lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    hlt
1:  cmpq $0, gp_err(%rip)
    CHECK_EQ 6
    cmpq $2, gp_count(%rip)
    CHECK_EQ 7
    /* user read/write of a supervisor page: #PF 5 / 7 */
    lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    mov SCRATCH + 0x3010, %rax
1:  cmpq $5, pf_err(%rip)
    CHECK_EQ 8
    lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    movq $1, SCRATCH + 0x3010
1:  cmpq $7, pf_err(%rip)
    CHECK_EQ 9
    cmpq $(SCRATCH + 0x3010), pf_cr2(%rip)
    CHECK_EQ 10
    /* SYSCALL/SYSRET */
    mov $0x77, %rdi
    pushf
    orq $0x400, (%rsp)               /* DF set: SFMASK clears it in the kernel */
    popf
    syscall
after_syscall:
    cld
    cmp $0x78, %rdi
    CHECK_EQ 11
    mov %cs, %ax
    cmp $UCS, %ax
    CHECK_EQ 12
    mov %ss, %ax
    cmp $UDS, %ax
    CHECK_EQ 13
    pushf
    pop %rax
    test $0x200, %eax                /* IF back from R11 */
    jnz 1f
    FAIL 14
1:
    /* back to the kernel to finish */
    mov $0xdead, %rdi
    int $0x80
    FAIL 15

int80:
    /* interrupt gate from CPL3: RSP0 stack, 16-byte aligned frame */
    mov %cs, %ax
    cmp $KCS, %ax
    CHECK_EQ 20
    lea 5*8(%rsp), %rax
    cmp $RSP0_TOP, %rax
    CHECK_EQ 21
    cmpq $UCS, 8(%rsp)
    CHECK_EQ 22
    cmpq $UDS, 32(%rsp)
    CHECK_EQ 23
    pushf
    pop %rax
    test $0x200, %eax                /* IF cleared by an interrupt gate */
    jz 1f
    FAIL 24
1:  cmp $0xdead, %rdi
    jne 1f
    PASS
1:  inc %rdi
    iretq

int81:
    lea 5*8(%rsp), %rax
    cmp $IST1_TOP, %rax
    CHECK_EQ 30
    mov $0x81, %rdi
    iretq

int82:
    FAIL 31

gp_handler:
    pop %rax
    mov %rax, gp_err(%rip)
    incq gp_count(%rip)
    mov resume(%rip), %rax
    mov %rax, (%rsp)
    iretq

pf_handler:
    lea 6*8(%rsp), %rax              /* IST2 with an error code */
    cmp $IST2_TOP, %rax
    CHECK_EQ 40
    pop %rax
    mov %rax, pf_err(%rip)
    mov %cr2, %rax
    mov %rax, pf_cr2(%rip)
    mov resume(%rip), %rax
    mov %rax, (%rsp)
    iretq

syscall_entry:
    mov %cs, %ax
    cmp $KCS, %ax
    CHECK_EQ 50
    mov %ss, %ax
    cmp $KDS, %ax
    CHECK_EQ 51
    lea after_syscall(%rip), %rax
    cmp %rax, %rcx
    CHECK_EQ 52
    test $0x400, %r11                /* user RFLAGS saved with DF */
    jnz 1f
    FAIL 53
1:  pushf
    pop %rax
    test $0x600, %eax                /* IF and DF masked */
    jz 1f
    FAIL 54
1:  inc %rdi
    sysretq

    .data
resume: .quad 0
gp_err: .quad 0
gp_count: .quad 0
pf_err: .quad 0
pf_cr2: .quad 0
