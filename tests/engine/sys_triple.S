/* Triple fault: with an empty IDT every exception faults again; the engine
 * returns SHUTDOWN. */
#include "guest.inc"
    .code64
    .globl _start
_start:
    lidt idtr(%rip)
    ud2
    FAIL 1
    .data
idtr: .word 0
      .quad IDT
