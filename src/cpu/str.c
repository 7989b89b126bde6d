/* String instructions. REP forms run element by element with RCX/RSI/RDI
 * updated after each element, so a fault leaves a restartable state; they
 * stop between elements when an event is pending or the instruction limit
 * is reached, and after each one under TF (a single-step trap per
 * element, as hardware takes it). Forward MOVS/STOS on RAM
 * within a page go through host memcpy/memset. */
#include "cpu/internal.h"
#include "cpu/handlers.h"

enum { S_MOVS, S_CMPS, S_STOS, S_LODS, S_SCAS, S_INS, S_OUTS };

int io_check(struct cpu *c, const struct insn *i, uint16_t port, unsigned len);
void io_port(struct cpu *c, uint16_t port, void *data, unsigned len, bool write);

/* 'am': the address size's mask (0xffff, 0xffffffff or ~0). A 16-bit
 * address size works on SI, DI and CX and leaves the rest of each
 * register; a 32-bit one writes ESI, EDI and ECX as any 32-bit result. */
static inline uint64_t areg(const struct cpu *c, unsigned r, uint64_t am)
{
    return c->r[r] & am;
}

static inline void aset(struct cpu *c, unsigned r, uint64_t v, uint64_t am)
{
    c->r[r] = am == 0xffff ? (c->r[r] & ~am) | (v & am) : v & am;
}

static inline uint64_t addr_mask(const struct insn *i)
{
    return !(i->mf & MF_ADDR32) ? ~0ull : (i->mf & MF_ADDR16) ? 0xffff : 0xffffffffull;
}

/* Host pointer if [va, va+len) is in one RAM page with the fast tag. */
static inline uint8_t *fast_ptr(struct cpu *c, uint64_t va, uint64_t len, bool w)
{
    if (len == 0 || ((va & 0xfff) + len) > 4096)
        return NULL;
    struct tlbe *e = tlb_entry(c, va);
    uint64_t tag = w ? e->tag_w : e->tag_r;
    if (tag != ((va + len - 1) & ~TLBF_MASK))
        return NULL;
    return (uint8_t *)(va + e->addend);
}

/* One element; returns false when a REPE/REPNE condition ends the loop. */
static inline void one(struct cpu *c, const struct insn *i, unsigned op, unsigned lg, uint64_t am,
                       int64_t step)
{
    bool a32 = am != ~0ull;
    uint64_t si = areg(c, 6, am), di = areg(c, 7, am);
    unsigned n = 1u << lg;
    if (op != S_STOS && op != S_SCAS && op != S_INS) /* a source */
        seg_limit_check(c, i, insn_seg(i), si, n);
    if (op != S_LODS && op != S_OUTS) /* a destination */
        seg_limit_check(c, i, SEG_ES, di, n);
    uint64_t src = seg_lin_unchecked(c, si, insn_seg(i), a32); /* DS or the override */
    uint64_t dst = seg_lin_unchecked(c, di, SEG_ES, a32);      /* ES, in 64-bit code no base */
    switch (op) {
    case S_MOVS: {
        uint64_t v = ldn(c, i, src, lg);
        stn(c, i, dst, v, lg);
        aset(c, 6, si + step, am);
        aset(c, 7, di + step, am);
        break;
    }
    case S_CMPS: {
        uint64_t a = ldn(c, i, src, lg);
        uint64_t b = ldn(c, i, dst, lg);
        cc_set(c, CC_SUB << 2 | lg, (a - b) & sz_mask(lg), a, b);
        aset(c, 6, si + step, am);
        aset(c, 7, di + step, am);
        break;
    }
    case S_STOS:
        stn(c, i, dst, c->r[0], lg);
        aset(c, 7, di + step, am);
        break;
    case S_LODS: {
        uint64_t v = ldn(c, i, src, lg);
        setr(c, 0, v, lg);
        aset(c, 6, si + step, am);
        break;
    }
    case S_SCAS: {
        uint64_t a = getr(c, 0, lg), b = ldn(c, i, dst, lg);
        cc_set(c, CC_SUB << 2 | lg, (a - b) & sz_mask(lg), a, b);
        aset(c, 7, di + step, am);
        break;
    }
    case S_INS: {
        uint64_t v = ~0ull;
        uint16_t port = (uint16_t)c->r[2];
        /* probe the destination first: a fault must not lose the input */
        mem_probe_write(c, i, dst, n, ACC_W);
        io_port(c, port, &v, n, false);
        stn(c, i, dst, v, lg);
        aset(c, 7, di + step, am);
        break;
    }
    default: { /* OUTS */
        uint64_t v = ldn(c, i, src, lg);
        io_port(c, (uint16_t)c->r[2], &v, n, true);
        aset(c, 6, si + step, am);
        break;
    }
    }
}

