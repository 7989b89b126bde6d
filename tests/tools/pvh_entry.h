/* The ELF note that makes a guest enterable through PVH (Xen's
 * XEN_ELFNOTE_PHYS32_ENTRY: 32-bit protected mode, paging off, at _start),
 * and the start of its 32-bit code: include it where _start goes. */
    .section .note.pvh, "a", @note
    .balign 4
    .long 4                     /* name size */
    .long 4                     /* descriptor size */
    .long 18                    /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long _start

    .text
    .code32
    .globl _start
