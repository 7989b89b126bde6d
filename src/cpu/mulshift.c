/* Shifts, rotates, SHLD/SHRD, MUL/DIV and IMUL.
 * SHL/SHR/SAR by 1..size-1 set lazy flags. ROL/ROR and MUL/IMUL change
 * only CF and OF on this kind of host (AMD: SF, ZF, AF and PF are left as
 * they were, OF of a rotate follows the same formula for every count), so
 * they run in C and keep the other flags lazy (cc_set_cfof) instead of a
 * POPF/PUSHF round trip through the host instruction. Whether the host
 * behaves so is probed once at start-up (probe_host); a host that
 * differs (Intel computes the undefined flags of a multiply) keeps the
 * host instructions, so the results stay bit-exact with the host either
 * way. Everything else (RCL/RCR, counts of 0, SHLD/SHRD, DIV) runs the
 * host instruction. */
#include "cpu/internal.h"
#include "cpu/handlers.h"
#include "cpu/alu_internal.h"

/* How this host sets the flags the SDM leaves undefined, as probed at
 * start-up (probe_host): the C fast paths follow the first model that
 * matches the host instruction on every probed case, so results stay
 * bit-exact with the host either way. */
enum host_model {
    MODEL_HOST,   /* none matched: run the host instruction */
    MODEL_AMD,    /* rotates: OF from the last step; multiplies: only CF/OF change */
    MODEL_INTEL,  /* rotates: OF from the first step; multiplies: CF = OF =
                     overflow, SF and PF from the (low) result, ZF = AF = 0 */
};
static enum host_model host_rot_model; /* ROL/ROR: see fast_rot */
static enum host_model host_mul_model; /* IMUL r,r/m(,imm), MUL/IMUL r/m: fast_imul2, fast_mul1 */

/* --- host-executed producers -------------------------------------------------------
 * 'v' is the full 64-bit destination register image, so partial-register
 * writes (8/16-bit preserved, 32-bit zero-extended) follow the host. */

/* Shifts and rotates: sub-op = ModRM.reg (0 rol 1 ror 2 rcl 3 rcr 4 shl 5 shr 6 sal 7 sar) */
#define SH1(mn, mod)                                                                     \
    asm(HOST_PRE mn " %%cl, %" mod "[v]" HOST_POST : [v] "+r"(v), [f] "+r"(f) : "c"(cnt) : "cc")
#define SH_SIZES(mn)                                                                     \
    switch (lg) {                                                                        \
    case 0: SH1(mn "b", "b"); break;                                                     \
    case 1: SH1(mn "w", "w"); break;                                                     \
    case 2: SH1(mn "l", "k"); break;                                                     \
    default: SH1(mn "q", "q"); break;                                                    \
    }
static NOINLINE uint64_t host_shift(struct cpu *c, unsigned op, unsigned lg, uint64_t v,
                                    uint8_t cnt)
{
    uint64_t f = host_flags_in(c);
    switch (op) {
    case 0: SH_SIZES("rol"); break;
    case 1: SH_SIZES("ror"); break;
    case 2: SH_SIZES("rcl"); break;
    case 3: SH_SIZES("rcr"); break;
    case 4: case 6: SH_SIZES("shl"); break;
    case 5: SH_SIZES("shr"); break;
    default: SH_SIZES("sar"); break;
    }
    cc_set_eager(c, (uint32_t)f);
    return v;
}

bool host_rot_flags_modelled(void)
{
    return host_rot_model != MODEL_HOST;
}

bool host_imul_flags_from_result(void)
{
    return host_mul_model == MODEL_INTEL;
}

bool host_imul_keeps_other_flags(void)
{
    return host_mul_model == MODEL_AMD;
}

/* SHL/SHR/SAR by 1..size-1 in C with lazy flags; everything else
 * (rotates, count 0, 8/16-bit counts beyond the size) on the host. */
/* ROL/ROR by a nonzero (masked) count: the value rotated by the count
 * modulo the size; CF is the bit that went round last, OF = CF ^ MSB
 * (ROL) or MSB ^ MSB-1 (ROR). */
