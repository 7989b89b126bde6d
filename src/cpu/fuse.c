/* Fused compare-and-branch: a CMP or TEST (register, immediate or memory
 * operands), a DEC/INC of a register, or a register ADD/OR/AND/SUB/XOR
 * (register or immediate source) directly followed by a Jcc (anywhere in
 * a block) runs as one handler on the first record. It leaves exactly the state the two instructions leave
 * one after the other: the lazy flags are stored as the first one stores
 * them, the condition is evaluated on the operands at hand, and the branch
 * is taken from the Jcc's own record (target, fault address, chain slots),
 * so a non-canonical target faults at the Jcc with the first instruction
 * retired. A record executed alone (single step, interrupt shadow) goes
 * back to its plain handler (fuse_plain). */
#include "cpu/internal.h"
#include "cpu/handlers.h"

enum { FZ_CMP_RR, FZ_CMP_RI, FZ_CMP_RM, FZ_CMP_MR, FZ_CMP_MI, FZ_TEST_RR, FZ_TEST_RI,
       FZ_TEST_MR, FZ_TEST_MI, FZ_DEC_R, FZ_INC_R,
       /* base + displacement memory forms (fast_mem_variant) */
       FZ_CMP_RM_F, FZ_CMP_MR_F, FZ_CMP_MI_F, FZ_TEST_MR_F, FZ_TEST_MI_F,
       /* register ADD/OR/AND/SUB/XOR, reg-reg and reg-imm */
       FZ_ADD_RR, FZ_OR_RR, FZ_AND_RR, FZ_SUB_RR, FZ_XOR_RR,
       FZ_ADD_RI, FZ_OR_RI, FZ_AND_RI, FZ_SUB_RI, FZ_XOR_RI, FZ_FORMS };
static const uint8_t fz_alu_op[5] = {0, 1, 4, 5, 6};

/* The condition on the operands just computed; kind is a constant. */
static inline bool fcond(const struct cpu *c, unsigned kind, unsigned lg, unsigned cond,
                         uint64_t a, uint64_t b, uint64_t r)
{
    if (kind == CC_ADD) {
        bool sf = (r >> ((8u << lg) - 1)) & 1;
        switch (cond) {
        case 2: return r < a;
        case 3: return r >= a;
        case 4: return r == 0;
        case 5: return r != 0;
        case 8: return sf;
        case 9: return !sf;
        default: break;
        }
    } else if (kind == CC_SUB) {
        switch (cond) {
        case 2: return a < b;
        case 3: return a >= b;
        case 4: return a == b;
        case 5: return a != b;
        case 6: return a <= b;
        case 7: return a > b;
        case 8: return (r >> ((8u << lg) - 1)) & 1;
        case 9: return !((r >> ((8u << lg) - 1)) & 1);
        case 12: return sext(a, lg) < sext(b, lg);
        case 13: return sext(a, lg) >= sext(b, lg);
        case 14: return sext(a, lg) <= sext(b, lg);
        case 15: return sext(a, lg) > sext(b, lg);
        default: break;
        }
    } else {
        bool sf = (r >> ((8u << lg) - 1)) & 1;
        if (kind == CC_LOGIC) {
            switch (cond) {
            case 0: case 2: return false;
            case 1: case 3: return true;
            case 4: case 6: return r == 0;
            case 5: case 7: return r != 0;
            case 8: case 12: return sf;
            case 9: case 13: return !sf;
            case 14: return r == 0 || sf;
            case 15: return r != 0 && !sf;
            default: break;
            }
        } else { /* INC/DEC */
            switch (cond) {
            case 4: return r == 0;
            case 5: return r != 0;
            case 8: return sf;
            case 9: return !sf;
            default: break;
            }
        }
    }
    return cc_cond_slow(c, cond);
}

/* The Jcc half: 'j' is the Jcc's record. */
#define FUSED_BRANCH(taken)                                                              \
    do {                                                                                 \
        const struct insn *j = i + 1;                                                    \
        if (taken) {                                                                     \
            if (unlikely(!canonical(j->imm)))                                            \
                raise_gp0(c, j);                                                         \
            JCC_TAKEN(j);                                                                \
        }                                                                                \
        JCC_NOT_TAKEN(j);                                                                \
    } while (0)

