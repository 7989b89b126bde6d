/* Host code for records that consume the guest's flags (jit.c calls it):
 * SETcc/CMOVcc, ADC/SBB, INC/DEC and a fused pair's Jcc, the host's flags
 * recomputed from the lazy operands of the run's last known producer
 * (flags_writer, jit_forms.c). */
#include <stdint.h>

#include "cpu/internal.h"
#include "cpu/jit_internal.h"

/* Host flags equal to the guest's lazy ones when the last record to write
 * them in this run has form 'w' (flags_writer): its operands and result
 * are where emit_alu stored them. Clobbers rax, rcx, rdx. */
static void emit_host_flags_from(struct emit *e, const struct jform *w)
{
    op_rm(e, 3, 0x8b, RAX, RDI, CPU_OFF(cc_a));
    op_rm(e, 3, 0x8b, RCX, RDI, CPU_OFF(cc_b));
    op_rm(e, 3, 0x8b, RDX, RDI, CPU_OFF(cc_res));
    if (w->kind == K_INCDEC) { /* the same INC/DEC again, CF = the CF it kept */
        op_rm(e, 2, 0x8b, RDX, RDI, CPU_OFF(cc_aux));
        op_rr(e, 2, 0x0fba, 4, RDX); /* bt edx, 0 */
        e8(e, 0);
        op_rr(e, w->lg, w->lg ? 0xff : 0xfe, w->op, RAX);
        return;
    }
    if (is_carry_op(w)) { /* the same ADC/SBB again, on its carry in */
        op_rm(e, 2, 0x8b, RDX, RDI, CPU_OFF(cc_aux));
        op_rr(e, 2, 0x0fba, 4, RDX); /* bt edx, 0 */
        e8(e, 0);
        op_rr(e, w->lg, (w->op == 2 ? 0x11 : 0x19) - (w->lg == 0), RCX, RAX);
        return;
    }
    emit_host_flags(e, w->op, w->lg);
}

/* ADC/SBB r, r/imm/m (is_carry_op) with the carry in from the host's
 * flags (w: the run's last producer), lazy flags as alu_op() leaves them
 * (CC_ADC/CC_SBB, the carry in in cc_aux). Between the carry's setc and
 * the ADC only moves run, which keep the host's flags. */
void emit_carry_op(struct emit *e, const struct insn *rec, const struct jform *f,
                   const struct jform *w, bool dead, uint8_t **miss)
{
    unsigned lg = f->lg;
    if (f->kind == K_ALU_RM) {
        emit_mem_load(e, rec, RCX, lg, miss);
        op_rr(e, 3, 0x89, RCX, RSI);
    } else if (f->kind == K_ALU_RI) {
        mov_imm(e, RSI, rec->imm);
    } else {
        rd_greg(e, RSI, rec->base, lg);
    }
    emit_host_flags_from(e, w);
    op_rr(e, 0, 0x0f92, 0, RCX); /* setc cl: the carry in */
    rd_greg(e, RAX, rec->reg, lg);
    op_rr(e, 3, 0x89, RAX, RDX); /* the first operand, for cc_a */
    op_rr(e, lg, (f->op == 2 ? 0x11 : 0x19) - (lg == 0), RSI, RAX);
    if (lg < 2)
        op_rr(e, 2, lg ? 0x0fb7 : 0x0fb6, RAX, RAX);
    wr_greg(e, rec->reg, RAX, lg);
    if (dead)
        return;
    op_rr(e, 2, 0x0fb6, RCX, RCX);
    op_rm(e, 2, 0x89, RCX, RDI, CPU_OFF(cc_aux));
    op_rm(e, 2, 0xc7, 0, RDI, CPU_OFF(cc_op));
    e32(e, (f->op == 2 ? CC_ADC : CC_SBB) << 2 | lg);
    op_rm(e, 3, 0x89, RAX, RDI, CPU_OFF(cc_res));
    op_rm(e, 3, 0x89, RDX, RDI, CPU_OFF(cc_a));
    op_rm(e, 3, 0x89, RSI, RDI, CPU_OFF(cc_b));
}