static inline uint64_t fast_rot(struct cpu *c, enum host_model model, bool right, unsigned lg,
                                uint64_t a, unsigned cnt)
{
    unsigned bits = 8u << lg, top = bits - 1, e = cnt & top;
    uint64_t m = sz_mask(lg), r;
    a &= m;
    uint32_t cf, of;
    if (!right) {
        r = e ? ((a << e) | (a >> (bits - e))) & m : a;
        cf = r & 1;
        if (model == MODEL_INTEL) /* as after the first one-bit step */
            of = ((a >> top) ^ (a >> (top - 1))) & 1;
        else
            of = ((r >> top) & 1) ^ cf;
    } else {
        r = e ? ((a >> e) | (a << (bits - e))) & m : a;
        cf = (r >> top) & 1;
        if (model == MODEL_INTEL)
            of = ((a >> top) ^ a) & 1;
        else
            of = ((r >> top) ^ (r >> (top - 1))) & 1;
    }
    cc_set_cfof(c, cf | (of ? F_OF : 0));
    return r;
}

static inline bool fast_shift(struct cpu *c, unsigned op, unsigned lg, uint64_t a, unsigned cnt,
                              uint64_t *r)
{
    unsigned bits = 8u << lg;
    cnt &= lg == 3 ? 63 : 31;
    if (cnt == 0)
        return false;
    if (op < 2) {
        if (host_rot_model == MODEL_HOST)
            return false;
        *r = fast_rot(c, host_rot_model, op, lg, a, cnt);
        return true;
    }
    if (cnt >= bits || op < 4)
        return false;
    uint64_t m = sz_mask(lg);
    a &= m;
    unsigned kind;
    if (op == 4 || op == 6) {
        *r = (a << cnt) & m;
        kind = CC_SHL;
    } else if (op == 5) {
        *r = a >> cnt;
        kind = CC_SHR;
    } else {
        *r = (uint64_t)(sext(a, lg) >> cnt) & m;
        kind = CC_SAR;
    }
    cc_set(c, kind << 2 | lg, *r, a, cnt);
    return true;
}

/* aux: sub-op | count source << 3 (0: imm, 1: CL) ; lg in the table */
static inline uint8_t shift_count(const struct cpu *c, const struct insn *i)
{
    return (i->aux & 8) ? (uint8_t)c->r[1] : (uint8_t)i->imm;
}

