/* Integer instructions: ALU, moves, bit ops (shifts, rotates and
 * multiplies: mulshift.c). Common producers (ADD/SUB/logic/INC/DEC) set
 * lazy flags; rare producers (BT*, BSF/BSR, POPCNT, LZCNT) run the same
 * host instruction on the operands so every flag, undefined ones
 * included, is what this host CPU produces. */
#include <pthread.h>

#include "cpu/internal.h"
#include "cpu/handlers.h"
#include "cpu/alu_internal.h"

/* --- ALU ---------------------------------------------------------------------- */
static inline uint64_t alu_op(struct cpu *c, unsigned op, unsigned lg, uint64_t a, uint64_t b)
{
    uint64_t m = sz_mask(lg), r;
    uint32_t cin;
    switch (op) {
    case 0:
        r = (a + b) & m;
        cc_set(c, CC_ADD << 2 | lg, r, a, b);
        return r;
    case 1:
        r = a | b;
        cc_set(c, CC_LOGIC << 2 | lg, r, 0, 0);
        return r;
    case 2:
        cin = cc_cf(c);
        r = (a + b + cin) & m;
        c->cc_aux = cin;
        cc_set(c, CC_ADC << 2 | lg, r, a, b);
        return r;
    case 3:
        cin = cc_cf(c);
        r = (a - b - cin) & m;
        c->cc_aux = cin;
        cc_set(c, CC_SBB << 2 | lg, r, a, b);
        return r;
    case 4:
        r = a & b;
        cc_set(c, CC_LOGIC << 2 | lg, r, 0, 0);
        return r;
    case 6:
        r = a ^ b;
        cc_set(c, CC_LOGIC << 2 | lg, r, 0, 0);
        return r;
    default: /* 5 sub, 7 cmp */
        r = (a - b) & m;
        cc_set(c, CC_SUB << 2 | lg, r, a, b);
        return r;
    }
}


/* Atomic RMW on host memory: returns the old value. */
static inline uint64_t atomic_alu(void *p, unsigned op, unsigned lg, uint64_t b)
{
#define AOP(T)                                                                          \
    do {                                                                                \
        T *q = p;                                                                       \
        switch (op) {                                                                   \
        case 0: return __atomic_fetch_add(q, (T)b, __ATOMIC_SEQ_CST);                  \
        case 1: return __atomic_fetch_or(q, (T)b, __ATOMIC_SEQ_CST);                   \
        case 4: return __atomic_fetch_and(q, (T)b, __ATOMIC_SEQ_CST);                  \
        case 5: return __atomic_fetch_sub(q, (T)b, __ATOMIC_SEQ_CST);                  \
        case 6: return __atomic_fetch_xor(q, (T)b, __ATOMIC_SEQ_CST);                  \
        default: return 0;                                                              \
        }                                                                               \
    } while (0)
    switch (lg) {
    case 0: AOP(uint8_t);
    case 1: AOP(uint16_t);
    case 2: AOP(uint32_t);
    default: AOP(uint64_t);
    }
#undef AOP
}

static inline bool atomic_cas(void *p, unsigned lg, uint64_t *expected, uint64_t desired)
{
    switch (lg) {
    case 0: { uint8_t e = (uint8_t)*expected; bool ok = __atomic_compare_exchange_n((uint8_t *)p, &e, (uint8_t)desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); *expected = e; return ok; }
    case 1: { uint16_t e = (uint16_t)*expected; bool ok = __atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); *expected = e; return ok; }
    case 2: { uint32_t e = (uint32_t)*expected; bool ok = __atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); *expected = e; return ok; }
    default: return __atomic_compare_exchange_n((uint64_t *)p, expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    }
}

/* LOCKed ALU on memory: host atomics on RAM, plain RMW otherwise. */
static NOINLINE void alu_locked(struct cpu *c, const struct insn *i, unsigned op, unsigned lg,
                                uint64_t b)
{
    uint64_t va = ea(c, i);
    void *hp = rmw_ptr(c, va, lg);
    if (hp) {
        if (op == 2 || op == 3) {
            uint64_t old = host_load(hp, lg);
            uint32_t f = c->cc_op, aux = c->cc_aux;
            uint64_t r0 = c->cc_res, a0 = c->cc_a, b0 = c->cc_b;
            for (;;) {
                c->cc_op = f; c->cc_aux = aux; c->cc_res = r0; c->cc_a = a0; c->cc_b = b0;
                uint64_t r = alu_op(c, op, lg, old, b);
                if (atomic_cas(hp, lg, &old, r))
                    return;
            }
        }
        uint64_t old = atomic_alu(hp, op, lg, b);
        alu_op(c, op, lg, old & sz_mask(lg), b);
        return;
    }
    uint64_t a = mem_rmw_read_slow(c, i, va, 1u << lg, ACC_W);
    uint64_t r = alu_op(c, op, lg, a, b);
    mem_write_slow(c, i, va, r, 1u << lg, ACC_W);
}

