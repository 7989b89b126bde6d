/* Spins forever (for KICK and instruction-limit tests). */
#include "guest.inc"
    .code64
    .globl _start
_start:
    inc %rax
    jmp _start
