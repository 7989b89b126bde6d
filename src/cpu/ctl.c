/* Stack and control transfer: PUSH/POP, Jcc/JMP/CALL/RET, LOOP, ENTER/LEAVE,
 * PUSHF/POPF, and the block-end records. Branch targets are absolute,
 * resolved when the block was built. Nothing is committed before the last
 * check that can fault, so every instruction restarts cleanly. */
#include "cpu/internal.h"
#include "cpu/handlers.h"

HANDLER(h_end)
{
    /* fall-through end of a block: this record sits after the last one
     * (it retires nothing: undo CHAIN's count of this record) */
    c->icount--;
    CHAIN(insn_rip(c, i), 0);
}

HANDLER(h_exit_stale)
{
    /* the block was invalidated by a store of the previous instruction */
    c->rip = insn_rip(c, i);
    c->icount += (uint64_t)(i - c->blk_first);
}

HANDLER(h_ud)
{
    raise_ud(c, i);
}

/* An instruction of 32-bit code outside what the engine runs there. */
HANDLER(h_noimpl32)
{
    raise_unsupported(c, i, "32-bit code: an instruction the engine does not run there");
}

HANDLER(h_gp0_rec)
{
    /* instruction longer than 15 bytes */
    raise_gp0(c, i);
}

/* --- PUSH/POP ------------------------------------------------------------------- */
static HANDLER(push_r_3)
{
    uint64_t sp = c->r[4] - 8;
    st_ss(c, i, sp, c->r[i->reg], 3);
    c->r[4] = sp;
    NEXT;
}
static HANDLER(push_r_1)
{
    uint64_t sp = c->r[4] - 2;
    st_ss(c, i, sp, c->r[i->reg], 1);
    c->r[4] = sp;
    NEXT;
}
static HANDLER(pop_r_3)
{
    uint64_t v = ld_ss(c, i, c->r[4], 3);
    c->r[4] += 8;
    c->r[i->reg] = v;
    NEXT;
}
static HANDLER(pop_r_1)
{
    uint64_t v = ld_ss(c, i, c->r[4], 1);
    c->r[4] += 2;
    SET16(i->reg, (uint16_t)v);
    NEXT;
}
static HANDLER(push_i_3)
{
    uint64_t sp = c->r[4] - 8;
    st_ss(c, i, sp, i->imm, 3);
    c->r[4] = sp;
    NEXT;
}
static HANDLER(push_i_1)
{
    uint64_t sp = c->r[4] - 2;
    st_ss(c, i, sp, i->imm, 1);
    c->r[4] = sp;
    NEXT;
}
static HANDLER(push_m_3)
{
    uint64_t v = ld64(c, i, ea(c, i));
    uint64_t sp = c->r[4] - 8;
    st_ss(c, i, sp, v, 3);
    c->r[4] = sp;
    NEXT;
}
static HANDLER(push_m_1)
{
    uint64_t v = ld16(c, i, ea(c, i));
    uint64_t sp = c->r[4] - 2;
    st_ss(c, i, sp, v, 1);
    c->r[4] = sp;
    NEXT;
}
static NOINLINE void pop_m(struct cpu *c, const struct insn *i, unsigned lg)
{
    uint64_t old = c->r[4];
    uint64_t v = ld_ss(c, i, old, lg);
    /* the address is computed with RSP already incremented */
    c->r[4] = old + (1u << lg);
    uint64_t va = ea(c, i);
    c->r[4] = old;
    stn(c, i, va, v, lg);
    c->r[4] = old + (1u << lg);
}
static HANDLER(pop_m_3) { pop_m(c, i, 3); NEXT; }
static HANDLER(pop_m_1) { pop_m(c, i, 1); NEXT; }
const insn_fn h_push_r[4] = {0, push_r_1, 0, push_r_3};
const insn_fn h_pop_r[4] = {0, pop_r_1, 0, pop_r_3};
const insn_fn h_push_i[4] = {0, push_i_1, 0, push_i_3};
const insn_fn h_push_m[4] = {0, push_m_1, 0, push_m_3};
const insn_fn h_pop_m[4] = {0, pop_m_1, 0, pop_m_3};

/* --- branches ------------------------------------------------------------------ */
static inline void check_target(struct cpu *c, const struct insn *i, uint64_t t)
{
    if (unlikely(!canonical(t)))
        raise_gp0(c, i);
}