#define ALU_DEFS(op, lg)                                                                 \
    static HANDLER(alu_rr_##op##_##lg)                                                   \
    {                                                                                    \
        uint64_t r = alu_op(c, op, lg, getr(c, i->reg, lg), getr(c, i->base, lg));       \
        if (op != 7)                                                                     \
            setr(c, i->reg, r, lg);                                                      \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(alu_rm_##op##_##lg)                                                   \
    {                                                                                    \
        uint64_t b = ldn(c, i, ea(c, i), lg);                                            \
        uint64_t r = alu_op(c, op, lg, getr(c, i->reg, lg), b);                          \
        if (op != 7)                                                                     \
            setr(c, i->reg, r, lg);                                                      \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(alu_ri_##op##_##lg)                                                   \
    {                                                                                    \
        uint64_t r = alu_op(c, op, lg, getr(c, i->reg, lg), i->imm);                     \
        if (op != 7)                                                                     \
            setr(c, i->reg, r, lg);                                                      \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(alu_mr_##op##_##lg)                                                   \
    {                                                                                    \
        if (op == 7) {                                                                   \
            alu_op(c, op, lg, ldn(c, i, ea(c, i), lg), getr(c, i->reg, lg));             \
            NEXT;                                                                        \
        }                                                                                \
        RMW_BEGIN(lg);                                                                   \
        uint64_t r = alu_op(c, op, lg, a, getr(c, i->reg, lg));                          \
        RMW_END(lg, r);                                                                  \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(alu_mi_##op##_##lg)                                                   \
    {                                                                                    \
        if (op == 7) {                                                                   \
            alu_op(c, op, lg, ldn(c, i, ea(c, i), lg), i->imm);                          \
            NEXT;                                                                        \
        }                                                                                \
        RMW_BEGIN(lg);                                                                   \
        uint64_t r = alu_op(c, op, lg, a, i->imm);                                       \
        RMW_END(lg, r);                                                                  \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(alu_mrl_##op##_##lg)                                                  \
    {                                                                                    \
        alu_locked(c, i, op, lg, getr(c, i->reg, lg));                                   \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(alu_mil_##op##_##lg)                                                  \
    {                                                                                    \
        alu_locked(c, i, op, lg, i->imm);                                                \
        NEXT;                                                                            \
    }

#define ALU_SIZES(op) ALU_DEFS(op, 0) ALU_DEFS(op, 1) ALU_DEFS(op, 2) ALU_DEFS(op, 3)
ALU_SIZES(0)
ALU_SIZES(1)
ALU_SIZES(2)
ALU_SIZES(3)
ALU_SIZES(4)
ALU_SIZES(5)
ALU_SIZES(6)
ALU_SIZES(7)

#define ALU_ROW(form, op) {form##_##op##_0, form##_##op##_1, form##_##op##_2, form##_##op##_3}
#define ALU_FORM(form)                                                                   \
    {ALU_ROW(form, 0), ALU_ROW(form, 1), ALU_ROW(form, 2), ALU_ROW(form, 3),             \
     ALU_ROW(form, 4), ALU_ROW(form, 5), ALU_ROW(form, 6), ALU_ROW(form, 7)}
const insn_fn h_alu[ALU_FORMS][8][4] = {
    ALU_FORM(alu_rr), ALU_FORM(alu_rm), ALU_FORM(alu_ri), ALU_FORM(alu_mr),
    ALU_FORM(alu_mi), ALU_FORM(alu_mrl), ALU_FORM(alu_mil),
};

/* --- TEST ----------------------------------------------------------------------- */
#define TEST_DEFS(lg)                                                                    \
    static HANDLER(test_rr_##lg)                                                         \
    {                                                                                    \
        cc_set(c, CC_LOGIC << 2 | lg, getr(c, i->reg, lg) & getr(c, i->base, lg), 0, 0); \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(test_mr_##lg)                                                         \
    {                                                                                    \
        cc_set(c, CC_LOGIC << 2 | lg, ldn(c, i, ea(c, i), lg) & getr(c, i->reg, lg), 0, 0); \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(test_ri_##lg)                                                         \
    {                                                                                    \
        cc_set(c, CC_LOGIC << 2 | lg, getr(c, i->reg, lg) & i->imm, 0, 0);               \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(test_mi_##lg)                                                         \
    {                                                                                    \
        cc_set(c, CC_LOGIC << 2 | lg, ldn(c, i, ea(c, i), lg) & i->imm, 0, 0);           \
        NEXT;                                                                            \
    }
TEST_DEFS(0)
TEST_DEFS(1)
TEST_DEFS(2)
TEST_DEFS(3)
const insn_fn h_test[4][4] = {
    {test_rr_0, test_rr_1, test_rr_2, test_rr_3},
    {test_mr_0, test_mr_1, test_mr_2, test_mr_3},
    {test_ri_0, test_ri_1, test_ri_2, test_ri_3},
    {test_mi_0, test_mi_1, test_mi_2, test_mi_3},
};

/* --- INC/DEC/NOT/NEG ------------------------------------------------------------ */
static inline uint64_t incdec(struct cpu *c, bool dec, unsigned lg, uint64_t a)
{
    uint32_t cf = cc_cf(c);
    uint64_t r = (dec ? a - 1 : a + 1) & sz_mask(lg);
    c->cc_aux = cf;
    cc_set(c, (dec ? CC_DEC : CC_INC) << 2 | lg, r, a, 1);
    return r;
}

static inline uint64_t neg_op(struct cpu *c, unsigned lg, uint64_t a)
{
    uint64_t r = (0 - a) & sz_mask(lg);
    cc_set(c, CC_SUB << 2 | lg, r, 0, a);
    return r;
}

/* sub-op: 0 inc, 1 dec, 2 not, 3 neg */
static inline uint64_t unop(struct cpu *c, unsigned op, unsigned lg, uint64_t a)
{
    switch (op) {
    case 0: return incdec(c, false, lg, a);
    case 1: return incdec(c, true, lg, a);
    case 2: return ~a & sz_mask(lg);
    default: return neg_op(c, lg, a);
    }
}

static NOINLINE void unop_locked(struct cpu *c, const struct insn *i, unsigned op, unsigned lg)
{
    uint64_t va = ea(c, i);
    void *hp = rmw_ptr(c, va, lg);
    if (hp) {
        uint64_t old = host_load(hp, lg);
        uint32_t f = c->cc_op, aux = c->cc_aux;
        uint64_t r0 = c->cc_res, a0 = c->cc_a, b0 = c->cc_b;
        for (;;) {
            c->cc_op = f; c->cc_aux = aux; c->cc_res = r0; c->cc_a = a0; c->cc_b = b0;
            uint64_t r = unop(c, op, lg, old);
            if (atomic_cas(hp, lg, &old, r))
                return;
        }
    }
    uint64_t a = mem_rmw_read_slow(c, i, va, 1u << lg, ACC_W);
    mem_write_slow(c, i, va, unop(c, op, lg, a), 1u << lg, ACC_W);
}

#define UNOP_DEFS(op, lg)                                                                \
    static HANDLER(unop_r_##op##_##lg)                                                   \
    {                                                                                    \
        setr(c, i->reg, unop(c, op, lg, getr(c, i->reg, lg)), lg);                       \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(unop_m_##op##_##lg)                                                   \
    {                                                                                    \
        RMW_BEGIN(lg);                                                                   \
        uint64_t r = unop(c, op, lg, a);                                                 \
        RMW_END(lg, r);                                                                  \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(unop_ml_##op##_##lg)                                                  \
    {                                                                                    \
        unop_locked(c, i, op, lg);                                                       \
        NEXT;                                                                            \
    }
#define UNOP_SIZES(op) UNOP_DEFS(op, 0) UNOP_DEFS(op, 1) UNOP_DEFS(op, 2) UNOP_DEFS(op, 3)
UNOP_SIZES(0)
UNOP_SIZES(1)
UNOP_SIZES(2)
UNOP_SIZES(3)
#define UNOP_ROW(form, op) {form##_##op##_0, form##_##op##_1, form##_##op##_2, form##_##op##_3}
#define UNOP_FORM(form) {UNOP_ROW(form, 0), UNOP_ROW(form, 1), UNOP_ROW(form, 2), UNOP_ROW(form, 3)}
const insn_fn h_unop[3][4][4] = {UNOP_FORM(unop_r), UNOP_FORM(unop_m), UNOP_FORM(unop_ml)};

/* --- MOV family ----------------------------------------------------------------- */
#define MOV_DEFS(lg)                                                                     \
    static HANDLER(mov_rr_##lg)                                                          \
    {                                                                                    \
        setr(c, i->reg, getr(c, i->base, lg), lg);                                       \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(mov_rm_##lg)                                                          \
    {                                                                                    \
        setr(c, i->reg, ldn(c, i, ea(c, i), lg), lg);                                    \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(mov_mr_##lg)                                                          \
    {                                                                                    \
        stn(c, i, ea(c, i), getr(c, i->reg, lg), lg);                                    \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(mov_ri_##lg)                                                          \
    {                                                                                    \
        setr(c, i->reg, i->imm, lg);                                                     \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(mov_mi_##lg)                                                          \
    {                                                                                    \
        stn(c, i, ea(c, i), i->imm, lg);                                                 \
        NEXT;                                                                            \
    }
MOV_DEFS(0)
MOV_DEFS(1)
MOV_DEFS(2)
MOV_DEFS(3)
const insn_fn h_mov[5][4] = {
    {mov_rr_0, mov_rr_1, mov_rr_2, mov_rr_3}, {mov_rm_0, mov_rm_1, mov_rm_2, mov_rm_3},
    {mov_mr_0, mov_mr_1, mov_mr_2, mov_mr_3}, {mov_ri_0, mov_ri_1, mov_ri_2, mov_ri_3},
    {mov_mi_0, mov_mi_1, mov_mi_2, mov_mi_3},
};

/* MOVZX/MOVSX/MOVSXD: aux = source lg, destination lg in the handler. */
#define EXT_DEFS(slg, dlg)                                                               \
    static HANDLER(movzx_r_##slg##_##dlg)                                                \
    {                                                                                    \
        setr(c, i->reg, getr(c, i->base, slg), dlg);                                     \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(movzx_m_##slg##_##dlg)                                                \
    {                                                                                    \
        setr(c, i->reg, ldn(c, i, ea(c, i), slg), dlg);                                  \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(movsx_r_##slg##_##dlg)                                                \
    {                                                                                    \
        setr(c, i->reg, (uint64_t)sext(getr(c, i->base, slg), slg), dlg);                \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(movsx_m_##slg##_##dlg)                                                \
    {                                                                                    \
        setr(c, i->reg, (uint64_t)sext(ldn(c, i, ea(c, i), slg), slg), dlg);             \
        NEXT;                                                                            \
    }
EXT_DEFS(0, 1)
EXT_DEFS(0, 2)
EXT_DEFS(0, 3)
EXT_DEFS(1, 1)
EXT_DEFS(1, 2)
EXT_DEFS(1, 3)
EXT_DEFS(2, 3)
EXT_DEFS(2, 2)
EXT_DEFS(2, 1) /* MOVSXD r16, r/m32: reads 32 bits (measured) */
/* [zx/sx][reg/mem][source lg][dest lg] */
const insn_fn h_ext[2][2][3][4] = {
    {{{0, movzx_r_0_1, movzx_r_0_2, movzx_r_0_3}, {0, movzx_r_1_1, movzx_r_1_2, movzx_r_1_3},
      {0, movzx_r_2_1, movzx_r_2_2, movzx_r_2_3}},
     {{0, movzx_m_0_1, movzx_m_0_2, movzx_m_0_3}, {0, movzx_m_1_1, movzx_m_1_2, movzx_m_1_3},
      {0, movzx_m_2_1, movzx_m_2_2, movzx_m_2_3}}},
    {{{0, movsx_r_0_1, movsx_r_0_2, movsx_r_0_3}, {0, movsx_r_1_1, movsx_r_1_2, movsx_r_1_3},
      {0, movsx_r_2_1, movsx_r_2_2, movsx_r_2_3}},
     {{0, movsx_m_0_1, movsx_m_0_2, movsx_m_0_3}, {0, movsx_m_1_1, movsx_m_1_2, movsx_m_1_3},
      {0, movsx_m_2_1, movsx_m_2_2, movsx_m_2_3}}},
};

/* --- fast memory forms ------------------------------------------------------------
 * Base + displacement addressing (RIP-relative included: the builder made
 * the displacement absolute) with no index, no FS/GS base and a 64-bit
 * address: the handler does the TLB-hit case only, without a call, and
 * hands anything else (a miss, MMIO, a code page, a page-crossing access,
 * #AC checking) to the generic handler of the same instruction, which
 * starts over. */
#define EA_BD() (c->r[i->base] + (uint64_t)i->disp)
#define FAST_LD(lg, va, out, generic)                                                    \
    do {                                                                                 \
        struct tlbe *e_ = tlb_entry(c, (va));                                            \
        if (unlikely(e_->tag_r != (((va) + (1u << (lg)) - 1) & ~TLBF_MASK)))             \
            return generic(c, i);                                                        \
        (out) = hload((void *)((va) + e_->addend), (lg));                                \
    } while (0)
#define FAST_WPTR(lg, va, out, generic)                                                  \
    do {                                                                                 \
        struct tlbe *e_ = tlb_entry(c, (va));                                            \
        if (unlikely(e_->tag_w != (((va) + (1u << (lg)) - 1) & ~TLBF_MASK)))             \
            return generic(c, i);                                                        \
        (out) = (void *)((va) + e_->addend);                                             \
    } while (0)

#define FAST_MOV_DEFS(lg)                                                                \
    static HANDLER(fmov_rm_##lg)                                                         \
    {                                                                                    \
        uint64_t va = EA_BD(), v;                                                        \
        FAST_LD(lg, va, v, mov_rm_##lg);                                                 \
        setr(c, i->reg, v, lg);                                                          \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(fmov_mr_##lg)                                                         \
    {                                                                                    \
        uint64_t va = EA_BD();                                                           \
        void *p;                                                                         \
        FAST_WPTR(lg, va, p, mov_mr_##lg);                                               \
        hstore(p, getr(c, i->reg, lg), lg);                                              \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(fmov_mi_##lg)                                                         \
    {                                                                                    \
        uint64_t va = EA_BD();                                                           \
        void *p;                                                                         \
        FAST_WPTR(lg, va, p, mov_mi_##lg);                                               \
        hstore(p, i->imm, lg);                                                           \
        NEXT;                                                                            \
    }
FAST_MOV_DEFS(0)
FAST_MOV_DEFS(1)
FAST_MOV_DEFS(2)
FAST_MOV_DEFS(3)

#define FAST_EXT_DEFS(slg, dlg)                                                          \
    static HANDLER(fmovzx_m_##slg##_##dlg)                                               \
    {                                                                                    \
        uint64_t va = EA_BD(), v;                                                        \
        FAST_LD(slg, va, v, movzx_m_##slg##_##dlg);                                      \
        setr(c, i->reg, v, dlg);                                                         \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(fmovsx_m_##slg##_##dlg)                                               \
    {                                                                                    \
        uint64_t va = EA_BD(), v;                                                        \
        FAST_LD(slg, va, v, movsx_m_##slg##_##dlg);                                      \
        setr(c, i->reg, (uint64_t)sext(v, slg), dlg);                                    \
        NEXT;                                                                            \
    }
FAST_EXT_DEFS(0, 1)
FAST_EXT_DEFS(0, 2)
FAST_EXT_DEFS(0, 3)
FAST_EXT_DEFS(1, 1)
FAST_EXT_DEFS(1, 2)
FAST_EXT_DEFS(1, 3)
FAST_EXT_DEFS(2, 3)
FAST_EXT_DEFS(2, 2)
FAST_EXT_DEFS(2, 1)

#define FAST_ALU_DEFS(op, lg)                                                            \
    static HANDLER(falu_rm_##op##_##lg)                                                  \
    {                                                                                    \
        uint64_t va = EA_BD(), b;                                                        \
        FAST_LD(lg, va, b, alu_rm_##op##_##lg);                                          \
        uint64_t r = alu_op(c, op, lg, getr(c, i->reg, lg), b);                          \
        if (op != 7)                                                                     \
            setr(c, i->reg, r, lg);                                                      \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(falu_mr_##op##_##lg)                                                  \
    {                                                                                    \
        uint64_t va = EA_BD(), a;                                                        \
        if (op == 7) {                                                                   \
            FAST_LD(lg, va, a, alu_mr_##op##_##lg);                                      \
            alu_op(c, op, lg, a, getr(c, i->reg, lg));                                   \
            NEXT;                                                                        \
        }                                                                                \
        void *p;                                                                         \
        FAST_WPTR(lg, va, p, alu_mr_##op##_##lg);                                        \
        hstore(p, alu_op(c, op, lg, hload(p, lg), getr(c, i->reg, lg)), lg);             \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(falu_mi_##op##_##lg)                                                  \
    {                                                                                    \
        uint64_t va = EA_BD(), a;                                                        \
        if (op == 7) {                                                                   \
            FAST_LD(lg, va, a, alu_mi_##op##_##lg);                                      \
            alu_op(c, op, lg, a, i->imm);                                                \
            NEXT;                                                                        \
        }                                                                                \
        void *p;                                                                         \
        FAST_WPTR(lg, va, p, alu_mi_##op##_##lg);                                        \
        hstore(p, alu_op(c, op, lg, hload(p, lg), i->imm), lg);                          \
        NEXT;                                                                            \
    }
#define FAST_ALU_SIZES(op)                                                               \
    FAST_ALU_DEFS(op, 0) FAST_ALU_DEFS(op, 1) FAST_ALU_DEFS(op, 2) FAST_ALU_DEFS(op, 3)
FAST_ALU_SIZES(0)
FAST_ALU_SIZES(1)
FAST_ALU_SIZES(2)
FAST_ALU_SIZES(3)
FAST_ALU_SIZES(4)
FAST_ALU_SIZES(5)
FAST_ALU_SIZES(6)
FAST_ALU_SIZES(7)

#define FAST_TEST_DEFS(lg)                                                               \
    static HANDLER(ftest_mr_##lg)                                                        \
    {                                                                                    \
        uint64_t va = EA_BD(), a;                                                        \
        FAST_LD(lg, va, a, test_mr_##lg);                                                \
        cc_set(c, CC_LOGIC << 2 | lg, a & getr(c, i->reg, lg), 0, 0);                   \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(ftest_mi_##lg)                                                        \
    {                                                                                    \
        uint64_t va = EA_BD(), a;                                                        \
        FAST_LD(lg, va, a, test_mi_##lg);                                                \
        cc_set(c, CC_LOGIC << 2 | lg, a & i->imm, 0, 0);                                 \
        NEXT;                                                                            \
    }
FAST_TEST_DEFS(0)
FAST_TEST_DEFS(1)
FAST_TEST_DEFS(2)
FAST_TEST_DEFS(3)

#define FROW(f) {f##_0, f##_1, f##_2, f##_3}
#define FAST_ALU_ROWS(f)                                                                 \
    {FROW(f##_0), FROW(f##_1), FROW(f##_2), FROW(f##_3), FROW(f##_4), FROW(f##_5),       \
     FROW(f##_6), FROW(f##_7)}
static const insn_fn fast_alu[3][8][4] = {FAST_ALU_ROWS(falu_rm), FAST_ALU_ROWS(falu_mr),
                                          FAST_ALU_ROWS(falu_mi)};
static const insn_fn fast_mov[3][4] = {FROW(fmov_rm), FROW(fmov_mr), FROW(fmov_mi)};
static const insn_fn fast_test[2][4] = {FROW(ftest_mr), FROW(ftest_mi)};
static const insn_fn fast_ext[2][3][4] = {
    {{0, fmovzx_m_0_1, fmovzx_m_0_2, fmovzx_m_0_3}, {0, fmovzx_m_1_1, fmovzx_m_1_2, fmovzx_m_1_3},
     {0, fmovzx_m_2_1, fmovzx_m_2_2, fmovzx_m_2_3}},
    {{0, fmovsx_m_0_1, fmovsx_m_0_2, fmovsx_m_0_3}, {0, fmovsx_m_1_1, fmovsx_m_1_2, fmovsx_m_1_3},
     {0, fmovsx_m_2_1, fmovsx_m_2_2, fmovsx_m_2_3}},
};

/* The fast variant of a generic memory-form handler, or the handler itself:
 * an open-addressed table from the generic handler to its variant, filled
 * once (it was a search through 140 handlers for every memory operand a
 * block build decoded). */
#define FAST_MAP_BITS 9
static struct {
    insn_fn from, to;
} fast_map[1u << FAST_MAP_BITS];
static pthread_once_t fast_map_once = PTHREAD_ONCE_INIT;

static unsigned fast_map_slot(insn_fn fn)
{
    return (unsigned)(((uintptr_t)fn * 0x9e3779b97f4a7c15ull) >> (64 - FAST_MAP_BITS));
}

static void fast_map_put(insn_fn from, insn_fn to)
{
    if (!from || !to)
        return;
    unsigned k = fast_map_slot(from);
    while (fast_map[k].from && fast_map[k].from != from)
        k = (k + 1) & ((1u << FAST_MAP_BITS) - 1);
    if (!fast_map[k].from) /* the first pairing of a handler wins */
        fast_map[k].from = from, fast_map[k].to = to;
}

static void fast_map_fill(void)
{
    static const unsigned alu_forms[3] = {ALU_RM, ALU_MR, ALU_MI};
    for (unsigned lg = 0; lg < 4; lg++) {
        fast_map_put(h_mov[1][lg], fast_mov[0][lg]);
        fast_map_put(h_mov[2][lg], fast_mov[1][lg]);
        fast_map_put(h_mov[4][lg], fast_mov[2][lg]);
        fast_map_put(h_test[1][lg], fast_test[0][lg]);
        fast_map_put(h_test[3][lg], fast_test[1][lg]);
        for (unsigned f = 0; f < 3; f++)
            for (unsigned op = 0; op < 8; op++)
                fast_map_put(h_alu[alu_forms[f]][op][lg], fast_alu[f][op][lg]);
        for (unsigned x = 0; x < 2; x++)
            for (unsigned s = 0; s < 3; s++)
                fast_map_put(h_ext[x][1][s][lg], fast_ext[x][s][lg]);
    }
}

insn_fn fast_mem_variant(insn_fn fn)
{
    pthread_once(&fast_map_once, fast_map_fill);
    for (unsigned k = fast_map_slot(fn); fast_map[k].from;
         k = (k + 1) & ((1u << FAST_MAP_BITS) - 1))
        if (fast_map[k].from == fn)
            return fast_map[k].to;
    return fn;
}

/* LEA: the builder clears the segment. */
static HANDLER(lea_1) { setr(c, i->reg, ea(c, i), 1); NEXT; }
static HANDLER(lea_2) { setr(c, i->reg, ea(c, i), 2); NEXT; }
static HANDLER(lea_3) { c->r[i->reg] = ea(c, i); NEXT; }
const insn_fn h_lea[4] = {0, lea_1, lea_2, lea_3};

/* XCHG */
#define XCHG_DEFS(lg)                                                                    \
    static HANDLER(xchg_rr_##lg)                                                         \
    {                                                                                    \
        uint64_t a = getr(c, i->reg, lg), b = getr(c, i->base, lg);                      \
        setr(c, i->base, a, lg);                                                         \
        setr(c, i->reg, b, lg);                                                          \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(xchg_m_##lg)                                                          \
    {                                                                                    \
        uint64_t va = ea(c, i);                                                          \
        void *hp = rmw_ptr(c, va, lg);                                                   \
        uint64_t v = getr(c, i->reg, lg), old;                                           \
        if (hp) {                                                                        \
            switch (lg) {                                                                \
            case 0: old = __atomic_exchange_n((uint8_t *)hp, (uint8_t)v, __ATOMIC_SEQ_CST); break; \
            case 1: old = __atomic_exchange_n((uint16_t *)hp, (uint16_t)v, __ATOMIC_SEQ_CST); break; \
            case 2: old = __atomic_exchange_n((uint32_t *)hp, (uint32_t)v, __ATOMIC_SEQ_CST); break; \
            default: old = __atomic_exchange_n((uint64_t *)hp, v, __ATOMIC_SEQ_CST); break; \
            }                                                                            \
        } else {                                                                         \
            old = mem_rmw_read_slow(c, i, va, 1u << lg, ACC_W);                          \
            mem_write_slow(c, i, va, v, 1u << lg, ACC_W);                                \
        }                                                                                \
        setr(c, i->reg, old, lg);                                                        \
        NEXT;                                                                            \
    }
XCHG_DEFS(0)
XCHG_DEFS(1)
XCHG_DEFS(2)
XCHG_DEFS(3)
const insn_fn h_xchg[2][4] = {{xchg_rr_0, xchg_rr_1, xchg_rr_2, xchg_rr_3},
                              {xchg_m_0, xchg_m_1, xchg_m_2, xchg_m_3}};

static HANDLER(nop) { NEXT; }
const insn_fn h_nop = nop;

/* CBW/CWDE/CDQE and CWD/CDQ/CQO */
static HANDLER(cbw_1) { SET16(0, (uint16_t)(int8_t)R(0)); NEXT; }
static HANDLER(cbw_2) { R(0) = (uint32_t)(int32_t)(int16_t)R(0); NEXT; }
static HANDLER(cbw_3) { R(0) = (uint64_t)(int64_t)(int32_t)R(0); NEXT; }
static HANDLER(cwd_1) { SET16(2, (int16_t)R(0) < 0 ? 0xffff : 0); NEXT; }
static HANDLER(cwd_2) { R(2) = (int32_t)R(0) < 0 ? 0xffffffffu : 0; NEXT; }
static HANDLER(cwd_3) { R(2) = (int64_t)R(0) < 0 ? ~0ull : 0; NEXT; }
const insn_fn h_cbw[4] = {0, cbw_1, cbw_2, cbw_3};
const insn_fn h_cwd[4] = {0, cwd_1, cwd_2, cwd_3};

/* flag instructions */
static HANDLER(cmc) { cc_set_eager(c, cc_flags(c) ^ F_CF); NEXT; }
static HANDLER(clc) { cc_set_eager(c, cc_flags(c) & ~F_CF); NEXT; }
static HANDLER(stc) { cc_set_eager(c, cc_flags(c) | F_CF); NEXT; }
static HANDLER(cld) { c->rflags &= ~(uint64_t)F_DF; NEXT; }
static HANDLER(std_) { c->rflags |= F_DF; NEXT; }
static HANDLER(lahf)
{
    R8(1) = (uint8_t)(cc_flags(c) | 2);
    NEXT;
}
static HANDLER(sahf)
{
    cc_set_eager(c, (cc_flags(c) & F_OF) | (R8(1) & (F_CF | F_PF | F_AF | F_ZF | F_SF)));
    NEXT;
}
const insn_fn h_cmc = cmc, h_clc = clc, h_stc = stc, h_cld = cld, h_std = std_, h_lahf = lahf,
              h_sahf = sahf;

/* SETcc / CMOVcc: aux = condition */
static HANDLER(setcc_r) { R8(i->base) = cc_cond(c, i->aux); NEXT; }
static HANDLER(setcc_m) { st8(c, i, ea(c, i), cc_cond(c, i->aux)); NEXT; }
const insn_fn h_setcc[2] = {setcc_r, setcc_m};
#define CMOV_DEFS(lg)                                                                    \
    static HANDLER(cmov_r_##lg)                                                          \
    {                                                                                    \
        uint64_t v = cc_cond(c, i->aux) ? getr(c, i->base, lg) : getr(c, i->reg, lg);    \
        setr(c, i->reg, v, lg);                                                          \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(cmov_m_##lg)                                                          \
    {                                                                                    \
        uint64_t m = ldn(c, i, ea(c, i), lg);                                            \
        setr(c, i->reg, cc_cond(c, i->aux) ? m : getr(c, i->reg, lg), lg);               \
        NEXT;                                                                            \
    }
CMOV_DEFS(1)
CMOV_DEFS(2)
CMOV_DEFS(3)
const insn_fn h_cmov[2][4] = {{0, cmov_r_1, cmov_r_2, cmov_r_3}, {0, cmov_m_1, cmov_m_2, cmov_m_3}};

/* BSWAP (16-bit: this host clears the low word, as measured) */
static HANDLER(bswap_1) { SET16(i->reg, 0); NEXT; }
static HANDLER(bswap_2) { R(i->reg) = __builtin_bswap32((uint32_t)R(i->reg)); NEXT; }
static HANDLER(bswap_3) { R(i->reg) = __builtin_bswap64(R(i->reg)); NEXT; }
const insn_fn h_bswap[4] = {0, bswap_1, bswap_2, bswap_3};

/* MOVBE */
static HANDLER(movbe_load_1) { SET16(i->reg, __builtin_bswap16((uint16_t)ld16(c, i, ea(c, i)))); NEXT; }
static HANDLER(movbe_load_2) { R(i->reg) = __builtin_bswap32((uint32_t)ld32(c, i, ea(c, i))); NEXT; }
static HANDLER(movbe_load_3) { R(i->reg) = __builtin_bswap64(ld64(c, i, ea(c, i))); NEXT; }
static HANDLER(movbe_store_1) { st16(c, i, ea(c, i), __builtin_bswap16((uint16_t)R(i->reg))); NEXT; }
static HANDLER(movbe_store_2) { st32(c, i, ea(c, i), __builtin_bswap32((uint32_t)R(i->reg))); NEXT; }
static HANDLER(movbe_store_3) { st64(c, i, ea(c, i), __builtin_bswap64(R(i->reg))); NEXT; }
const insn_fn h_movbe[2][4] = {{0, movbe_load_1, movbe_load_2, movbe_load_3},
                               {0, movbe_store_1, movbe_store_2, movbe_store_3}};

/* MOVNTI: a plain store */
static HANDLER(movnti_2) { st32(c, i, ea(c, i), R(i->reg)); NEXT; }
static HANDLER(movnti_3) { st64(c, i, ea(c, i), R(i->reg)); NEXT; }
const insn_fn h_movnti[4] = {0, 0, movnti_2, movnti_3};

/* BT/BTS/BTR/BTC: aux = 0 bt 1 bts 2 btr 3 btc; the host instruction on a
 * register copy gives the flags. */
#define BT1(mn, mod)                                                                     \
    asm(HOST_PRE mn " %" mod "[s], %" mod "[v]" HOST_POST : [v] "+r"(v), [f] "+r"(f) : [s] "r"(s) : "cc")
static NOINLINE uint64_t host_bt(struct cpu *c, unsigned op, unsigned lg, uint64_t v, uint64_t s)
{
    uint64_t f = host_flags_in(c);
#define BT_SIZES(mn)                                                                     \
    switch (lg) {                                                                        \
    case 1: BT1(mn "w", "w"); break;                                                     \
    case 2: BT1(mn "l", "k"); break;                                                     \
    default: BT1(mn "q", "q"); break;                                                    \
    }
    switch (op) {
    case 0: BT_SIZES("bt"); break;
    case 1: BT_SIZES("bts"); break;
    case 2: BT_SIZES("btr"); break;
    default: BT_SIZES("btc"); break;
    }
    cc_set_eager(c, (uint32_t)f);
    return v;
}

static NOINLINE void bt_mem(struct cpu *c, const struct insn *i, unsigned lg, uint64_t bit,
                            bool from_reg, bool locked)
{
    unsigned op = i->aux & 3, bits = 8u << lg;
    uint64_t va = ea(c, i);
    if (from_reg) {
        int64_t sbit = sext(bit, lg);
        va += (uint64_t)(sbit >> (3 + lg)) << lg; /* (shifted unsigned: negative offsets) */
        if (i->mf & MF_ADDR32)
            va = (uint32_t)va; /* rarely used; good enough */
    }
    uint64_t off = bit & (bits - 1);
    if (op == 0) {
        host_bt(c, 0, lg, ldn(c, i, va, lg), off);
        return;
    }
    void *hp = rmw_ptr(c, va, lg);
    if (hp && locked) {
        uint64_t old = host_load(hp, lg);
        for (;;) {
            uint64_t save_res = c->cc_res, save_a = c->cc_a, save_b = c->cc_b;
            uint32_t save_op = c->cc_op, save_aux = c->cc_aux;
            uint64_t r = host_bt(c, op, lg, old, off);
            if (atomic_cas(hp, lg, &old, r))
                return;
            c->cc_res = save_res; c->cc_a = save_a; c->cc_b = save_b;
            c->cc_op = save_op; c->cc_aux = save_aux;
        }
    }
    uint64_t a = hp ? host_load(hp, lg) : mem_rmw_read_slow(c, i, va, 1u << lg, ACC_W);
    uint64_t r = host_bt(c, op, lg, a, off);
    if (hp)
        host_store(hp, r, lg);
    else
        mem_write_slow(c, i, va, r, 1u << lg, ACC_W);
}

#define BT_DEFS(lg)                                                                      \
    static HANDLER(bt_rr_##lg)                                                           \
    {                                                                                    \
        uint64_t v = host_bt(c, i->aux & 3, lg, c->r[i->base], c->r[i->reg]);            \
        if (i->aux & 3)                                                                  \
            c->r[i->base] = v;                                                           \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(bt_ri_##lg)                                                           \
    {                                                                                    \
        uint64_t v = host_bt(c, i->aux & 3, lg, c->r[i->base], i->imm);                  \
        if (i->aux & 3)                                                                  \
            c->r[i->base] = v;                                                           \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(bt_mr_##lg) { bt_mem(c, i, lg, c->r[i->reg], true, i->aux & 4); NEXT; } \
    static HANDLER(bt_mi_##lg) { bt_mem(c, i, lg, i->imm, false, i->aux & 4); NEXT; }
BT_DEFS(1)
BT_DEFS(2)
BT_DEFS(3)
const insn_fn h_bt[4][4] = {{0, bt_rr_1, bt_rr_2, bt_rr_3}, {0, bt_ri_1, bt_ri_2, bt_ri_3},
                            {0, bt_mr_1, bt_mr_2, bt_mr_3}, {0, bt_mi_1, bt_mi_2, bt_mi_3}};

/* BSF/BSR/POPCNT/LZCNT: aux = 0 bsf 1 bsr 2 popcnt 3 lzcnt */
#define BS1(mn, mod)                                                                     \
    asm(HOST_PRE mn " %" mod "[s], %" mod "[v]" HOST_POST : [v] "+r"(v), [f] "+r"(f) : [s] "r"(s) : "cc")
static NOINLINE uint64_t host_bitscan(struct cpu *c, unsigned op, unsigned lg, uint64_t v,
                                      uint64_t s)
{
    uint64_t f = host_flags_in(c);
#define BS_SIZES(mn)                                                                     \
    switch (lg) {                                                                        \
    case 1: BS1(mn "w", "w"); break;                                                     \
    case 2: BS1(mn "l", "k"); break;                                                     \
    default: BS1(mn "q", "q"); break;                                                    \
    }
    switch (op) {
    case 0: BS_SIZES("bsf"); break;
    case 1: BS_SIZES("bsr"); break;
    case 2: BS_SIZES("popcnt"); break;
    default: BS_SIZES("lzcnt"); break;
    }
    cc_set_eager(c, (uint32_t)f);
    return v;
}
#define BS_DEFS(lg)                                                                      \
    static HANDLER(bs_r_##lg)                                                            \
    {                                                                                    \
        c->r[i->reg] = host_bitscan(c, i->aux, lg, c->r[i->reg], c->r[i->base]);         \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(bs_m_##lg)                                                            \
    {                                                                                    \
        uint64_t s = ldn(c, i, ea(c, i), lg);                                            \
        c->r[i->reg] = host_bitscan(c, i->aux, lg, c->r[i->reg], s);                     \
        NEXT;                                                                            \
    }
BS_DEFS(1)
BS_DEFS(2)
BS_DEFS(3)
const insn_fn h_bitscan[2][4] = {{0, bs_r_1, bs_r_2, bs_r_3}, {0, bs_m_1, bs_m_2, bs_m_3}};

/* CRC32 (SSE4.2): aux = source lg */
static NOINLINE uint64_t host_crc32(uint64_t v, uint64_t s, unsigned slg, bool w)
{
    switch (slg) {
    case 0: asm("crc32b %b1, %k0" : "+r"(v) : "r"(s)); break;
    case 1: asm("crc32w %w1, %k0" : "+r"(v) : "r"(s)); break;
    case 2: asm("crc32l %k1, %k0" : "+r"(v) : "r"(s)); break;
    default: asm("crc32q %q1, %q0" : "+r"(v) : "r"(s)); break;
    }
    return w ? v : (uint32_t)v;
}
static HANDLER(crc32_r)
{
    unsigned slg = i->aux & 3;
    uint64_t s = slg == 0 ? R8(i->base) : c->r[i->base];
    c->r[i->reg] = host_crc32(c->r[i->reg], s, slg, i->aux & 4);
    NEXT;
}
static HANDLER(crc32_m)
{
    unsigned slg = i->aux & 3;
    uint64_t s = ldn(c, i, ea(c, i), slg);
    c->r[i->reg] = host_crc32(c->r[i->reg], s, slg, i->aux & 4);
    NEXT;
}
const insn_fn h_crc32[2] = {crc32_r, crc32_m};

/* ADCX/ADOX: reg += r/m + carry, the carry in and out being CF (ADCX, aux
 * bit 2 clear) or OF (ADOX); every other flag kept. aux bits 0-1: lg. */
static NOINLINE void adx_any(struct cpu *c, const struct insn *i, uint64_t s)
{
    unsigned lg = i->aux & 3;
    uint32_t flag = (i->aux & 4) ? F_OF : F_CF, f = cc_flags(c);
    uint64_t m = sz_mask(lg), d = c->r[i->reg] & m;
    s &= m;
    uint64_t cin = (f & flag) != 0, r = (d + s + cin) & m;
    bool cout = lg == 3 ? (r < d || (cin && r == d)) : ((d + s + cin) >> 32) != 0;
    setr(c, i->reg, r, lg);
    cc_set_eager(c, (f & ~flag) | (cout ? flag : 0));
}
static HANDLER(adx_r)
{
    adx_any(c, i, c->r[i->base]);
    NEXT;
}
static HANDLER(adx_m)
{
    adx_any(c, i, ldn(c, i, ea(c, i), i->aux & 3));
    NEXT;
}
const insn_fn h_adx[2] = {adx_r, adx_m};

/* CMPXCHG: the host instruction on a register image, or LOCKed on host
 * memory. Memory operands are addressed through a register (never
 * %rsp-relative: the asm moves %rsp). */
#define CX1(mn, mod, dst)                                                                \
    asm(HOST_PRE mn " %" mod "[s], %" mod "[d]" HOST_POST                                \
        : [d] "+r"(dst), "+a"(ax), [f] "+r"(f) : [s] "r"(s) : "cc")
#define CXM(mn, mod)                                                                     \
    asm(HOST_PRE "lock " mn " %" mod "[s], (%[p])" HOST_POST                             \
        : "+a"(ax), [f] "+r"(f) : [s] "r"(s), [p] "r"(hp) : "cc", "memory")
static NOINLINE void cmpxchg_any(struct cpu *c, const struct insn *i, unsigned lg, bool mem)
{
    uint64_t f = host_flags_in(c), ax = c->r[0];
    uint64_t s = lg ? c->r[i->reg] : R8(i->reg);
    uint64_t va = 0, d = 0;
    void *hp = NULL;
    if (mem) {
        va = ea(c, i);
        hp = rmw_ptr(c, va, lg);
        if (hp) {
            switch (lg) {
            case 0: CXM("cmpxchgb", "b"); break;
            case 1: CXM("cmpxchgw", "w"); break;
            case 2: CXM("cmpxchgl", "k"); break;
            default: CXM("cmpxchgq", "q"); break;
            }
            goto done;
        }
        d = mem_rmw_read_slow(c, i, va, 1u << lg, ACC_W);
    } else {
        d = lg ? c->r[i->base] : R8(i->base);
    }
    switch (lg) {
    case 0: CX1("cmpxchgb", "b", d); break;
    case 1: CX1("cmpxchgw", "w", d); break;
    case 2: CX1("cmpxchgl", "k", d); break;
    default: CX1("cmpxchgq", "q", d); break;
    }
    if (mem)
        mem_write_slow(c, i, va, d, 1u << lg, ACC_W);
done:
    /* accumulator first: when the destination is the accumulator the
     * comparison succeeds and only the destination is written */
    if (lg)
        c->r[0] = ax;
    else
        R8(0) = (uint8_t)ax;
    if (!mem) {
        if (lg)
            c->r[i->base] = d;
        else
            R8(i->base) = (uint8_t)d;
    }
    cc_set_eager(c, (uint32_t)f);
}
#define CX_DEFS(lg)                                                                      \
    static HANDLER(cmpxchg_r_##lg) { cmpxchg_any(c, i, lg, false); NEXT; }               \
    static HANDLER(cmpxchg_m_##lg) { cmpxchg_any(c, i, lg, true); NEXT; }
CX_DEFS(0)
CX_DEFS(1)
CX_DEFS(2)
CX_DEFS(3)
const insn_fn h_cmpxchg[2][4] = {{cmpxchg_r_0, cmpxchg_r_1, cmpxchg_r_2, cmpxchg_r_3},
                                 {cmpxchg_m_0, cmpxchg_m_1, cmpxchg_m_2, cmpxchg_m_3}};

/* CMPXCHG8B/16B */
static NOINLINE void cmpxchg8b_any(struct cpu *c, const struct insn *i)
{
    uint64_t va = ea(c, i);
    bool wide = i->aux;
    unsigned n = wide ? 16 : 8;
    if (wide && (va & 15))
        raise_gp0(c, i);
    uint64_t f = host_flags_in(c);
    uint64_t lo = c->r[0], hi = c->r[2];
    void *hp = mem_host_ptr(c, i, va, n, ACC_W);
    uint64_t m[2] __attribute__((aligned(16)));
    void *p = hp;
    if (!hp) {
        mem_read_buf(c, i, va, m, n, ACC_W);
        p = m;
    }
    if (wide)
        asm(HOST_PRE "lock cmpxchg16b (%[p])" HOST_POST
            : "+a"(lo), "+d"(hi), [f] "+r"(f) : "b"(c->r[3]), "c"(c->r[1]), [p] "r"(p)
            : "cc", "memory");
    else
        asm(HOST_PRE "lock cmpxchg8b (%[p])" HOST_POST
            : "+a"(lo), "+d"(hi), [f] "+r"(f) : "b"(c->r[3]), "c"(c->r[1]), [p] "r"(p)
            : "cc", "memory");
    if (!hp)
        mem_write_buf(c, i, va, m, n, ACC_W);
    c->r[0] = lo;
    c->r[2] = hi;
    cc_set_eager(c, (uint32_t)f);
}
static HANDLER(cmpxchg8b)
{
    cmpxchg8b_any(c, i);
    NEXT;
}
const insn_fn h_cmpxchg8b = cmpxchg8b;

/* XADD */
static NOINLINE void xadd_any(struct cpu *c, const struct insn *i, unsigned lg, bool mem)
{
    uint64_t s = getr(c, i->reg, lg);
    if (!mem) {
        uint64_t d = getr(c, i->base, lg);
        uint64_t r = alu_op(c, 0, lg, d, s);
        setr(c, i->reg, d, lg);
        setr(c, i->base, r, lg);
        return;
    }
    uint64_t va = ea(c, i);
    void *hp = rmw_ptr(c, va, lg);
    uint64_t old;
    if (hp) {
        old = atomic_alu(hp, 0, lg, s) & sz_mask(lg);
        alu_op(c, 0, lg, old, s);
    } else {
        old = mem_rmw_read_slow(c, i, va, 1u << lg, ACC_W);
        uint64_t r = alu_op(c, 0, lg, old, s);
        mem_write_slow(c, i, va, r, 1u << lg, ACC_W);
    }
    setr(c, i->reg, old, lg);
}
#define XADD_DEFS(lg)                                                                    \
    static HANDLER(xadd_r_##lg) { xadd_any(c, i, lg, false); NEXT; }                     \
    static HANDLER(xadd_m_##lg) { xadd_any(c, i, lg, true); NEXT; }
XADD_DEFS(0)
XADD_DEFS(1)
XADD_DEFS(2)
XADD_DEFS(3)
const insn_fn h_xadd[2][4] = {{xadd_r_0, xadd_r_1, xadd_r_2, xadd_r_3},
                              {xadd_m_0, xadd_m_1, xadd_m_2, xadd_m_3}};

/* XLAT: AL = [rBX + AL] */
static HANDLER(xlat)
{
    uint64_t a = addr_cut(i, c->r[3] + R8(0));
    R8(0) = (uint8_t)ld8(c, i, seg_lin(c, i, a, insn_seg(i), i->mf & MF_ADDR32));
    NEXT;
}
const insn_fn h_xlat = xlat;

/* MOV r/m, Sreg */
static HANDLER(mov_sr_r) { setr(c, i->base, c->seg[i->aux].selector, i->imm); NEXT; }
static HANDLER(mov_sr_m) { st16(c, i, ea(c, i), c->seg[i->aux].selector); NEXT; }
const insn_fn h_mov_sr[2] = {mov_sr_r, mov_sr_m};