/* Returns true if the loop stopped early for an event (RIP stays here). */
static NOINLINE bool str_exec(struct cpu *c, const struct insn *i, unsigned op, unsigned lg,
                              unsigned rep)
{
    uint64_t am = addr_mask(i);
    bool a32 = am != ~0ull;
    unsigned n = 1u << lg;
    int64_t step = (c->rflags & F_DF) ? -(int64_t)n : (int64_t)n;
    if (op == S_INS || op == S_OUTS)
        io_check(c, i, (uint16_t)c->r[2], n);
    if (!rep) {
        one(c, i, op, lg, am, step);
        return false;
    }
    unsigned budget = 0;
    for (;;) {
        uint64_t cnt = areg(c, 1, am);
        if (cnt == 0)
            return false;
        /* bulk forward MOVS/STOS inside one page (not where a segment's
         * limit could end it: element by element there) */
        if (step > 0 && (op == S_MOVS || op == S_STOS) && !c->seg_limited &&
            !(c->rflags & F_TF)) {
            uint64_t di = areg(c, 7, am);
            uint64_t dst = seg_lin_unchecked(c, di, SEG_ES, a32);
            uint64_t room = (4096 - (dst & 0xfff)) / n;
            uint64_t si = 0;
            if (op == S_MOVS) {
                si = seg_lin_unchecked(c, areg(c, 6, am), insn_seg(i), a32);
                uint64_t r2 = (4096 - (si & 0xfff)) / n;
                if (r2 < room)
                    room = r2;
            }
            uint64_t k = cnt < room ? cnt : room;
            if (a32) {
                /* stay clear of the offset's wrap-around */
                uint64_t lim = (am + 1 - areg(c, 7, am)) / n;
                if (k > lim) k = lim;
                if (op == S_MOVS) {
                    lim = (am + 1 - areg(c, 6, am)) / n;
                    if (k > lim) k = lim;
                }
            }
            uint8_t *dp = k ? fast_ptr(c, dst, k * n, true) : NULL;
            uint8_t *sp = (dp && op == S_MOVS) ? fast_ptr(c, si, k * n, false) : NULL;
            if (dp && op == S_STOS) {
                uint64_t v = c->r[0];
                if (lg == 0)
                    memset(dp, (int)(uint8_t)v, k);
                else
                    for (uint64_t j = 0; j < k; j++)
                        memcpy(dp + j * n, &v, n);
                aset(c, 7, di + k * n, am);
                aset(c, 1, cnt - k, am);
                budget += (unsigned)(k * n);
                goto chunk_done;
            }
            if (dp && sp && !(dp > sp && dp < sp + k * n)) {
                memmove(dp, sp, k * n);
                aset(c, 6, areg(c, 6, am) + k * n, am);
                aset(c, 7, di + k * n, am);
                aset(c, 1, cnt - k, am);
                budget += (unsigned)(k * n);
                goto chunk_done;
            }
        }
        one(c, i, op, lg, am, step);
        aset(c, 1, cnt - 1, am);
        budget += n;
        if (op == S_CMPS || op == S_SCAS) {
            bool zf = cc_cond(c, 4);
            if (rep == 1 ? !zf : zf)
                return false;
        }
        /* single-stepping (TF): a trap after each element, RIP at the REP
         * until the last */
        if (unlikely(c->rflags & F_TF) && areg(c, 1, am))
            return true;
    chunk_done:
        if (budget >= 4096) {
            budget = 0;
            /* a long REP counts as one instruction per 4 KiB, so that an
             * instruction limit (an SMP turn, a fuzzer's bound) ends it as
             * an event does: a guest's endless REP STOS over a page table
             * mapping itself kept fuzz_engine in one input for 15 minutes */
            c->icount++;
            if ((atomic_load_explicit(&c->events, memory_order_relaxed) ||
                 (c->insn_limit && c->icount >= c->insn_limit)) &&
                areg(c, 1, am))
                return true;
        }
    }
}

#define STR_DEFS(op, lg)                                                                 \
    static HANDLER(str_##op##_##lg##_0)                                                  \
    {                                                                                    \
        str_exec(c, i, op, lg, 0);                                                       \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(str_##op##_##lg##_1)                                                  \
    {                                                                                    \
        if (str_exec(c, i, op, lg, 1)) {                                                 \
            stop_before(c, i);                                                           \
            return;                                                                      \
        }                                                                                \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(str_##op##_##lg##_2)                                                  \
    {                                                                                    \
        if (str_exec(c, i, op, lg, 2)) {                                                 \
            stop_before(c, i);                                                           \
            return;                                                                      \
        }                                                                                \
        NEXT;                                                                            \
    }
#define STR_SIZES(op) STR_DEFS(op, 0) STR_DEFS(op, 1) STR_DEFS(op, 2) STR_DEFS(op, 3)
STR_SIZES(0)
STR_SIZES(1)
STR_SIZES(2)
STR_SIZES(3)
STR_SIZES(4)
STR_SIZES(5)
STR_SIZES(6)
#define STR_LG(op, lg) {str_##op##_##lg##_0, str_##op##_##lg##_1, str_##op##_##lg##_2}
#define STR_OP(op) {STR_LG(op, 0), STR_LG(op, 1), STR_LG(op, 2), STR_LG(op, 3)}
const insn_fn h_str[7][4][3] = {STR_OP(0), STR_OP(1), STR_OP(2), STR_OP(3),
                                STR_OP(4), STR_OP(5), STR_OP(6)};
