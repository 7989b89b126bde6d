/* 32-bit kernel code the engine does not run (here a descriptor-table
 * load, LGDT in 32-bit code) stops it with an error naming the
 * instruction, never a guess. */
#include "guest.inc"
    .code64
    .globl _start
_start:
    ljmpl *farptr(%rip)
    FAIL 1
    .code32
c32:
    nop
    lgdtl gdtr32
    .code64
    FAIL 2
    .data
farptr: .long c32
        .word KCS32
gdtr32: .word 0x3f
        .long GDT
