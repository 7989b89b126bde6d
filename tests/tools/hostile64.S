/* hostile64: a small 64-bit guest that does what a hostile or broken guest
 * does, to check that a CPU backend gives each the architectural answer.
 * An ELF without a PVH note, so ember enters it in long mode (the 64-bit
 * boot protocol: identity-mapped 4 GiB with 2 MiB pages, RSI = boot_params).
 * On COM1 it prints one line per step, then loads an IDT of limit 0 and
 * executes INT3, which must end in a triple fault (ember's exit status 4):
 *
 *   <hostile>                  started
 *   #UD N                      N undefined or invalid opcodes each raised #UD
 *   #GP rdmsr ERR              an unknown MSR gave #GP with error code ERR
 *   #DE                        DIV by zero gave #DE
 *   #PF CR2 ERR                REP MOVSB ran into a not-present page
 *   rep done RCX RDI SUM       ...and, the page made present, finished
 *   #BP RIP-OFFSET             INT3 trapped with RIP after it
 *   <triple>                   last line before the triple fault
 *
 * Numbers are hexadecimal. The same program runs under KVM in the nested
 * harness, so the engine's output can be compared with hardware's.
 * A test program; not part of ember. */

#define COM1 0x3f8
#define IDT 0x200000
#define PT 0x300000         /* 4 KiB page table for 0x400000-0x5fffff */
#define PD0 0xb000          /* ember's page directory for the first GiB */
#define HOLE 0x401000       /* the page that starts not present */
#define SRC 0x500000
#define DST 0x400f00
#define LEN 0x200
#define STACK 0x280000

    .text
    .code64
    .globl _start
_start:
    mov $STACK, %rsp
    lea msg_start(%rip), %rsi
    call puts
    call setup_idt
    call setup_pages

    /* Undefined or invalid opcodes: each must raise #UD, counted. */
    movq $0, ud_count(%rip)
    lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    ud2
1:  lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    .byte 0x06              /* PUSH ES: invalid in 64-bit mode */
1:  lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    .byte 0xd6              /* SALC: invalid in 64-bit mode */
1:  lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    .byte 0xf0, 0x90        /* LOCK NOP: LOCK on an instruction that takes none */
1:  lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    .byte 0x0f, 0xff, 0xc0  /* UD0 */
1:  lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    .byte 0xc4, 0xe2, 0x79, 0x18, 0xc0 /* VEX (VBROADCASTSS): no AVX offered */
1:  lea msg_ud(%rip), %rsi
    call puts
    mov ud_count(%rip), %rax
    call puthex
    call newline

    /* An MSR nobody implements. */
    lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    mov $0xdeadbeef, %ecx
    rdmsr
1:  lea msg_gp(%rip), %rsi
    call puts
    mov last_error(%rip), %rax
    call puthex
    call newline

    /* Divide by zero. */
    lea 1f(%rip), %rax
    mov %rax, resume(%rip)
    xor %ecx, %ecx
    mov $1, %eax
    xor %edx, %edx
    div %ecx
1:  lea msg_de(%rip), %rsi
    call puts
    call newline

    /* REP MOVSB into a page that is not present: #PF mid-string, the
     * handler maps it, the string continues where it stopped. */
    mov $SRC, %rdi
    mov $LEN, %ecx
    xor %eax, %eax
2:  mov %al, (%rdi)
    inc %rdi
    add $7, %al
    loop 2b
    mov $SRC, %rsi
    mov $DST, %rdi
    mov $LEN, %ecx
    cld
    rep movsb
    mov %rcx, saved_rcx(%rip)
    mov %rdi, saved_rdi(%rip)
    lea msg_pf(%rip), %rsi
    call puts
    mov pf_cr2(%rip), %rax
    call puthex
    call space
    mov last_error(%rip), %rax
    call puthex
    call newline
    lea msg_rep(%rip), %rsi
    call puts
    mov saved_rcx(%rip), %rax
    call puthex
    call space
    mov saved_rdi(%rip), %rax
    call puthex
    call space
    mov $DST, %rsi           /* sum of the copied bytes */
    mov $LEN, %ecx
    xor %eax, %eax
    xor %edx, %edx
3:  movzbl (%rsi), %edx
    add %rdx, %rax
    inc %rsi
    loop 3b
    call puthex
    call newline

    /* INT3 traps: RIP in the frame is the next instruction. */
    lea bp_after(%rip), %rax
    mov %rax, resume(%rip)
    int3
bp_after:
    lea msg_bp(%rip), %rsi
    call puts
    mov bp_rip(%rip), %rax
    lea bp_after(%rip), %rdx
    sub %rdx, %rax
    call puthex
    call newline

    /* An IDT of limit 0: INT3 -> #GP -> #DF -> triple fault. */
    lea msg_triple(%rip), %rsi
    call puts
    lidt empty_idt(%rip)
    int3
    lea msg_survived(%rip), %rsi
    call puts
4:  hlt
    jmp 4b

/* --- exception handlers ------------------------------------------------- */

/* Without an error code: RIP at 0(%rsp). */
h_ud:
    incq ud_count(%rip)
    jmp resume_noerr
