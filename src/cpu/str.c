/* String instructions. REP forms run element by element with RCX/RSI/RDI
 * updated after each element, so a fault leaves a restartable state; they
 * stop between elements when an event is pending or the instruction limit
 * is reached. Forward MOVS/STOS on RAM
 * within a page go through host memcpy/memset. */
#include "cpu/internal.h"
#include "cpu/handlers.h"

enum { S_MOVS, S_CMPS, S_STOS, S_LODS, S_SCAS, S_INS, S_OUTS };

int io_check(struct cpu *c, const struct insn *i, uint16_t port, unsigned len);
void io_port(struct cpu *c, uint16_t port, void *data, unsigned len, bool write);

static inline uint64_t areg(const struct cpu *c, unsigned r, bool a32)
{
    return a32 ? (uint32_t)c->r[r] : c->r[r];
}

static inline void aset(struct cpu *c, unsigned r, uint64_t v, bool a32)
{
    c->r[r] = a32 ? (uint32_t)v : v;
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
static inline void one(struct cpu *c, const struct insn *i, unsigned op, unsigned lg, bool a32,
                       int64_t step)
{
    uint64_t si = areg(c, 6, a32), di = areg(c, 7, a32);
    uint64_t src = seg_lin(c, si, insn_seg(i), a32); /* DS or the override */
    uint64_t dst = seg_lin(c, di, SEG_ES, a32);      /* ES, in 64-bit code no base */
    unsigned n = 1u << lg;
    switch (op) {
    case S_MOVS: {
        uint64_t v = ldn(c, i, src, lg);
        stn(c, i, dst, v, lg);
        aset(c, 6, si + step, a32);
        aset(c, 7, di + step, a32);
        break;
    }
    case S_CMPS: {
        uint64_t a = ldn(c, i, src, lg);
        uint64_t b = ldn(c, i, dst, lg);
        cc_set(c, CC_SUB << 2 | lg, (a - b) & sz_mask(lg), a, b);
        aset(c, 6, si + step, a32);
        aset(c, 7, di + step, a32);
        break;
    }
    case S_STOS:
        stn(c, i, dst, c->r[0], lg);
        aset(c, 7, di + step, a32);
        break;
    case S_LODS: {
        uint64_t v = ldn(c, i, src, lg);
        setr(c, 0, v, lg);
        aset(c, 6, si + step, a32);
        break;
    }
    case S_SCAS: {
        uint64_t a = getr(c, 0, lg), b = ldn(c, i, dst, lg);
        cc_set(c, CC_SUB << 2 | lg, (a - b) & sz_mask(lg), a, b);
        aset(c, 7, di + step, a32);
        break;
    }
    case S_INS: {
        uint64_t v = ~0ull;
        uint16_t port = (uint16_t)c->r[2];
        /* probe the destination first: a fault must not lose the input */
        mem_probe_write(c, i, dst, n, ACC_W);
        io_port(c, port, &v, n, false);
        stn(c, i, dst, v, lg);
        aset(c, 7, di + step, a32);
        break;
    }
    default: { /* OUTS */
        uint64_t v = ldn(c, i, src, lg);
        io_port(c, (uint16_t)c->r[2], &v, n, true);
        aset(c, 6, si + step, a32);
        break;
    }
    }
}

/* Returns true if the loop stopped early for an event (RIP stays here). */
static NOINLINE bool str_exec(struct cpu *c, const struct insn *i, unsigned op, unsigned lg,
                              unsigned rep)
{
    bool a32 = i->mf & MF_ADDR32;
    unsigned n = 1u << lg;
    int64_t step = (c->rflags & F_DF) ? -(int64_t)n : (int64_t)n;
    if (op == S_INS || op == S_OUTS)
        io_check(c, i, (uint16_t)c->r[2], n);
    if (!rep) {
        one(c, i, op, lg, a32, step);
        return false;
    }
    unsigned budget = 0;
    for (;;) {
        uint64_t cnt = areg(c, 1, a32);
        if (cnt == 0)
            return false;
        /* bulk forward MOVS/STOS inside one page */
        if (step > 0 && (op == S_MOVS || op == S_STOS)) {
            uint64_t di = areg(c, 7, a32);
            uint64_t dst = seg_lin(c, di, SEG_ES, a32);
            uint64_t room = (4096 - (dst & 0xfff)) / n;
            uint64_t si = 0;
            if (op == S_MOVS) {
                si = seg_lin(c, areg(c, 6, a32), insn_seg(i), a32);
                uint64_t r2 = (4096 - (si & 0xfff)) / n;
                if (r2 < room)
                    room = r2;
            }
            uint64_t k = cnt < room ? cnt : room;
            if (a32) {
                /* stay clear of 32-bit wrap-around */
                uint64_t lim = (0x100000000ull - areg(c, 7, a32)) / n;
                if (k > lim) k = lim;
                if (op == S_MOVS) {
                    lim = (0x100000000ull - areg(c, 6, a32)) / n;
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
                aset(c, 7, di + k * n, a32);
                aset(c, 1, cnt - k, a32);
                budget += (unsigned)(k * n);
                goto chunk_done;
            }
            if (dp && sp && !(dp > sp && dp < sp + k * n)) {
                memmove(dp, sp, k * n);
                aset(c, 6, areg(c, 6, a32) + k * n, a32);
                aset(c, 7, di + k * n, a32);
                aset(c, 1, cnt - k, a32);
                budget += (unsigned)(k * n);
                goto chunk_done;
            }
        }
        one(c, i, op, lg, a32, step);
        aset(c, 1, cnt - 1, a32);
        budget += n;
        if (op == S_CMPS || op == S_SCAS) {
            bool zf = cc_cond(c, 4);
            if (rep == 1 ? !zf : zf)
                return false;
        }
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
                areg(c, 1, a32))
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