/* Jcc, one handler per condition so the test folds */
#define JCC_DEF(cond)                                                                    \
    static HANDLER(jcc_##cond)                                                           \
    {                                                                                    \
        if (cc_cond(c, cond)) {                                                          \
            check_target(c, i, i->imm);                                                  \
            JCC_TAKEN(i);                                                                \
        }                                                                                \
        JCC_NOT_TAKEN(i);                                                                \
    }
JCC_DEF(0) JCC_DEF(1) JCC_DEF(2) JCC_DEF(3) JCC_DEF(4) JCC_DEF(5) JCC_DEF(6) JCC_DEF(7)
JCC_DEF(8) JCC_DEF(9) JCC_DEF(10) JCC_DEF(11) JCC_DEF(12) JCC_DEF(13) JCC_DEF(14) JCC_DEF(15)
const insn_fn h_jcc[16] = {jcc_0, jcc_1, jcc_2,  jcc_3,  jcc_4,  jcc_5,  jcc_6,  jcc_7,
                           jcc_8, jcc_9, jcc_10, jcc_11, jcc_12, jcc_13, jcc_14, jcc_15};

static HANDLER(jmp)
{
    check_target(c, i, i->imm);
    CHAIN(i->imm, 0);
}

static HANDLER(call)
{
    check_target(c, i, i->imm);
    uint64_t sp = c->r[4] - 8;
    st_ss(c, i, sp, next_rip(c, i), 3);
    c->r[4] = sp;
    JUMP(i->imm, 0);
}

static HANDLER(call16)
{
    uint64_t sp = c->r[4] - 2;
    st_ss(c, i, sp, next_rip(c, i), 1);
    c->r[4] = sp;
    retire_to(c, i, i->imm);
}

static HANDLER(ret)
{
    uint64_t t = ld_ss(c, i, c->r[4], 3);
    check_target(c, i, t);
    c->r[4] += 8 + i->imm;
    JUMP(t, -1);
}

static HANDLER(ret16)
{
    uint64_t t = ld_ss(c, i, c->r[4], 1);
    c->r[4] += 2 + i->imm;
    retire_to(c, i, t);
}

/* indirect: aux bit0 = 16-bit operand size */
static HANDLER(jmp_r)
{
    uint64_t t = i->aux ? (uint16_t)c->r[i->base] : c->r[i->base];
    check_target(c, i, t);
    JUMP(t, -1);
}

static HANDLER(jmp_m)
{
    uint64_t t = i->aux ? ld16(c, i, ea(c, i)) : ld64(c, i, ea(c, i));
    check_target(c, i, t);
    JUMP(t, -1);
}

static NOINLINE void call_to(struct cpu *c, const struct insn *i, uint64_t t)
{
    unsigned lg = i->aux ? 1 : 3;
    uint64_t sp = c->r[4] - (1u << lg);
    /* measured: the push's #AC/#PF come before the target's #GP */
    mem_check_align(c, i, sp, 1u << lg, ACC_W | ACC_SS);
    mem_probe_write(c, i, sp, 1u << lg, ACC_W | ACC_SS);
    check_target(c, i, t);
    st_ss(c, i, sp, next_rip(c, i), lg);
    c->r[4] = sp;
}

static HANDLER(call_r)
{
    uint64_t t = i->aux ? (uint16_t)c->r[i->base] : c->r[i->base];
    call_to(c, i, t);
    JUMP(t, -1);
}

static HANDLER(call_m)
{
    uint64_t t = i->aux ? ld16(c, i, ea(c, i)) : ld64(c, i, ea(c, i));
    call_to(c, i, t);
    JUMP(t, -1);
}

/* The count register of LOOP and JRCXZ: aux bit 2 = ECX, bit 3 = CX */
static inline uint64_t count_reg(const struct cpu *c, const struct insn *i)
{
    if (i->aux & 8)
        return (uint16_t)c->r[1];
    return (i->aux & 4) ? (uint32_t)c->r[1] : c->r[1];
}

/* LOOP/LOOPE/LOOPNE: aux bits 0-1 = 0 loopne, 1 loope, 2 loop */
static HANDLER(loop)
{
    uint64_t n = count_reg(c, i) - 1;
    if (i->aux & 8) /* CX: the rest of RCX stays */
        n = (c->r[1] & ~0xffffull) | (uint16_t)n;
    else if (i->aux & 4)
        n = (uint32_t)n;
    bool take = (i->aux & 8) ? (uint16_t)n != 0 : n != 0;
    switch (i->aux & 3) {
    case 0: take = take && !cc_cond(c, 4); break;
    case 1: take = take && cc_cond(c, 4); break;
    default: break;
    }
    c->r[1] = n;
    if (take)
        JUMP(i->imm, 0);
    else
        JUMP(next_rip(c, i), 1);
}

static HANDLER(jrcxz)
{
    if (count_reg(c, i) == 0)
        JUMP(i->imm, 0);
    else
        JUMP(next_rip(c, i), 1);
}

/* ENTER imm16, imm8: imm = size, aux = nesting level, disp: 16-bit operands.
 * 'm32': 32-bit code's, on ESP and EBP with 4-byte slots, wrapping at 4 GiB. */
static NOINLINE void enter_any(struct cpu *c, const struct insn *i, bool m32)
{
    if (m32 && !c->seg[SEG_SS].db)
        raise_unsupported(c, i, "a 16-bit stack (SS.B = 0) in 32-bit code");
    uint64_t wrap = m32 ? 0xffffffffull : ~0ull;
    unsigned lg = i->disp ? 1 : m32 ? 2 : 3, n = 1u << lg;
    unsigned level = i->aux & 31;
    uint64_t sp = (c->r[4] - n) & wrap, bp = c->r[5] & wrap;
    st_ss(c, i, sp, bp, lg);
    uint64_t frame = sp;
    if (level > 0) {
        for (unsigned k = 1; k < level; k++) {
            bp = (bp - n) & wrap;
            uint64_t v = ld_ss(c, i, bp, lg);
            sp = (sp - n) & wrap;
            st_ss(c, i, sp, v, lg);
        }
        sp = (sp - n) & wrap;
        st_ss(c, i, sp, frame, lg);
    }
    sp = (sp - i->imm) & wrap;
    /* the new stack top is probed for writing, as on hardware */
    mem_check_align(c, i, sp, n, ACC_W | ACC_SS);
    mem_probe_write(c, i, sp, n, ACC_W | ACC_SS);
    if (lg == 1)
        SET16(5, (uint16_t)frame);
    else
        c->r[5] = frame;
    c->r[4] = sp;
}
static HANDLER(enter32) { enter_any(c, i, true); NEXT; }
static HANDLER(enter) { enter_any(c, i, false); NEXT; }

static HANDLER(leave)
{
    unsigned lg = i->aux ? 1 : 3;
    uint64_t v = ld_ss(c, i, c->r[5], lg);
    c->r[4] = c->r[5] + (1u << lg);
    if (lg == 3)
        c->r[5] = v;
    else
        SET16(5, (uint16_t)v);
    NEXT;
}

/* PUSHF/POPF: aux 0 the 64-bit form, 1 16-bit, 2 32-bit code's (ESP) */
static inline uint64_t flags_sp(const struct insn *i, uint64_t sp)
{
    return i->aux == 2 ? (uint32_t)sp : sp;
}

static HANDLER(pushf)
{
    uint64_t f = rflags_get(c) & ~(uint64_t)(F_VM | F_RF);
    unsigned lg = i->aux ? i->aux : 3;
    uint64_t sp = flags_sp(i, c->r[4] - (1u << lg));
    st_ss(c, i, sp, f, lg);
    c->r[4] = sp;
    NEXT;
}

static HANDLER(popf)
{
    unsigned lg = i->aux ? i->aux : 3;
    uint64_t sp = flags_sp(i, c->r[4]);
    uint64_t v = ld_ss(c, i, sp, lg);
    uint64_t old = rflags_get(c);
    uint64_t mask = F_ARITH | F_TF | F_DF | F_NT | F_AC | F_ID;
    unsigned iopl = (old >> 12) & 3;
    if (c->cpl == 0)
        mask |= F_IOPL | F_IF;
    else if (c->cpl <= iopl)
        mask |= F_IF;
    if (lg == 1)
        mask &= 0xffff;
    uint64_t nf = (old & ~mask) | (v & mask);
    nf &= ~(uint64_t)(F_RF | F_VIF | F_VIP);
    nf |= old & (F_VIF | F_VIP);
    c->r[4] = flags_sp(i, sp + (1u << lg));
    bool sti = !(old & F_IF) && (nf & F_IF);
    rflags_set(c, nf);
    if (sti)
        c->shadow = 0; /* POPF sets no interrupt shadow */
    mmu_update_mode(c);
    retire_to(c, i, next_rip(c, i));
}

const insn_fn h_jmp = jmp, h_call = call, h_ret = ret, h_ret_i = ret,
              h_jmp_r = jmp_r, h_jmp_m = jmp_m, h_call_r = call_r, h_call_m = call_m,
              h_loop[3] = {loop, loop, loop}, h_jrcxz = jrcxz, h_enter = enter, h_enter32 = enter32,
              h_leave = leave, h_pushf = pushf, h_popf = popf, h_jmp16 = jmp,
              h_call16 = call16, h_ret16 = ret16;