#define FUSE_CMP(name, lg, cond, A, B)                                                   \
    static HANDLER(name)                                                                 \
    {                                                                                    \
        uint64_t a = (A), b = (B), r = (a - b) & sz_mask(lg);                           \
        cc_set(c, CC_SUB << 2 | lg, r, a, b);                                            \
        FUSED_BRANCH(fcond(c, CC_SUB, lg, cond, a, b, r));                               \
    }
#define FUSE_TEST(name, lg, cond, A, B)                                                  \
    static HANDLER(name)                                                                 \
    {                                                                                    \
        uint64_t r = (A) & (B);                                                          \
        cc_set(c, CC_LOGIC << 2 | lg, r, 0, 0);                                          \
        FUSED_BRANCH(fcond(c, CC_LOGIC, lg, cond, 0, 0, r));                             \
    }
#define FUSE_INCDEC(name, lg, cond, dec)                                                 \
    static HANDLER(name)                                                                 \
    {                                                                                    \
        uint64_t a = getr(c, i->reg, lg);                                                \
        uint32_t cf = cc_cf(c);                                                          \
        uint64_t r = ((dec) ? a - 1 : a + 1) & sz_mask(lg);                             \
        c->cc_aux = cf;                                                                  \
        cc_set(c, ((dec) ? CC_DEC : CC_INC) << 2 | lg, r, a, 1);                         \
        setr(c, i->reg, r, lg);                                                          \
        FUSED_BRANCH(fcond(c, CC_DEC, lg, cond, a, 1, r));                               \
    }

/* The fast memory forms: a TLB hit, or the generic fused handler. */
#define FUSE_FAST(name, generic, lg, cond, kind, A, B)                                   \
    static HANDLER(name)                                                                 \
    {                                                                                    \
        uint64_t va = c->r[i->base] + (uint64_t)i->disp;                                 \
        struct tlbe *e_ = tlb_entry(c, va);                                              \
        if (unlikely(e_->tag_r != ((va + (1u << lg) - 1) & ~TLBF_MASK)))                 \
            return generic(c, i);                                                        \
        uint64_t m = hload((void *)(va + e_->addend), lg);                               \
        uint64_t a = (A), b = (B), r;                                                    \
        if (kind == CC_SUB) {                                                            \
            r = (a - b) & sz_mask(lg);                                                   \
            cc_set(c, CC_SUB << 2 | lg, r, a, b);                                        \
        } else {                                                                         \
            r = a & b;                                                                   \
            cc_set(c, CC_LOGIC << 2 | lg, r, 0, 0);                                      \
        }                                                                                \
        FUSED_BRANCH(fcond(c, kind, lg, cond, a, b, r));                                 \
    }

/* Register ADD/OR/AND/SUB/XOR with the result written back. */
#define FUSE_ALU(name, lg, cond, op, B)                                                  \
    static HANDLER(name)                                                                 \
    {                                                                                    \
        uint64_t a = getr(c, i->reg, lg), b = (B), r;                                    \
        unsigned kind;                                                                   \
        if (op == 0) {                                                                   \
            r = (a + b) & sz_mask(lg);                                                   \
            kind = CC_ADD;                                                               \
            cc_set(c, CC_ADD << 2 | lg, r, a, b);                                        \
        } else if (op == 5) {                                                            \
            r = (a - b) & sz_mask(lg);                                                   \
            kind = CC_SUB;                                                               \
            cc_set(c, CC_SUB << 2 | lg, r, a, b);                                        \
        } else {                                                                         \
            r = op == 1 ? a | b : op == 4 ? a & b : a ^ b;                               \
            kind = CC_LOGIC;                                                             \
            cc_set(c, CC_LOGIC << 2 | lg, r, 0, 0);                                      \
        }                                                                                \
        setr(c, i->reg, r, lg);                                                          \
        FUSED_BRANCH(fcond(c, kind, lg, cond, a, b, r));                                 \
    }

