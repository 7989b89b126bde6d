/* HLT and interrupts through cpu_ops.intr(): the harness drives this guest
 * (see systest.c):
 *   1. sti; hlt          -> CPU_EXIT_HALT
 *   2. harness raises vector 0x40 -> handler runs, guest continues
 *   3. cli; hlt          -> HALT; an interrupt signalled now is not taken
 *   4. harness sends an NMI -> NMI handler, guest continues after HLT
 *   5. sti; nop          -> the pending 0x40 is taken after the STI shadow
 */
#include "guest.inc"
    .code64
    .globl _start
_start:
    SET_GATE 0x40, irq_handler
    SET_GATE 2, nmi_handler
    sti
    hlt
after_hlt1:
    cmpq $1, irq_count(%rip)
    CHECK_EQ 1
    lea after_hlt1(%rip), %rax
    cmp %rax, irq_rip(%rip)          /* delivered at the instruction after HLT */
    CHECK_EQ 2
    cli
    hlt
    /* woken by the NMI; the interrupt is still pending */
    cmpq $1, nmi_count(%rip)
    CHECK_EQ 3
    cmpq $1, irq_count(%rip)
    CHECK_EQ 4
    sti
sti_next:
    nop
    nop
    cli
    cmpq $2, irq_count(%rip)
    CHECK_EQ 5
    lea sti_next(%rip), %rax
    cmp %rax, irq_rip(%rip)          /* not inside the STI shadow */
    jne 1f
    FAIL 6
1:  PASS

irq_handler:
    incq irq_count(%rip)
    mov (%rsp), %rax
    mov %rax, irq_rip(%rip)
    iretq
nmi_handler:
    incq nmi_count(%rip)
    iretq

    .data
irq_count: .quad 0
irq_rip: .quad 0
nmi_count: .quad 0
