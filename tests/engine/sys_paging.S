/* Paging: A/D bits, not-present/protection/reserved-bit/NX faults with
 * their error codes and CR2, CR0.WP, INVLPG, 2 MiB and 1 GiB pages. */
#include "guest.inc"
    .code64
    .globl _start
_start:
    SET_GATE 14, pf_handler

    /* --- A and D bits on a 4K page --- */
    mov $PTE(SCRATCH), %rbx
    andq $~0x60, (%rbx)              /* clear A and D */
    invlpg SCRATCH
    mov SCRATCH, %rax                /* read */
    mov (%rbx), %rax
    test $0x20, %al
    jnz 1f
    FAIL 1                           /* A not set by a read */
1:  test $0x40, %al
    jz 1f
    FAIL 2                           /* D set by a read */
1:  movq $5, SCRATCH                 /* write */
    mov (%rbx), %rax
    test $0x40, %al
    jnz 1f
    FAIL 3                           /* D not set by a write */
1:
    /* --- not present: read err 0, write err 2, CR2 --- */
    mov $PTE(SCRATCH + 0x4000), %rbx
    andq $~1, (%rbx)
    invlpg SCRATCH + 0x4000
    lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    mov SCRATCH + 0x4010, %rax
1:  cmpq $1, pf_count(%rip)
    CHECK_EQ 10
    cmpq $0, pf_err(%rip)
    CHECK_EQ 11
    cmpq $(SCRATCH + 0x4010), pf_cr2(%rip)
    CHECK_EQ 12
    lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    movb $1, SCRATCH + 0x4fff
1:  cmpq $2, pf_err(%rip)
    CHECK_EQ 13
    cmpq $(SCRATCH + 0x4fff), pf_cr2(%rip)
    CHECK_EQ 14
    orq $1, (%rbx)                   /* present again: no INVLPG needed */
    movb $1, SCRATCH + 0x4fff

    /* --- write protection: err 3 with CR0.WP, allowed without --- */
    mov $PTE(SCRATCH + 0x1000), %rbx
    andq $~2, (%rbx)
    invlpg SCRATCH + 0x1000
    lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    movl $7, SCRATCH + 0x1008
1:  cmpq $3, pf_err(%rip)
    CHECK_EQ 20
    cmpq $(SCRATCH + 0x1008), pf_cr2(%rip)
    CHECK_EQ 21
    mov %cr0, %rax
    and $~(1 << 16), %rax            /* WP off */
    mov %rax, %cr0
    movq pf_count(%rip), %r12
    movl $7, SCRATCH + 0x1008        /* allowed now */
    cmpq pf_count(%rip), %r12
    CHECK_EQ 22
    cmpl $7, SCRATCH + 0x1008
    CHECK_EQ 23
    or $(1 << 16), %rax
    mov %rax, %cr0
    orq $2, (%rbx)                   /* writable again */
    invlpg SCRATCH + 0x1000

    /* --- reserved bit (bit 51 with 40 physical bits): err 9 --- */
    mov $PTE(SCRATCH + 0x5000), %rbx
    mov $(1 << 51), %rax
    or %rax, (%rbx)
    invlpg SCRATCH + 0x5000
    lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    mov SCRATCH + 0x5000, %rax
1:  cmpq $9, pf_err(%rip)
    CHECK_EQ 30
    mov $(1 << 51), %rax
    not %rax
    and %rax, (%rbx)
    invlpg SCRATCH + 0x5000

    /* --- NX: a call into an NX page faults with err 0x11, CR2 = target --- */
    movb $0xc3, SCRATCH + 0x2000     /* ret */
    mov $PTE(SCRATCH + 0x2000), %rbx
    mov $(1 << 63), %rax
    or %rax, (%rbx)
    invlpg SCRATCH + 0x2000
    lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    mov %rsp, %r13
    mov $(SCRATCH + 0x2000), %rax
    call *%rax
1:  mov %r13, %rsp
    cmpq $0x11, pf_err(%rip)
    CHECK_EQ 40
    cmpq $(SCRATCH + 0x2000), pf_cr2(%rip)
    CHECK_EQ 41
    btrq $63, (%rbx)
    invlpg SCRATCH + 0x2000
    mov $(SCRATCH + 0x2000), %rax
    call *%rax                       /* executes now */

    /* --- INVLPG: a changed mapping is used only after INVLPG --- */
    movq $0xaaaa, SCRATCH + 0x6000
    movq $0xbbbb, SCRATCH + 0x7000
    mov $PTE(SCRATCH + 0x6000), %rbx
    mov (%rbx), %rax
    mov SCRATCH + 0x6000, %rcx       /* fills the TLB */
    cmp $0xaaaa, %rcx
    CHECK_EQ 50
    add $0x1000, %rax                /* point at the 0xbbbb page */
    mov %rax, (%rbx)
    invlpg SCRATCH + 0x6000
    mov SCRATCH + 0x6000, %rcx
    cmp $0xbbbb, %rcx
    CHECK_EQ 51

    /* --- 2 MiB and 1 GiB pages (own tables at 0x300000) --- */
    mov %cr3, %rax
    and $~0xfff, %rax
    mov (%rax), %rbx                 /* PML4[0] -> PDPT */
    and $~0xfff, %rbx
    movq $(0x300000 | 3), 8(%rbx)    /* PDPT[1]: VA 1 GiB -> PD at 0x300000 */
    movq $(0x200000 | 0x83), 0x300000 /* PD[0]: 2 MiB page -> 0x200000 */
    movq $(0 | 0x83), 16(%rbx)       /* PDPT[2]: 1 GiB page -> 0 */
    mov %cr3, %rax
    mov %rax, %cr3
    movq $0x1234567, SCRATCH + 0x1238
    mov 0x40001238, %rax
    cmp $0x1234567, %rax
    CHECK_EQ 60
    mov $(0x80000000 + SCRATCH + 0x1240), %ecx
    movq $0x7654321, (%rcx)
    mov SCRATCH + 0x1240, %rax
    cmp $0x7654321, %rax
    CHECK_EQ 61
    mov 0x300000, %rax               /* the 2M PDE got A */
    test $0x20, %al
    jnz 1f
    FAIL 62
1:
    PASS

pf_handler:
    pop %rax
    mov %rax, pf_err(%rip)
    mov %cr2, %rax
    mov %rax, pf_cr2(%rip)
    incq pf_count(%rip)
    mov resume(%rip), %rax
    mov %rax, (%rsp)
    iretq

    .data
resume: .quad 0
pf_err: .quad 0
pf_cr2: .quad 0
pf_count: .quad 0