#define REG(lg) getr(c, i->reg, lg)
#define BASE(lg) getr(c, i->base, lg)
#define MEM(lg) ldn(c, i, ea(c, i), lg)
#define FUSE_ALL(lg, cond)                                                               \
    FUSE_CMP(fcmp_rr_##lg##_##cond, lg, cond, REG(lg), BASE(lg))                         \
    FUSE_CMP(fcmp_ri_##lg##_##cond, lg, cond, REG(lg), i->imm)                           \
    FUSE_CMP(fcmp_rm_##lg##_##cond, lg, cond, REG(lg), MEM(lg))                          \
    FUSE_CMP(fcmp_mr_##lg##_##cond, lg, cond, MEM(lg), REG(lg))                          \
    FUSE_CMP(fcmp_mi_##lg##_##cond, lg, cond, MEM(lg), i->imm)                           \
    FUSE_TEST(ftest_rr_##lg##_##cond, lg, cond, REG(lg), BASE(lg))                       \
    FUSE_TEST(ftest_ri_##lg##_##cond, lg, cond, REG(lg), i->imm)                         \
    FUSE_TEST(ftest_mr_##lg##_##cond, lg, cond, MEM(lg), REG(lg))                        \
    FUSE_TEST(ftest_mi_##lg##_##cond, lg, cond, MEM(lg), i->imm)                         \
    FUSE_INCDEC(fdec_r_##lg##_##cond, lg, cond, true)                                    \
    FUSE_INCDEC(finc_r_##lg##_##cond, lg, cond, false)                                   \
    FUSE_FAST(fcmp_rmf_##lg##_##cond, fcmp_rm_##lg##_##cond, lg, cond, CC_SUB, REG(lg), m)  \
    FUSE_FAST(fcmp_mrf_##lg##_##cond, fcmp_mr_##lg##_##cond, lg, cond, CC_SUB, m, REG(lg))  \
    FUSE_FAST(fcmp_mif_##lg##_##cond, fcmp_mi_##lg##_##cond, lg, cond, CC_SUB, m, i->imm)   \
    FUSE_FAST(ftest_mrf_##lg##_##cond, ftest_mr_##lg##_##cond, lg, cond, CC_LOGIC, m,       \
              REG(lg))                                                                   \
    FUSE_FAST(ftest_mif_##lg##_##cond, ftest_mi_##lg##_##cond, lg, cond, CC_LOGIC, m, i->imm) \
    FUSE_ALU(fadd_rr_##lg##_##cond, lg, cond, 0, BASE(lg))                                 \
    FUSE_ALU(for_rr_##lg##_##cond, lg, cond, 1, BASE(lg))                                  \
    FUSE_ALU(fand_rr_##lg##_##cond, lg, cond, 4, BASE(lg))                                 \
    FUSE_ALU(fsub_rr_##lg##_##cond, lg, cond, 5, BASE(lg))                                 \
    FUSE_ALU(fxor_rr_##lg##_##cond, lg, cond, 6, BASE(lg))                                 \
    FUSE_ALU(fadd_ri_##lg##_##cond, lg, cond, 0, i->imm)                                   \
    FUSE_ALU(for_ri_##lg##_##cond, lg, cond, 1, i->imm)                                    \
    FUSE_ALU(fand_ri_##lg##_##cond, lg, cond, 4, i->imm)                                   \
    FUSE_ALU(fsub_ri_##lg##_##cond, lg, cond, 5, i->imm)                                   \
    FUSE_ALU(fxor_ri_##lg##_##cond, lg, cond, 6, i->imm)
#define FUSE_CONDS(lg)                                                                   \
    FUSE_ALL(lg, 0) FUSE_ALL(lg, 1) FUSE_ALL(lg, 2) FUSE_ALL(lg, 3) FUSE_ALL(lg, 4)      \
    FUSE_ALL(lg, 5) FUSE_ALL(lg, 6) FUSE_ALL(lg, 7) FUSE_ALL(lg, 8) FUSE_ALL(lg, 9)      \
    FUSE_ALL(lg, 10) FUSE_ALL(lg, 11) FUSE_ALL(lg, 12) FUSE_ALL(lg, 13) FUSE_ALL(lg, 14) \
    FUSE_ALL(lg, 15)
FUSE_CONDS(0)
FUSE_CONDS(1)
FUSE_CONDS(2)
FUSE_CONDS(3)

#define ROW(f, lg)                                                                       \
    {f##_##lg##_0, f##_##lg##_1, f##_##lg##_2, f##_##lg##_3, f##_##lg##_4, f##_##lg##_5, \
     f##_##lg##_6, f##_##lg##_7, f##_##lg##_8, f##_##lg##_9, f##_##lg##_10,              \
     f##_##lg##_11, f##_##lg##_12, f##_##lg##_13, f##_##lg##_14, f##_##lg##_15}
#define FORM(f) {ROW(f, 0), ROW(f, 1), ROW(f, 2), ROW(f, 3)}
static const insn_fn h_fused[FZ_FORMS][4][16] = {
    FORM(fcmp_rr), FORM(fcmp_ri), FORM(fcmp_rm), FORM(fcmp_mr), FORM(fcmp_mi),
    FORM(ftest_rr), FORM(ftest_ri), FORM(ftest_mr), FORM(ftest_mi), FORM(fdec_r),
    FORM(finc_r), FORM(fcmp_rmf), FORM(fcmp_mrf), FORM(fcmp_mif), FORM(ftest_mrf),
    FORM(ftest_mif), FORM(fadd_rr), FORM(for_rr), FORM(fand_rr), FORM(fsub_rr),
    FORM(fxor_rr), FORM(fadd_ri), FORM(for_ri), FORM(fand_ri), FORM(fsub_ri), FORM(fxor_ri),
};

/* The plain handler of each form, by size. */
static insn_fn plain_of(unsigned form, unsigned lg)
{
    switch (form) {
    case FZ_CMP_RR: return h_alu[ALU_RR][7][lg];
    case FZ_CMP_RI: return h_alu[ALU_RI][7][lg];
    case FZ_CMP_RM: return h_alu[ALU_RM][7][lg];
    case FZ_CMP_MR: return h_alu[ALU_MR][7][lg];
    case FZ_CMP_MI: return h_alu[ALU_MI][7][lg];
    case FZ_TEST_RR: return h_test[0][lg];
    case FZ_TEST_RI: return h_test[2][lg];
    case FZ_TEST_MR: return h_test[1][lg];
    case FZ_TEST_MI: return h_test[3][lg];
    case FZ_DEC_R: return h_unop[0][1][lg];
    case FZ_INC_R: return h_unop[0][0][lg];
    case FZ_CMP_RM_F: return fast_mem_variant(h_alu[ALU_RM][7][lg]);
    case FZ_CMP_MR_F: return fast_mem_variant(h_alu[ALU_MR][7][lg]);
    case FZ_CMP_MI_F: return fast_mem_variant(h_alu[ALU_MI][7][lg]);
    case FZ_TEST_MR_F: return fast_mem_variant(h_test[1][lg]);
    case FZ_TEST_MI_F: return fast_mem_variant(h_test[3][lg]);
    default:
        if (form >= FZ_ADD_RI)
            return h_alu[ALU_RI][fz_alu_op[form - FZ_ADD_RI]][lg];
        return h_alu[ALU_RR][fz_alu_op[form - FZ_ADD_RR]][lg];
    }
}

/* Fuse every producer + Jcc pair of a block (a block goes on past a Jcc). */
void fuse_block(struct insn *recs, unsigned n)
{
    for (unsigned x = 1; x < n; x++) {
        struct insn *a = &recs[x - 1], *j = &recs[x];
        int cond = -1;
        for (unsigned k = 0; k < 16; k++)
            if (j->fn == h_jcc[k])
                cond = (int)k;
        if (cond < 0 || (a->mf & MF_FUSED))
            continue;
        for (unsigned form = 0; form < FZ_FORMS && !(a->mf & MF_FUSED); form++)
            for (unsigned lg = 0; lg < 4; lg++)
                if (a->fn == plain_of(form, lg)) {
                    a->fn = h_fused[form][lg][cond];
                    a->mf |= MF_FUSED;
                    break;
                }
    }
}

insn_fn fuse_plain(const struct insn *rec)
{
    for (unsigned form = 0; form < FZ_FORMS; form++)
        for (unsigned lg = 0; lg < 4; lg++)
            for (unsigned cond = 0; cond < 16; cond++)
                if (rec->fn == h_fused[form][lg][cond])
                    return plain_of(form, lg);
    return rec->fn;
}