#define SHIFT_DEFS(lg)                                                                   \
    static HANDLER(shift_r_##lg)                                                         \
    {                                                                                    \
        uint64_t a = lg ? c->r[i->reg] : R8(i->reg), r;                                  \
        if (fast_shift(c, i->aux & 7, lg, a, shift_count(c, i), &r)) {                   \
            setr(c, i->reg, r, lg);                                                      \
            NEXT;                                                                        \
        }                                                                                \
        uint64_t v = host_shift(c, i->aux & 7, lg, a, shift_count(c, i));                \
        if (lg)                                                                          \
            c->r[i->reg] = v;                                                            \
        else                                                                             \
            R8(i->reg) = (uint8_t)v;                                                     \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(shift_m_##lg)                                                         \
    {                                                                                    \
        RMW_BEGIN(lg);                                                                   \
        uint64_t r;                                                                      \
        if (!fast_shift(c, i->aux & 7, lg, a, shift_count(c, i), &r))                    \
            r = host_shift(c, i->aux & 7, lg, a, shift_count(c, i));                     \
        RMW_END(lg, r);                                                                  \
        NEXT;                                                                            \
    }
SHIFT_DEFS(0)
SHIFT_DEFS(1)
SHIFT_DEFS(2)
SHIFT_DEFS(3)
const insn_fn h_shift[2][4] = {{shift_r_0, shift_r_1, shift_r_2, shift_r_3},
                               {shift_m_0, shift_m_1, shift_m_2, shift_m_3}};

/* SHLD/SHRD: aux bit0 = right, bit3 = count in CL */
#define SHD1(mn, mod)                                                                    \
    asm(HOST_PRE mn " %%cl, %" mod "[s], %" mod "[v]" HOST_POST                          \
        : [v] "+r"(v), [f] "+r"(f) : [s] "r"(s), "c"(cnt) : "cc")
static NOINLINE uint64_t host_shd(struct cpu *c, bool right, unsigned lg, uint64_t v, uint64_t s,
                                  uint8_t cnt)
{
    uint64_t f = host_flags_in(c);
    if (right) {
        if (lg == 1) SHD1("shrdw", "w"); else if (lg == 2) SHD1("shrdl", "k"); else SHD1("shrdq", "q");
    } else {
        if (lg == 1) SHD1("shldw", "w"); else if (lg == 2) SHD1("shldl", "k"); else SHD1("shldq", "q");
    }
    cc_set_eager(c, (uint32_t)f);
    return v;
}
#define SHD_DEFS(lg)                                                                     \
    static HANDLER(shd_r_##lg)                                                           \
    {                                                                                    \
        c->r[i->base] = host_shd(c, i->aux & 1, lg, c->r[i->base], c->r[i->reg],         \
                                 shift_count(c, i));                                     \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(shd_m_##lg)                                                           \
    {                                                                                    \
        RMW_BEGIN(lg);                                                                   \
        uint64_t r = host_shd(c, i->aux & 1, lg, a, c->r[i->reg], shift_count(c, i));    \
        RMW_END(lg, r);                                                                  \
        NEXT;                                                                            \
    }
SHD_DEFS(1)
SHD_DEFS(2)
SHD_DEFS(3)
const insn_fn h_shd[2][4] = {{0, shd_r_1, shd_r_2, shd_r_3}, {0, shd_m_1, shd_m_2, shd_m_3}};

/* MUL/IMUL (one operand): AX/DX:AX/EDX:EAX/RDX:RAX */
#define MUL1(mn, mod)                                                                    \
    asm(HOST_PRE mn " %" mod "[s]" HOST_POST : "+a"(ax), "+d"(dx), [f] "+r"(f) : [s] "r"(s) : "cc")
static NOINLINE void host_mul1(struct cpu *c, bool sign, unsigned lg, uint64_t s)
{
    uint64_t f = host_flags_in(c), ax = c->r[0], dx = c->r[2];
    if (sign) {
        switch (lg) {
        case 0: MUL1("imulb", "b"); break;
        case 1: MUL1("imulw", "w"); break;
        case 2: MUL1("imull", "k"); break;
        default: MUL1("imulq", "q"); break;
        }
    } else {
        switch (lg) {
        case 0: MUL1("mulb", "b"); break;
        case 1: MUL1("mulw", "w"); break;
        case 2: MUL1("mull", "k"); break;
        default: MUL1("mulq", "q"); break;
        }
    }
    c->r[0] = ax;
    c->r[2] = dx;
    cc_set_eager(c, (uint32_t)f);
}

/* DIV/IDIV: the #DE checks come first, so the host instruction never traps. */
static NOINLINE void host_div1(struct cpu *c, const struct insn *i, bool sign, unsigned lg,
                               uint64_t s)
{
    uint64_t ax = c->r[0], dx = c->r[2], m = sz_mask(lg);
    s &= m;
    if (s == 0)
        raise_exc(c, i, EXC_DE, NO_ERR);
    if (!sign) {
        uint64_t hi = lg == 0 ? (ax >> 8) & 0xff : dx & m;
        if (hi >= s)
            raise_exc(c, i, EXC_DE, NO_ERR);
    } else {
        __int128 n, q;
        int64_t d = sext(s, lg);
        if (lg == 0)
            n = (int16_t)ax;
        else if (lg == 1)
            n = (int32_t)((uint32_t)(uint16_t)dx << 16 | (uint16_t)ax);
        else if (lg == 2)
            n = (int64_t)((uint64_t)(uint32_t)dx << 32 | (uint32_t)ax);
        else
            n = (__int128)((unsigned __int128)dx << 64 | ax);
        if (d == -1) {
            /* q = -n must fit: n in [-(2^(b-1)-1), 2^(b-1)] */
            __int128 lim = (__int128)1 << ((8u << lg) - 1);
            if (n > lim || n < -(lim - 1))
                raise_exc(c, i, EXC_DE, NO_ERR);
        } else {
            q = n / d;
            __int128 lim = (__int128)1 << ((8u << lg) - 1);
            if (q >= lim || q < -lim)
                raise_exc(c, i, EXC_DE, NO_ERR);
        }
    }
    uint64_t f = host_flags_in(c);
    if (sign) {
        switch (lg) {
        case 0: MUL1("idivb", "b"); break;
        case 1: MUL1("idivw", "w"); break;
        case 2: MUL1("idivl", "k"); break;
        default: MUL1("idivq", "q"); break;
        }
    } else {
        switch (lg) {
        case 0: MUL1("divb", "b"); break;
        case 1: MUL1("divw", "w"); break;
        case 2: MUL1("divl", "k"); break;
        default: MUL1("divq", "q"); break;
        }
    }
    c->r[0] = ax;
    c->r[2] = dx;
    cc_set_eager(c, (uint32_t)f);
}

/* The flags of a multiply whose low result is 'lo' (2^lg bytes). */
static inline void mul_flags(struct cpu *c, enum host_model model, unsigned lg, uint64_t lo,
                             bool wide)
{
    uint32_t cfof = wide ? F_CF | F_OF : 0;
    if (model != MODEL_INTEL) {
        cc_set_cfof(c, cfof);
        return;
    }
    uint32_t sf = (lo >> ((8u << lg) - 1)) & 1 ? F_SF : 0;
    uint32_t pf = __builtin_parity((uint8_t)lo) ? 0 : F_PF;
    cc_set_eager(c, cfof | sf | pf);
}

/* MUL/IMUL r/m: rDX:rAX (AX for bytes) = rAX * s; CF = OF = the upper
 * half is more than the extension of the lower one. */
static inline void fast_mul1(struct cpu *c, enum host_model model, bool sign, unsigned lg,
                             uint64_t s)
{
    uint64_t ax = c->r[0], lo, hi;
    bool wide;
    if (lg == 3) {
        if (sign) {
            __int128 p = (__int128)(int64_t)ax * (int64_t)s;
            lo = (uint64_t)p;
            hi = (uint64_t)(p >> 64);
            wide = hi != (uint64_t)((int64_t)lo >> 63);
        } else {
            unsigned __int128 p = (unsigned __int128)ax * s;
            lo = (uint64_t)p;
            hi = (uint64_t)(p >> 64);
            wide = hi != 0;
        }
    } else {
        unsigned bits = 8u << lg;
        uint64_t m = sz_mask(lg);
        uint64_t p = sign ? (uint64_t)(sext(ax, lg) * sext(s, lg)) : (ax & m) * (s & m);
        lo = p & m;
        hi = (p >> bits) & m;
        wide = sign ? (int64_t)p != sext(lo, lg) : hi != 0;
    }
    switch (lg) {
    case 0: set16(&c->r[0], lo | hi << 8); break;
    case 1: set16(&c->r[0], lo); set16(&c->r[2], hi); break;
    default: c->r[0] = lo; c->r[2] = hi; break; /* 32-bit: zero-extended */
    }
    mul_flags(c, model, lg, lo, wide);
}

/* IMUL r, r/m (, imm): the product truncated; CF = OF = it did not fit. */
static inline uint64_t fast_imul2(struct cpu *c, enum host_model model, unsigned lg, uint64_t a,
                                  uint64_t b)
{
    uint64_t r;
    bool ovf;
    if (lg == 3) {
        int64_t p;
        ovf = __builtin_mul_overflow((int64_t)a, (int64_t)b, &p);
        r = (uint64_t)p;
    } else {
        int64_t p = sext(a, lg) * sext(b, lg); /* 32 x 32 bits fits */
        r = (uint64_t)p & sz_mask(lg);
        ovf = sext(r, lg) != p;
    }
    mul_flags(c, model, lg, r, ovf);
    return r;
}

/* aux: 0 mul 1 imul 2 div 3 idiv */
#define MULDIV_DEFS(lg)                                                                  \
    static HANDLER(muldiv_r_##lg)                                                        \
    {                                                                                    \
        uint64_t s = getr(c, i->base, lg);                                               \
        if (i->aux < 2 && host_mul_model != MODEL_HOST)                                  \
            fast_mul1(c, host_mul_model, i->aux, lg, s);                                 \
        else if (i->aux < 2)                                                             \
            host_mul1(c, i->aux, lg, s);                                                 \
        else                                                                             \
            host_div1(c, i, i->aux & 1, lg, s);                                          \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(muldiv_m_##lg)                                                        \
    {                                                                                    \
        uint64_t s = ldn(c, i, ea(c, i), lg);                                            \
        if (i->aux < 2 && host_mul_model != MODEL_HOST)                                  \
            fast_mul1(c, host_mul_model, i->aux, lg, s);                                 \
        else if (i->aux < 2)                                                             \
            host_mul1(c, i->aux, lg, s);                                                 \
        else                                                                             \
            host_div1(c, i, i->aux & 1, lg, s);                                          \
        NEXT;                                                                            \
    }
MULDIV_DEFS(0)
MULDIV_DEFS(1)
MULDIV_DEFS(2)
MULDIV_DEFS(3)
const insn_fn h_muldiv[2][4] = {{muldiv_r_0, muldiv_r_1, muldiv_r_2, muldiv_r_3},
                                {muldiv_m_0, muldiv_m_1, muldiv_m_2, muldiv_m_3}};

/* IMUL r, r/m (, imm): source value s, second factor b */
#define IMUL2(mod)                                                                       \
    asm(HOST_PRE "imul %" mod "[s], %" mod "[v]" HOST_POST : [v] "+r"(v), [f] "+r"(f) : [s] "r"(s) : "cc")
static NOINLINE uint64_t host_imul2(struct cpu *c, unsigned lg, uint64_t v, uint64_t s)
{
    uint64_t f = host_flags_in(c);
    switch (lg) {
    case 1: IMUL2("w"); break;
    case 2: IMUL2("k"); break;
    default: IMUL2("q"); break;
    }
    cc_set_eager(c, (uint32_t)f);
    return v;
}
/* imul2: dst = dst * src ; imul3: dst = src * imm */
static inline void imul_to(struct cpu *c, const struct insn *i, unsigned lg, uint64_t a,
                           uint64_t b)
{
    if (likely(host_mul_model != MODEL_HOST))
        setr(c, i->reg, fast_imul2(c, host_mul_model, lg, a, b), lg);
    else
        c->r[i->reg] = host_imul2(c, lg, (c->r[i->reg] & ~sz_mask(lg)) | (a & sz_mask(lg)), b);
}
#define IMUL_DEFS(lg)                                                                    \
    static HANDLER(imul2_r_##lg)                                                         \
    {                                                                                    \
        imul_to(c, i, lg, c->r[i->reg], c->r[i->base]);                                  \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(imul2_m_##lg)                                                         \
    {                                                                                    \
        uint64_t s = ldn(c, i, ea(c, i), lg);                                            \
        imul_to(c, i, lg, c->r[i->reg], s);                                              \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(imul3_r_##lg)                                                         \
    {                                                                                    \
        imul_to(c, i, lg, c->r[i->base], i->imm);                                        \
        NEXT;                                                                            \
    }                                                                                    \
    static HANDLER(imul3_m_##lg)                                                         \
    {                                                                                    \
        uint64_t s = ldn(c, i, ea(c, i), lg);                                            \
        imul_to(c, i, lg, s, i->imm);                                                    \
        NEXT;                                                                            \
    }
IMUL_DEFS(1)
IMUL_DEFS(2)
IMUL_DEFS(3)
const insn_fn h_imul[4][4] = {{0, imul2_r_1, imul2_r_2, imul2_r_3}, {0, imul2_m_1, imul2_m_2, imul2_m_3},
                              {0, imul3_r_1, imul3_r_2, imul3_r_3}, {0, imul3_m_1, imul3_m_2, imul3_m_3}};


/* --- the host probe ------------------------------------------------------------
 * Runs each host instruction the fast paths stand in for on a few operands,
 * sizes and counts, with two opposite sets of incoming flags, and compares
 * value and flags with the C versions. Any difference: host instructions. */
static bool same(const struct cpu *h, const struct cpu *f, uint64_t hv, uint64_t fv)
{
    return hv == fv && (cc_flags(h) & F_ARITH) == (cc_flags(f) & F_ARITH);
}

/* Does 'model' give the host's values and flags on every probed case? */
static bool model_matches(enum host_model model, bool rotates)
{
    /* only the flag and register fields are touched (the rest stays in
     * untouched zero pages) */
    static struct cpu h, f;
    static const uint64_t vals[] = {0, 1, 0x7f, 0x80, 0xff, 0x8000, 0x7fffffff, 0x80000000,
                                    0xfedcba9876543210ull, 0x0123456789abcdefull, ~0ull,
                                    0x8000000000000000ull, 0x4000000000000000ull, 0x40,
                                    0x4000, 0x40000000};
    /* none masked to 0 (the handlers never take the fast path there) */
    static const uint8_t counts[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 24, 34, 5, 62};
    static const uint32_t fin[] = {0, F_ARITH, F_ZF | F_AF, F_SF | F_PF | F_CF};
    unsigned nv = sizeof(vals) / sizeof(vals[0]);
    for (unsigned k = 0; k < sizeof(fin) / sizeof(fin[0]); k++)
        for (unsigned lg = 0; lg < 4; lg++)
            for (unsigned x = 0; x < nv; x++)
                for (unsigned y = 0; y < nv; y++) {
                    uint64_t a = vals[x], b = vals[y] ^ (uint64_t)x << 9;
                    uint8_t cnt = counts[(x + y) % sizeof(counts)];
                    for (unsigned op = 0; rotates && op < 2; op++) {
                        cc_set_eager(&h, fin[k]);
                        cc_set_eager(&f, fin[k]);
                        uint64_t hv = host_shift(&h, op, lg, a, cnt) & sz_mask(lg);
                        uint64_t fv = fast_rot(&f, model, op, lg, a, cnt);
                        if (!same(&h, &f, hv, fv))
                            return false;
                    }
                    for (unsigned sign = 0; !rotates && sign < 2; sign++) {
                        cc_set_eager(&h, fin[k]);
                        cc_set_eager(&f, fin[k]);
                        h.r[0] = f.r[0] = a;
                        h.r[2] = f.r[2] = b;
                        host_mul1(&h, sign, lg, b);
                        fast_mul1(&f, model, sign, lg, b);
                        if (!same(&h, &f, h.r[0], f.r[0]) || h.r[2] != f.r[2])
                            return false;
                    }
                    if (!rotates && lg) {
                        cc_set_eager(&h, fin[k]);
                        cc_set_eager(&f, fin[k]);
                        uint64_t hv = host_imul2(&h, lg, a, b) & sz_mask(lg);
                        if (!same(&h, &f, hv, fast_imul2(&f, model, lg, a, b)))
                            return false;
                    }
                }
    return true;
}

__attribute__((constructor)) static void probe_host(void)
{
    static const enum host_model candidates[] = {MODEL_AMD, MODEL_INTEL};
    host_rot_model = host_mul_model = MODEL_HOST;
    for (unsigned k = 0; k < 2; k++) {
        if (host_rot_model == MODEL_HOST && model_matches(candidates[k], true))
            host_rot_model = candidates[k];
        if (host_mul_model == MODEL_HOST && model_matches(candidates[k], false))
            host_mul_model = candidates[k];
    }
}