/* Host flags for a fused pair's Jcc after its first half 'ff' ran. An
 * INC/DEC left them as the guest's already (emit_incdec: the host's CF is
 * the kept one when its INC/DEC runs), and only moves, which keep them,
 * come between. */
void emit_branch_flags(struct emit *e, const struct jform *ff)
{
    if (ff->kind != K_INCDEC)
        emit_host_flags(e, ff->op, ff->lg);
}

/* ... and for a Jcc on its own after the run's producer 'w' (no fused
 * first half before it): from the lazy operands 'w' stored. */
void emit_lone_jcc_flags(struct emit *e, const struct jform *w)
{
    emit_host_flags_from(e, w);
}

/* The guest's CF, for an INC/DEC after no producer the run knows. */
static uint32_t guest_cf(struct cpu *c)
{
    return cc_cf(c);
}

/* INC/DEC of a register: CF kept in cc_aux (from the run's last producer
 * 'w' through the host's flags, else from guest_cf), lazy flags as
 * incdec() leaves them, and the host's flags as the guest's (the host's
 * CF is the kept one when its INC/DEC runs; emit_branch_flags counts on
 * it); with 'dead' flags just the register. */
void emit_incdec(struct emit *e, const struct insn *rec, const struct jform *f,
                 const struct jform *w, bool dead)
{
    unsigned lg = f->lg;
    int h = dead ? in_place(e, rec->reg, lg) : -1;
    if (h >= 0) {
        op_rr(e, lg, 0xff, f->op, (unsigned)h);
        mark_dirty(e, rec->reg);
        return;
    }
    if (!dead && w) {
        emit_host_flags_from(e, w);
        op_rr(e, 0, 0x0f92, 0, RCX); /* setc cl */
        op_rr(e, 2, 0x0fb6, RCX, RCX);
    } else if (!dead) {
        emit_call_c_keeping_cache(e, (const void *)guest_cf);
        op_rr(e, 2, 0x89, RAX, RCX);
        op_rr(e, 2, 0x0fba, 4, RCX); /* bt ecx, 0: the host's CF is the kept one */
        e8(e, 0);
    }
    rd_greg(e, RAX, rec->reg, lg);
    op_rr(e, 3, 0x89, RAX, RDX);
    op_rr(e, lg, lg ? 0xff : 0xfe, f->op, RAX); /* inc/dec at the operand's size */
    if (lg < 2)
        op_rr(e, 2, lg ? 0x0fb7 : 0x0fb6, RAX, RAX);
    wr_greg(e, rec->reg, RAX, lg);
    if (dead)
        return;
    op_rm(e, 2, 0x89, RCX, RDI, CPU_OFF(cc_aux));
    op_rm(e, 2, 0xc7, 0, RDI, CPU_OFF(cc_op));
    e32(e, (f->op ? CC_DEC : CC_INC) << 2 | lg);
    op_rm(e, 3, 0x89, RAX, RDI, CPU_OFF(cc_res));
    op_rm(e, 3, 0x89, RDX, RDI, CPU_OFF(cc_a));
    op_rm(e, 3, 0xc7, 0, RDI, CPU_OFF(cc_b));
    e32(e, 1);
}

/* SETcc r8 / CMOVcc r, r with the condition decided by the host's flags
 * (the operands read after, by moves, which keep them). */
void emit_cond_reader(struct emit *e, const struct insn *rec, const struct jform *f,
                      const struct jform *w)
{
    unsigned cc = rec->aux & 15;
    emit_host_flags_from(e, w);
    if (f->kind == K_SETCC) {
        op_rr(e, 0, 0x0f90 | cc, 0, RAX);
        wr_greg(e, rec->base, RAX, 0);
        return;
    }
    rd_greg(e, RAX, rec->reg, f->lg);
    rd_greg(e, RCX, rec->base, f->lg);
    op_rr(e, 3, 0x0f40 | cc, RAX, RCX);
    wr_greg(e, rec->reg, RAX, f->lg);
}