h_de:
    jmp resume_noerr
h_bp:
    push %rax
    mov 8(%rsp), %rax
    mov %rax, bp_rip(%rip)
    pop %rax
    iretq
resume_noerr:
    push %rax
    mov resume(%rip), %rax
    mov %rax, 8(%rsp)
    pop %rax
    iretq

/* With an error code: it at 0(%rsp), RIP at 8(%rsp). */
h_gp:
    push %rax
    mov 8(%rsp), %rax
    mov %rax, last_error(%rip)
    mov resume(%rip), %rax
    mov %rax, 16(%rsp)
    pop %rax
    add $8, %rsp
    iretq
h_pf:
    push %rax
    mov 8(%rsp), %rax
    mov %rax, last_error(%rip)
    mov %cr2, %rax
    mov %rax, pf_cr2(%rip)
    /* Map the page and return to the faulting instruction. */
    mov $(PT + ((HOLE - 0x400000) >> 12) * 8), %rax
    orq $3, (%rax)
    mov $HOLE, %rax
    invlpg (%rax)
    pop %rax
    add $8, %rsp
    iretq

/* --- setup ----------------------------------------------------------------- */

/* gate(vector in %edi, handler in %rsi): a 64-bit interrupt gate. */
set_gate:
    mov %edi, %eax
    shl $4, %rax
    add $IDT, %rax
    mov %si, (%rax)
    movw $0x10, 2(%rax)      /* ember's 64-bit code selector */
    movw $0x8e00, 4(%rax)    /* present, DPL 0, interrupt gate */
    mov %rsi, %rdx
    shr $16, %rdx
    mov %dx, 6(%rax)
    shr $16, %rdx
    mov %edx, 8(%rax)
    movl $0, 12(%rax)
    ret

setup_idt:
    mov $IDT, %rdi
    xor %eax, %eax
    mov $512, %ecx
    rep stosq
    mov $0, %edi
    lea h_de(%rip), %rsi
    call set_gate
    mov $3, %edi
    lea h_bp(%rip), %rsi
    call set_gate
    mov $6, %edi
    lea h_ud(%rip), %rsi
    call set_gate
    mov $13, %edi
    lea h_gp(%rip), %rsi
    call set_gate
    mov $14, %edi
    lea h_pf(%rip), %rsi
    call set_gate
    lidt idt_desc(%rip)
    ret

/* 0x400000-0x5fffff through 4 KiB pages, HOLE not present. */
setup_pages:
    mov $PT, %rdi
    mov $0x400003, %rax
    mov $512, %ecx
1:  mov %rax, (%rdi)
    add $8, %rdi
    add $0x1000, %rax
    loop 1b
    mov $(PT + ((HOLE - 0x400000) >> 12) * 8), %rax
    andq $~1, (%rax)
    mov $(PD0 + 2 * 8), %rax
    movq $(PT | 3), (%rax)
    mov %cr3, %rax
    mov %rax, %cr3
    ret

/* --- COM1 output ------------------------------------------------------------ */

putc:                        /* %al */
    push %rdx
    push %rax
    mov $(COM1 + 5), %dx
1:  in %dx, %al
    test $0x20, %al
    jz 1b
    pop %rax
    mov $COM1, %dx
    out %al, %dx
    pop %rdx
    ret

puts:                        /* NUL-terminated string at %rsi */
    push %rax
1:  lodsb
    test %al, %al
    jz 2f
    call putc
    jmp 1b
2:  pop %rax
    ret

puthex:                      /* %rax, without leading zeros */
    push %rcx
    push %rdx
    push %rbx
    mov %rax, %rdx
    mov $60, %ecx
    xor %ebx, %ebx           /* a digit was printed */
1:  mov %rdx, %rax
    shr %cl, %rax
    and $15, %eax
    test %ebx, %ebx
    jnz 2f
    test %eax, %eax
    jnz 2f
    test %ecx, %ecx
    jnz 3f
2:  mov $1, %ebx
    cmp $10, %al
    jb 4f
    add $('a' - '0' - 10), %al
4:  add $'0', %al
    call putc
3:  sub $4, %ecx
    jns 1b
    pop %rbx
    pop %rdx
    pop %rcx
    ret

space:
    mov $' ', %al
    jmp putc
newline:
    mov $'\n', %al
    jmp putc

    .data
    .balign 16
idt_desc:
    .word 4095
    .quad IDT
empty_idt:
    .word 0
    .quad 0
resume:     .quad 0
ud_count:   .quad 0
last_error: .quad 0
pf_cr2:     .quad 0
bp_rip:     .quad 0
saved_rcx:  .quad 0
saved_rdi:  .quad 0
msg_start:  .asciz "<hostile>\n"
msg_ud:     .asciz "#UD "
msg_gp:     .asciz "#GP rdmsr "
msg_de:     .asciz "#DE"
msg_pf:     .asciz "#PF "
msg_rep:    .asciz "rep done "
msg_bp:     .asciz "#BP "
msg_triple: .asciz "<triple>\n"
msg_survived: .asciz "survived a triple fault?\n"
