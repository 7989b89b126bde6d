/* x86-64 registers as GDB's remote protocol carries them: the order and
 * sizes of the 'g' packet, and the target description (XML) that tells an
 * unmodified GDB what they are. The layout: the core feature (16 GPRs, rip,
 * eflags, the six selectors, the x87 stack and its control registers), the
 * SSE feature (xmm0-15, mxcsr), fs_base/gs_base, then ember's own feature
 * with cr0, cr2, cr3, cr4, cr8 and efer. */
#ifndef EMBER_ARCH_X86_64_GDB_REGS_H
#define EMBER_ARCH_X86_64_GDB_REGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/cpu_state.h"

/* Bytes of the whole register file, as 'g' sends it (twice as many hex digits). */
#define GDB_X86_REGS_SIZE 600
#define GDB_X86_NR_REGS 65

/* A vCPU's registers: what the backend reports, with the x87/SSE state as a
 * 64-bit FXSAVE image. */
struct gdb_x86_state {
    struct x86_regs regs;
    struct x86_sregs sregs;
    uint8_t fxsave[512];
};

/* The target description of that layout (a NUL-terminated XML document). */
const char *gdb_x86_target_xml(void);

/* Encode the whole register file into 'out' (GDB_X86_REGS_SIZE bytes). */
void gdb_x86_encode(const struct gdb_x86_state *st, uint8_t out[GDB_X86_REGS_SIZE]);
/* Where register 'regnum' lives in that file: returns its size, or 0 for
 * no such register. */
size_t gdb_x86_reg_slot(unsigned regnum, size_t *offset);
/* Take a written register file (or one register of it) back into 'st':
 * the general registers, rip, eflags and the x87/SSE state. Selectors,
 * bases and control registers are not writable (a write that changes them
 * is refused: false). */
bool gdb_x86_decode(struct gdb_x86_state *st, const uint8_t in[GDB_X86_REGS_SIZE]);

#endif
