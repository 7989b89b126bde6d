/* A far jump to a 32-bit code segment: compatibility mode is not
 * implemented, so the engine stops with CPU_EXIT_ERROR (never executes it
 * wrongly). */
#include "guest.inc"
    .code64
    .globl _start
_start:
    ljmpl *farptr(%rip)
    FAIL 1
    .data
farptr: .long 0x1000
        .word KCS32
