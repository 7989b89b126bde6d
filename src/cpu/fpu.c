/* x87, MMX and SSE on the host's own instructions.
 *
 * Each distinct instruction gets a small generated host stub:
 *     fxrstor64 (guest image); [load rax/rcx/rdx]; <the instruction, its
 *     memory operand rewritten to (%rsi), a general-register operand to
 *     %rax>; [store rax/rcx/rdx, rflags]; fxsave64 (guest image);
 *     fxrstor64 (clean host image); ret
 * so results, status flags and NaN payloads are the host's. Memory operands
 * go through an aligned bounce buffer that is filled from (and written back
 * to) guest memory through the soft MMU, after all faults are known.
 * Only opcodes from the decoder's tables are ever emitted.
 *
 * Exceptions: CR0.EM/TS and CR4.OSFXSR checks (#UD/#NM); a pending unmasked
 * x87 exception makes waiting x87/MMX instructions raise #MF before the host
 * sees them; SSE instructions run with all MXCSR exceptions masked and an
 * unmasked one the guest would take is raised as #XM (#UD without
 * CR4.OSXMMEXCPT) with the destination left unchanged. The x87 instruction
 * and data pointers in the image are rewritten to the guest's RIP and
 * operand address. */
#include <stdlib.h>
#include <sys/mman.h>

#include "arch/x86_64/fxsave.h"
#include "cpu/internal.h"
#include "cpu/handlers.h"

#define HX_ARENA (2u << 20)
#define HX_HASH 8192
#define HX_STUB_MAX 128 /* code bytes per variant (full ~62, light ~115) */
#define HX_STUB_BYTES (sizeof(struct hx_stub) + 2 * (HX_STUB_MAX + 16))

#define MXCSR_MASK 0x2ffffu /* as the host: DAZ and AMD's misaligned-SSE mode (MM) */

/* stub flags */
#define HF_MREAD 0x1u
#define HF_MWRITE 0x2u
#define HF_ALIGN 0x4u
#define HF_GPR 0x8u      /* rax <-> guest GPR rec->reg */
#define HF_GPRW 0x10u    /* ... written back */
#define HF_FLAGS 0x20u   /* arithmetic flags out */
#define HF_X87 0x40u
#define HF_MMX 0x80u
#define HF_SSE 0x100u
#define HF_WAIT 0x200u   /* x87/MMX waiting instruction: #MF check */
#define HF_IMPL 0x400u   /* PCMPxSTRx: rax, rdx in; rcx out */
#define HF_ENV 0x800u    /* FNSTENV/FNSAVE: patch selectors in the output */
#define HF_LDENV 0x1000u /* FLDENV/FRSTOR: take selectors from the input */
#define HF_AXW 0x2000u   /* FNSTSW AX: only AX written */
#define HF_GPR32 0x4000u /* the general register operand is 32-bit */
#define HF_FLAGSIN 0x8000u /* arithmetic flags in (FCMOVcc) */
/* stub flags are 16 bits; the scalar bit lives in the record (aux bit 7) */

struct hx_stub {
    void (*code)(void *fx, void *buf, uint64_t *slots, void *hostfx);
    /* SSE-only instructions: a lighter stub that loads just MXCSR and the
     * XMM registers involved (xmm0, ModRM.reg, ModRM.rm) from the image */
    void (*fast)(void *fx, void *buf, uint64_t *slots, const uint32_t *host_mxcsr);
    uintptr_t insn_at;     /* host address of the instruction in the stub */
    uint16_t flags;
    uint16_t msize;
    uint8_t keylen;
    uint8_t key[23];
    struct hx_stub *next;
};

/* x87 exception pending: an unmasked exception flag (the host derives ES/B
 * from the flags and masks, as measured) */
static bool x87_pending(const uint8_t *fx)
{
    uint16_t fcw, fsw;
    memcpy(&fcw, fx + 0, 2);
    memcpy(&fsw, fx + 2, 2);
    return fsw & ~fcw & 0x3f;
}

/* Load a full image (snapshots, state set): through the host, like FXRSTOR. */
int fpu_set_image(struct cpu *c, const uint8_t *image)
{
    uint8_t img[512] __attribute__((aligned(16)));
    memcpy(img, image, 512);
    uint32_t mx;
    memcpy(&mx, img + FX_MXCSR, 4);
    if (mx & ~MXCSR_MASK)
        return -1;
    asm volatile("fxrstor64 (%0); fxsave64 (%1); fxrstor64 (%2)"
                 : : "r"(img), "r"(c->fx), "r"(c->fx_host) : "memory");
    return 0;
}

void fpu_normalize(uint8_t *fx)
{
    uint16_t fsw;
    memcpy(&fsw, fx + 2, 2);
    fsw = x87_pending(fx) ? fsw | 0x8080 : fsw & ~0x8080;
    memcpy(fx + 2, &fsw, 2);
}

static const uint8_t *fxb(const struct cpu *c, unsigned off)
{
    return c->fx + off;
}

static uint16_t fx16(const struct cpu *c, unsigned off)
{
    uint16_t v;
    memcpy(&v, fxb(c, off), 2);
    return v;
}

static uint32_t fx32(const struct cpu *c, unsigned off)
{
    uint32_t v;
    memcpy(&v, fxb(c, off), 4);
    return v;
}

void fpu_reset(struct cpu *c)
{
    memset(c->fx, 0, sizeof(c->fx));
    uint16_t fcw = 0x37f;
    uint32_t mx = 0x1f80, mask = MXCSR_MASK;
    memcpy(c->fx + FX_FCW, &fcw, 2);
    memcpy(c->fx + FX_MXCSR, &mx, 4);
    memcpy(c->fx + FX_MXCSR_MASK, &mask, 4);
    (void)mask;
}

int hx_init(struct cpu *c)
{
    if (code_arena_map(HX_ARENA, &c->hx_code, &c->hx_exec)) {
        c->hx_code = c->hx_exec = NULL;
        return -1;
    }
    c->hx_size = HX_ARENA;
    c->hx_used = 0;
    c->hx_hash = calloc(HX_HASH, sizeof(*c->hx_hash));
    c->hx_mask = HX_HASH - 1;
    /* a clean host image: FNINIT state with the host's MXCSR */
    uint32_t mx;
    asm volatile("stmxcsr %0" : "=m"(mx));
    memset(c->fx_host, 0, sizeof(c->fx_host));
    uint16_t fcw;
    asm volatile("fnstcw %0" : "=m"(fcw));
    memcpy(c->fx_host + FX_FCW, &fcw, 2);
    memcpy(c->fx_host + FX_MXCSR, &mx, 4);
    c->host_mxcsr = mx;
    return c->hx_hash ? 0 : -1;
}

void hx_free(struct cpu *c)
{
    if (c->hx_code) {
        munmap(c->hx_code, c->hx_size);
        munmap(c->hx_exec, c->hx_size);
    }
    free(c->hx_hash);
    c->hx_code = c->hx_exec = NULL;
    c->hx_hash = NULL;
}

bool hx_need_flush(struct cpu *c)
{
    /* room for a whole block of new stubs: builds never run out midway */
    return c->hx_used + (BLOCK_MAX_INSNS + 1) * HX_STUB_BYTES > c->hx_size;
}

void hx_flush(struct cpu *c)
{
    c->hx_used = 0;
    memset(c->hx_hash, 0, HX_HASH * sizeof(*c->hx_hash));
}

/* --- feature checks ------------------------------------------------------------- */
bool sse_feature_ok(struct cpu *c, const struct dec *d)
{
    uint32_t e1 = c->feat1_edx, c1 = c->feat1_ecx;
    bool sse = e1 & (1u << 25), sse2 = e1 & (1u << 26), mmx = e1 & (1u << 23);
    bool sse3 = c1 & 1, ssse3 = c1 & (1u << 9), sse41 = c1 & (1u << 19), sse42 = c1 & (1u << 20);
    if (d->fl & D_X87)
        return e1 & 1;
    bool aes = c1 & (1u << 25), pclmul = c1 & (1u << 1);
    if ((d->map == 2 && d->op >= 0xdb) || (d->map == 3 && d->op == 0xdf))
        return aes;
    if (d->map == 3 && d->op == 0x44)
        return pclmul;
    if ((d->map == 2 && d->op >= 0xc8 && d->op <= 0xcd) || (d->map == 3 && d->op == 0xcc))
        return c->feat7_ebx & (1u << 29); /* SHA */
    if (d->map == 2) {
        if (d->op <= 0x0b || (d->op >= 0x1c && d->op <= 0x1e))
            return ssse3;
        return d->op == 0x37 ? sse42 : sse41;
    }
    if (d->map == 3) {
        if (d->op == 0x0f)
            return ssse3;
        return d->op >= 0x60 ? sse42 : sse41;
    }
    uint8_t op = d->op;
    bool mmx_form = d->sse.kreg == K_M || d->sse.krm == K_M;
    if (d->mand == 0) {
        if (op >= 0x10 && op <= 0x5f)
            return sse && (!mmx_form || mmx);
        if (op == 0xc2 || op == 0xc6)
            return sse;
        /* MMX forms: SSE2 additions, SSE/MMXEXT additions, plain MMX */
        if (op == 0xd4 || op == 0xfb || op == 0xf4)
            return sse2 && mmx;
        if (op == 0x70 || op == 0xc4 || op == 0xc5 || op == 0xd7 || op == 0xda || op == 0xde ||
            op == 0xe0 || op == 0xe3 || op == 0xe4 || op == 0xe7 || op == 0xea || op == 0xee ||
            op == 0xf6 || op == 0xf7)
            return sse && mmx;
        return mmx;
    }
    /* 66/F2/F3 forms */
    if ((d->mand == 3 && (op == 0x12 || op == 0x7c || op == 0x7d || op == 0xd0 || op == 0xf0)) ||
        (d->mand == 2 && (op == 0x12 || op == 0x16)) ||
        (d->mand == 1 && (op == 0x7c || op == 0x7d || op == 0xd0)))
        return sse3;
    if (d->mand == 2 && (op == 0x10 || op == 0x11 || op == 0x2a || op == 0x2c || op == 0x2d ||
                         op == 0x51 || op == 0x52 || op == 0x53 || op == 0x58 || op == 0x59 ||
                         op == 0x5c || op == 0x5d || op == 0x5e || op == 0x5f || op == 0xc2))
        return sse;
    return sse2;
}

/* --- stub generation ------------------------------------------------------------- */
struct x87_mem { uint8_t size, w; };
static struct x87_mem x87_mem_info(uint8_t esc, unsigned reg, bool o16)
{
    switch (esc) {
    case 0xd8: return (struct x87_mem){4, 0};
    case 0xd9:
        switch (reg) {
        case 0: return (struct x87_mem){4, 0};
        case 2: case 3: return (struct x87_mem){4, 1};
        case 4: return (struct x87_mem){o16 ? 14 : 28, 0};
        case 5: return (struct x87_mem){2, 0};
        case 6: return (struct x87_mem){o16 ? 14 : 28, 1};
        default: return (struct x87_mem){2, 1};
        }
    case 0xda: return (struct x87_mem){4, 0};
    case 0xdb:
        switch (reg) {
        case 0: return (struct x87_mem){4, 0};
        case 5: return (struct x87_mem){10, 0};
        case 7: return (struct x87_mem){10, 1};
        default: return (struct x87_mem){4, 1};
        }
    case 0xdc: return (struct x87_mem){8, 0};
    case 0xdd:
        switch (reg) {
        case 0: return (struct x87_mem){8, 0};
        case 4: return (struct x87_mem){o16 ? 94 : 108, 0};
        case 6: return (struct x87_mem){o16 ? 94 : 108, 1};
        case 7: return (struct x87_mem){2, 1};
        default: return (struct x87_mem){8, 1};
        }
    case 0xde: return (struct x87_mem){2, 0};
    default: /* df */
        switch (reg) {
        case 0: return (struct x87_mem){2, 0};
        case 4: return (struct x87_mem){10, 0};
        case 5: return (struct x87_mem){8, 0};
        case 6: return (struct x87_mem){10, 1};
        case 7: return (struct x87_mem){8, 1};
        default: return (struct x87_mem){2, 1};
        }
    }
}

/* x87 instructions that do not wait for / check pending exceptions */
static bool x87_nowait(const struct dec *d)
{
    unsigned reg = d->reg & 7;
    if (d->mod != 3) {
        if (d->op == 0xd9 && (reg == 6 || reg == 7))
            return true; /* FNSTENV FNSTCW */
        if (d->op == 0xdd && (reg == 6 || reg == 7))
            return true; /* FNSAVE FNSTSW */
        return false;
    }
    if (d->op == 0xdb && (d->modrm == 0xe0 || d->modrm == 0xe1 || d->modrm == 0xe2 ||
                          d->modrm == 0xe3 || d->modrm == 0xe4))
        return true;
    if (d->op == 0xdf && d->modrm == 0xe0)
        return true;
    return false;
}

static unsigned emit(uint8_t *p, const uint8_t *b, unsigned n)
{
    memcpy(p, b, n);
    return n;
}

static uint32_t key_hash(const uint8_t *k, unsigned n, uint16_t flags)
{
    uint32_t h = 2166136261u ^ flags;
    for (unsigned j = 0; j < n; j++)
        h = (h ^ k[j]) * 16777619u;
    return h;
}

static unsigned emit_movdqa(uint8_t *p, bool store, int xr)
{
    unsigned n = 0;
    p[n++] = 0x66;
    if (xr >= 8)
        p[n++] = 0x44;
    p[n++] = 0x0f;
    p[n++] = store ? 0x7f : 0x6f;
    p[n++] = (uint8_t)(0x87 | ((xr & 7) << 3)); /* disp32(%rdi) */
    uint32_t disp = 160 + 16 * (uint32_t)xr;
    memcpy(p + n, &disp, 4);
    return n + 4;
}

static unsigned emit_gpr_in(uint8_t *code, uint16_t flags)
{
    unsigned n = 0;
    if (flags & (HF_GPR | HF_IMPL | HF_AXW)) {
        static const uint8_t ld[] = {0x49, 0x8b, 0x00}; /* mov (%r8),%rax */
        n += emit(code + n, ld, sizeof(ld));
    }
    if (flags & HF_IMPL) {
        static const uint8_t ld[] = {0x49, 0x8b, 0x50, 0x10,  /* mov 16(%r8),%rdx */
                                     0x49, 0x8b, 0x48, 0x08}; /* mov 8(%r8),%rcx */
        n += emit(code + n, ld, sizeof(ld));
    }
    if (flags & HF_FLAGSIN) {
        static const uint8_t ld[] = {0x41, 0xff, 0x70, 0x18, 0x9d}; /* push 24(%r8); popfq */
        n += emit(code + n, ld, sizeof(ld));
    }
    return n;
}

static unsigned emit_gpr_out(uint8_t *code, uint16_t flags)
{
    unsigned n = 0;
    if (flags & (HF_GPRW | HF_AXW)) {
        static const uint8_t st[] = {0x49, 0x89, 0x00}; /* mov %rax,(%r8) */
        n += emit(code + n, st, sizeof(st));
    }
    if (flags & HF_IMPL) {
        static const uint8_t st[] = {0x49, 0x89, 0x48, 0x08}; /* mov %rcx,8(%r8) */
        n += emit(code + n, st, sizeof(st));
    }
    if (flags & HF_FLAGS) {
        static const uint8_t st[] = {0x9c, 0x41, 0x8f, 0x40, 0x18}; /* pushfq; pop 24(%r8) */
        n += emit(code + n, st, sizeof(st));
    }
    return n;
}

static struct hx_stub *stub_get(struct cpu *c, const uint8_t *insn, unsigned ilen,
                                uint16_t flags, unsigned msize, int xr, int xm)
{
    uint32_t h = key_hash(insn, ilen, flags) & c->hx_mask;
    for (struct hx_stub *s = c->hx_hash[h]; s; s = s->next)
        if (s->keylen == ilen && s->flags == flags && !memcmp(s->key, insn, ilen))
            return s;
    size_t need = HX_STUB_BYTES;
    if (c->hx_used + need > c->hx_size)
        return NULL;
    struct hx_stub *s = (struct hx_stub *)(c->hx_code + c->hx_used);
    uint8_t *code = (uint8_t *)(((uintptr_t)(s + 1) + 15) & ~(uintptr_t)15);
    ptrdiff_t to_exec = c->hx_exec - c->hx_code; /* written here, run there */
    unsigned n = 0;
    static const uint8_t prologue[] = {
        0x49, 0x89, 0xd0,             /* mov %rdx,%r8 */
        0x49, 0x89, 0xc9,             /* mov %rcx,%r9 */
        0x48, 0x0f, 0xae, 0x0f,       /* fxrstor64 (%rdi) */
    };
    n += emit(code + n, prologue, sizeof(prologue));
    n += emit_gpr_in(code + n, flags);
    s->insn_at = (uintptr_t)(code + n + to_exec);
    n += emit(code + n, insn, ilen);
    n += emit_gpr_out(code + n, flags);
    static const uint8_t epilogue[] = {
        0x48, 0x0f, 0xae, 0x07,       /* fxsave64 (%rdi) */
        0x49, 0x0f, 0xae, 0x09,       /* fxrstor64 (%r9) */
        0xc3,                         /* ret */
    };
    n += emit(code + n, epilogue, sizeof(epilogue));
    s->code = (void (*)(void *, void *, uint64_t *, void *))(void *)(code + to_exec);
    s->fast = NULL;
    if ((flags & HF_SSE) && !(flags & (HF_MMX | HF_X87))) {
        n = (n + 15) & ~15u;
        uint8_t *f = code + n;
        unsigned m = 0;
        static const uint8_t fpro[] = {
            0x49, 0x89, 0xd0,             /* mov %rdx,%r8 */
            0x49, 0x89, 0xc9,             /* mov %rcx,%r9 (PCMPxSTRI writes rcx) */
            0x0f, 0xae, 0x57, 0x18,       /* ldmxcsr 24(%rdi) */
        };
        m += emit(f + m, fpro, sizeof(fpro));
        m += emit_movdqa(f + m, false, 0);
        if (xr > 0)
            m += emit_movdqa(f + m, false, xr);
        if (xm > 0 && xm != xr)
            m += emit_movdqa(f + m, false, xm);
        m += emit_gpr_in(f + m, flags);
        m += emit(f + m, insn, ilen);
        m += emit_gpr_out(f + m, flags);
        m += emit_movdqa(f + m, true, 0);
        if (xr > 0)
            m += emit_movdqa(f + m, true, xr);
        if (xm > 0 && xm != xr)
            m += emit_movdqa(f + m, true, xm);
        static const uint8_t fepi[] = {
            0x0f, 0xae, 0x5f, 0x18,       /* stmxcsr 24(%rdi) */
            0x41, 0x0f, 0xae, 0x11,       /* ldmxcsr (%r9) */
            0xc3,                         /* ret */
        };
        m += emit(f + m, fepi, sizeof(fepi));
        s->fast = (void (*)(void *, void *, uint64_t *, const uint32_t *))(void *)(f + to_exec);
        n += m;
    }
    s->flags = flags;
    s->msize = (uint16_t)msize;
    s->keylen = (uint8_t)ilen;
    memcpy(s->key, insn, ilen);
    s->next = c->hx_hash[h];
    c->hx_hash[h] = s;
    c->hx_used = (size_t)((code + n) - c->hx_code);
    c->hx_used = (c->hx_used + 15) & ~(size_t)15;
    return s;
}

static HANDLER(hx_exec);

/* Scalar SSE arithmetic (one element): ss/sd forms, COMIS/UCOMIS, ROUNDSS/SD */
bool sse_scalar(const struct dec *d)
{
    static const uint8_t ops[] = {0x2a, 0x2c, 0x2d, 0x51, 0x52, 0x53, 0x58, 0x59, 0x5a,
                                  0x5c, 0x5d, 0x5e, 0x5f, 0xc2};
    if (d->map == 3)
        return d->op == 0x0a || d->op == 0x0b;
    if (d->map != 1)
        return false;
    if (d->op == 0x2e || d->op == 0x2f)
        return true;
    if (d->mand < 2)
        return false;
    for (unsigned k = 0; k < sizeof(ops); k++)
        if (ops[k] == d->op)
            return true;
    return false;
}

/* Rewrite the instruction for the stub and fill the record. */
void hx_prepare(struct cpu *c, const struct dec *d, struct insn *rec, uint64_t va)
{
    (void)va;
    rec->fn = NULL;
    uint8_t out[24];
    unsigned n = 0;
    uint16_t flags = 0;
    unsigned msize = 0;
    bool x87 = d->fl & D_X87;
    /* legacy prefixes that matter: 66 F2 F3 (operand size / mandatory) */
    unsigned opstart = d->pos_op - (d->map == 0 ? 0 : d->map == 1 ? 1 : 2);
    for (unsigned k = 0; k < opstart; k++) {
        uint8_t b = d->bytes[k];
        if (b == 0x66 && x87 && (d->rex & 8))
            continue; /* REX.W overrides 0x66: the 32-bit environment format */
        if (b == 0x66 || b == 0xf2 || b == 0xf3)
            out[n++] = b;
    }
    uint8_t rex = d->rex & 0x8; /* W */
    bool greg = false, grm = false;
    if (x87) {
        flags |= HF_X87;
        if (!x87_nowait(d))
            flags |= HF_WAIT;
        if (d->has_mem) {
            struct x87_mem m = x87_mem_info(d->op, d->reg & 7, d->p66 && !(d->rex & 8));
            msize = m.size;
            flags |= m.w ? HF_MWRITE : HF_MREAD;
            if ((d->op == 0xd9 || d->op == 0xdd) && (d->reg & 7) == 6)
                flags |= HF_ENV;
            if ((d->op == 0xd9 || d->op == 0xdd) && (d->reg & 7) == 4)
                flags |= HF_LDENV;
        }
        if (d->op == 0xdf && d->modrm == 0xe0)
            flags |= HF_AXW;
        if (d->mod == 3 && (d->op == 0xdb || d->op == 0xdf) && d->modrm >= 0xe8 && d->modrm <= 0xf7)
            flags |= HF_FLAGS; /* FCOMI FUCOMI (and the popping forms) */
        if (d->mod == 3 && (d->op == 0xda || d->op == 0xdb) && d->modrm < 0xe0)
            flags |= HF_FLAGSIN; /* FCMOVcc */
        rex = 0;
        rec->reg = d->modrm;
        rec->aux = d->op & 7;
    } else {
        const struct sse_ent *e = &d->sse;
        greg = e->kreg == K_G || e->kreg == K_G32;
        grm = !d->has_mem && (e->krm == K_G || e->krm == K_G32);
        /* MMX state is involved only through an MMX register operand */
        bool mmx = e->kreg == K_M || (e->krm == K_M && !d->has_mem);
        /* an SSE instruction (MXCSR, CR4.OSFXSR) if any operand is XMM-typed,
         * even when that operand is in memory (CVTPS2PI mm, m64) */
        bool xmm = e->kreg == K_X || e->krm == K_X;
        flags |= xmm ? HF_SSE : 0;
        if (mmx)
            flags |= HF_MMX | HF_WAIT;
        if (d->has_mem) {
            msize = e->msize;
            if (!(e->fl & S_NORMEM))
                flags |= HF_MREAD;
            if (e->fl & S_WMEM)
                flags |= HF_MWRITE;
            if (e->fl & S_ALIGN)
                flags |= HF_ALIGN;
        }
        if (greg || grm) {
            flags |= HF_GPR;
            if ((greg && (e->fl & S_GREG)) || (grm && (e->fl & S_WMEM)))
                flags |= HF_GPRW;
            if ((greg ? e->kreg : e->krm) == K_G32 || !(d->rex & 8))
                flags |= HF_GPR32;
            rec->reg = greg ? d->reg : d->rm;
        }
        if (e->fl & S_FLAGS)
            flags |= HF_FLAGS;
        /* scalar single/double: for the #XM flag approximation */
        if (sse_scalar(d))
            rec->aux |= 0x80;
        if ((d->map == 1 && (d->op == 0x28 || d->op == 0x29 || d->op == 0x2b ||
                             (d->mand == 1 && (d->op == 0x6f || d->op == 0x7f || d->op == 0xe7)))) ||
            (d->map == 2 && d->op == 0x2a))
            rec->aux |= 0x40; /* MOVAPS/PD MOVNTPS/PD MOVDQA MOVNTDQ MOVNTDQA */
        if (d->map == 3 && d->op >= 0x60 && d->op <= 0x63)
            flags |= HF_IMPL | HF_FLAGS;
        if (!greg && (d->rex & 4))
            rex |= 4;                  /* R: xmm8-15 in ModRM.reg */
        if (!d->has_mem && !grm && (d->rex & 1))
            rex |= 1;                  /* B: xmm8-15 in ModRM.rm */
        /* W only matters with a general-register operand (or its memory form)
         * and for PCMPESTRx (64-bit lengths) */
        if (!(e->kreg == K_G || e->krm == K_G) && !(d->map == 3 && (d->op == 0x60 || d->op == 0x61)))
            rex &= (uint8_t)~8u;
    }
    if (rex)
        out[n++] = 0x40 | rex;
    /* opcode bytes */
    if (d->map >= 1)
        out[n++] = 0x0f;
    if (d->map == 2)
        out[n++] = 0x38;
    if (d->map == 3)
        out[n++] = 0x3a;
    out[n++] = d->op;
    /* ModRM */
    uint8_t regf = (d->modrm >> 3) & 7, rmf = d->modrm & 7;
    if (greg)
        regf = 0;
    if (d->has_mem)
        out[n++] = (uint8_t)((regf << 3) | 6); /* (%rsi) */
    else
        out[n++] = (uint8_t)(0xc0 | (regf << 3) | (grm ? 0 : rmf));
    if (d->fl & D_IB)
        out[n++] = (uint8_t)d->imm;
    int xr = -1, xm = -1;
    if (!x87) {
        if (d->sse.kreg == K_X)
            xr = d->reg & 15;
        if (d->sse.krm == K_X && !d->has_mem)
            xm = d->rm & 15;
    }
    struct hx_stub *s = stub_get(c, out, n, flags, msize, xr, xm);
    if (!s)
        return;
    rec->imm = (uint64_t)(uintptr_t)s;
    rec->fn = hx_exec;
}

/* --- execution ---------------------------------------------------------------------- */
static void fpu_checks(struct cpu *c, const struct insn *i, uint16_t flags)
{
    if (flags & HF_X87) {
        if (c->cr0 & (CR0_EM | CR0_TS))
            raise_exc(c, i, EXC_NM, NO_ERR);
    } else {
        if (c->cr0 & CR0_EM)
            raise_ud(c, i);
        if ((flags & HF_SSE) && !(c->cr4 & CR4_OSFXSR))
            raise_ud(c, i);
        if (c->cr0 & CR0_TS)
            raise_exc(c, i, EXC_NM, NO_ERR);
    }
    if ((flags & HF_WAIT) && x87_pending(c->fx))
        raise_exc(c, i, EXC_MF, NO_ERR);
}

static void fx_top0(struct cpu *c);

static NOINLINE void hx_run(struct cpu *c, const struct insn *i)
{
    const struct hx_stub *s = (const struct hx_stub *)(uintptr_t)i->imm;
    uint16_t flags = s->flags;
    fpu_checks(c, i, flags);
    uint8_t buf[128] __attribute__((aligned(16)));
    uint64_t va = 0;
    if (flags & (HF_MREAD | HF_MWRITE)) {
        va = ea(c, i);
        /* AMD misaligned-SSE mode (MXCSR.MM) lifts the alignment rule except
         * for the always-aligned moves (aux bit 6) */
        if ((flags & HF_ALIGN) && (va & 15) &&
            (!(fx32(c, FX_MXCSR) & (1u << 17)) || (i->aux & 0x40)))
            raise_gp0(c, i);
        if (flags & (HF_ENV | HF_LDENV)) {
            /* measured: environment/state images are accessed as their first
             * dword, then their last byte, then the rest (this decides the
             * fault address when they cross into a bad page) */
            uint8_t four[4];
            unsigned first = (s->msize == 14 || s->msize == 94) ? 2 : 4; /* 16-bit formats */
            if (flags & HF_ENV) {
                mem_probe_write(c, i, va, first, ACC_W);
                mem_probe_write(c, i, va + s->msize - 1, 1, ACC_W);
            } else {
                mem_read_buf(c, i, va, four, first, ACC_R);
                mem_read_buf(c, i, va + s->msize - 1, four, 1, ACC_R);
            }
        }
        if (flags & HF_MREAD)
            mem_read_buf(c, i, va, buf, s->msize, ACC_R);
        else
            memset(buf, 0, sizeof(buf));
        if (flags & HF_MWRITE)
            mem_probe_write(c, i, va, s->msize, ACC_W);
    }
    /* the guest's flags only where the stub loads them (FCMOVcc): they are
     * lazy, and the SSE moves libc's string functions are made of would
     * compute them for nothing */
    uint64_t slots[4] = {0, 0, 0, (flags & HF_FLAGSIN) ? (cc_flags(c) & F_ARITH) | 2 : 2};
    if (flags & (HF_GPR | HF_AXW))
        slots[0] = (flags & HF_AXW) ? c->r[0] : c->r[i->reg];
    if (flags & HF_IMPL) {
        slots[0] = c->r[0];
        slots[1] = c->r[1];
        slots[2] = c->r[2];
    }
    uint32_t mx = fx32(c, FX_MXCSR);
    uint64_t old_fip, old_fdp; /* the guest's, should the host not store its own */
    memcpy(&old_fip, c->fx + FX_FIP, 8);
    memcpy(&old_fdp, c->fx + FX_FDP, 8);
    uint16_t fsw_before = fx16(c, FX_FSW);
    bool guarded = (flags & HF_SSE) && (mx & 0x1f80) != 0x1f80;
    uint8_t *img = c->fx;
    if (guarded) {
        memcpy(c->fx_tmp, c->fx, sizeof(c->fx));
        uint32_t m2 = (mx | 0x1f80) & ~0x3fu;
        memcpy(c->fx_tmp + FX_MXCSR, &m2, 4);
        img = c->fx_tmp;
    }
    if (s->fast && !guarded)
        s->fast(c->fx, buf, slots, &c->host_mxcsr);
    else
        s->code(img, buf, slots, c->fx_host);
    c->stats.hostexec++;
    if (guarded) {
        uint32_t m2;
        memcpy(&m2, img + FX_MXCSR, 4);
        uint32_t raised = m2 & 0x3f;
        uint32_t unmasked = raised & ~(mx >> 7) & 0x3f;
        if (!unmasked && !(mx & (1u << 11))) {
            /* UE unmasked: underflow is then raised for any tiny result, exact
             * or not, which a masked run does not show. A run with FTZ flags
             * tiny results (UE). */
            uint8_t buf2[128] __attribute__((aligned(16)));
            uint64_t slots2[4];
            memcpy(buf2, buf, sizeof(buf2));
            memcpy(slots2, slots, sizeof(slots2));
            memcpy(c->fx_tmp2, c->fx, sizeof(c->fx));
            uint32_t m3 = ((mx | 0x1f80) & ~0x3fu) | 0x8000;
            memcpy(c->fx_tmp2 + FX_MXCSR, &m3, 4);
            s->code(c->fx_tmp2, buf2, slots2, c->fx_host);
            memcpy(&m3, c->fx_tmp2 + FX_MXCSR, 4);
            if (m3 & 0x10) {
                raised |= 0x10;
                unmasked |= 0x10;
            }
        }
        if (unmasked) {
            /* pre-computation exceptions suppress post-computation ones.
             * Approximation: the flags come from a run with all exceptions
             * masked; with OE/UE unmasked the hardware rounds with an
             * unbounded exponent, so PE (and, for packed operations, the
             * other elements' flags) may differ. */
            uint32_t pre = raised & 0x7;
            uint32_t f = (unmasked & 0x7) ? pre : raised;
            uint32_t nm = mx | f;
            memcpy(c->fx + FX_MXCSR, &nm, 4);
            if (flags & HF_MMX) {
                /* the x87 -> MMX transition happened before the fault */
                fx_top0(c);
                c->fx[FX_FTW] = 0xff;
            }
            raise_exc(c, i, (c->cr4 & CR4_OSXMMEXCPT) ? EXC_XM : EXC_UD, NO_ERR);
        }
        uint32_t nm = mx | raised;
        memcpy(img + FX_MXCSR, &nm, 4);
        memcpy(c->fx, img, sizeof(c->fx));
    }
    if (flags & HF_X87) {
        uint64_t fip, fdp;
        memcpy(&fip, c->fx + FX_FIP, 8);
        memcpy(&fdp, c->fx + FX_FDP, 8);
        /* The host's FXSAVE holds the stub's addresses, which become the
         * guest's; zeros (FNINIT) and what FLDENV/FRSTOR loaded are the
         * guest's own. Anything else (an AMD host stores FIP/FDP only with
         * an exception pending, and may then hold what another host task
         * or stub left) is never shown to the guest: its values stay. */
        bool loaded = flags & HF_LDENV;
        /* An exception this instruction raised and left pending (new
         * exception flags, ES newly set; not FLDCW unmasking old ones) has
         * its FIP whatever the host's save held: under load the host's
         * image after the stub once had FIP 0 there (difftest, seed 1,
         * about one run in four beside fuzzers). */
        uint16_t fsw_after = fx16(c, FX_FSW);
        bool raised = !(fsw_before & 0x80) && (fsw_after & 0x80) &&
                      (fsw_after & ~fsw_before & 0x3f) && !loaded;
        if (fip == s->insn_at || (raised && fip == 0)) {
            fip = insn_rip(c, i);
            uint16_t fop = (uint16_t)(((i->aux & 7) << 8) | i->reg);
            memcpy(c->fx + FX_FOP, &fop, 2);
        } else if (fip && !loaded) {
            fip = old_fip;
        }
        memcpy(c->fx + FX_FIP, &fip, 8);
        if (fdp >= (uintptr_t)buf && fdp < (uintptr_t)buf + sizeof(buf))
            fdp = va + (fdp - (uintptr_t)buf);
        else if (fdp && !loaded)
            fdp = old_fdp;
        memcpy(c->fx + FX_FDP, &fdp, 8);
        /* FCS/FDS: this host stores zeros (the "FPU CS/DS deprecated"
         * behaviour); the host instruction already did */
    }
    bool store = true;
    if ((flags & (HF_X87 | HF_MWRITE | HF_WAIT)) == (HF_X87 | HF_MWRITE | HF_WAIT)) {
        /* an unmasked numeric exception other than precision aborts an x87
         * store (ES was clear before: waiting instructions checked it) */
        uint16_t fsw = fx16(c, FX_FSW), fcw = fx16(c, FX_FCW);
        if ((fsw & 0x80) && (fsw & ~fcw & 0x1f))
            store = false;
    }
    if ((flags & HF_MWRITE) && store)
        mem_write_buf(c, i, va, buf, s->msize, ACC_W);
    if (flags & HF_AXW)
        c->r[0] = slots[0];
    else if (flags & HF_GPRW)
        c->r[i->reg] = slots[0];
    if (flags & HF_IMPL)
        c->r[1] = slots[1];
    if (flags & HF_FLAGS)
        cc_set_eager(c, (uint32_t)slots[3]);
}

static HANDLER(hx_exec)
{
    hx_run(c, i);
    NEXT;
}

/* --- special instructions ---------------------------------------------------------- */
/* TOP := 0, as MMX instructions and (on this host) EMMS do. The image holds
 * ST(i), so the register slots rotate with TOP. */
static void fx_top0(struct cpu *c)
{
    uint16_t fsw = fx16(c, FX_FSW);
    unsigned top = (fsw >> 11) & 7;
    if (top) {
        uint8_t old[128];
        memcpy(old, c->fx + 32, 128);
        for (unsigned j = 0; j < 8; j++)
            memcpy(c->fx + 32 + 16 * j, old + 16 * ((j - top) & 7), 16);
    }
    fsw &= ~0x3800;
    memcpy(c->fx + FX_FSW, &fsw, 2);
}

static HANDLER(fwait)
{
    if ((c->cr0 & (CR0_TS | CR0_MP)) == (CR0_TS | CR0_MP))
        raise_exc(c, i, EXC_NM, NO_ERR);
    if (x87_pending(c->fx))
        raise_exc(c, i, EXC_MF, NO_ERR);
    NEXT;
}

static HANDLER(emms)
{
    if (c->cr0 & CR0_EM)
        raise_ud(c, i);
    if (c->cr0 & CR0_TS)
        raise_exc(c, i, EXC_NM, NO_ERR);
    if (x87_pending(c->fx))
        raise_exc(c, i, EXC_MF, NO_ERR);
    fx_top0(c);
    c->fx[FX_FTW] = 0;
    NEXT;
}

/* MASKMOVQ/MASKMOVDQU: byte-masked store to [rDI] */
static NOINLINE void maskmov_run(struct cpu *c, const struct insn *i)
{
    bool xmm = i->aux;
    if (c->cr0 & CR0_EM)
        raise_ud(c, i);
    if (xmm && !(c->cr4 & CR4_OSFXSR))
        raise_ud(c, i);
    if (c->cr0 & CR0_TS)
        raise_exc(c, i, EXC_NM, NO_ERR);
    if (!xmm && x87_pending(c->fx))
        raise_exc(c, i, EXC_MF, NO_ERR);
    if (!xmm) {
        /* an MMX instruction: x87 TOS = 0, all registers valid; MMi is then
         * image slot i */
        fx_top0(c);
        c->fx[FX_FTW] = 0xff;
    }
    unsigned n = xmm ? 16 : 8;
    const uint8_t *src = xmm ? c->fx + 160 + 16 * (i->reg & 15) : c->fx + 32 + 16 * (i->reg & 7);
    const uint8_t *msk = xmm ? c->fx + 160 + 16 * (i->base & 15) : c->fx + 32 + 16 * (i->base & 7);
    uint64_t a = seg_lin(c, i, addr_cut(i, c->r[7]), insn_seg(i), i->mf & MF_ADDR32);
    for (unsigned k = 0; k < n; k++)
        if (msk[k] & 0x80)
            mem_probe_write(c, i, a + k, 1, ACC_W);
    for (unsigned k = 0; k < n; k++)
        if (msk[k] & 0x80)
            mem_write_buf(c, i, a + k, &src[k], 1, ACC_W);
}

static HANDLER(maskmov)
{
    maskmov_run(c, i);
    NEXT;
}

static void sse_ctl_checks(struct cpu *c, const struct insn *i)
{
    if ((c->cr0 & CR0_EM) || !(c->cr4 & CR4_OSFXSR))
        raise_ud(c, i);
    if (c->cr0 & CR0_TS)
        raise_exc(c, i, EXC_NM, NO_ERR);
}

static HANDLER(ldmxcsr)
{
    sse_ctl_checks(c, i);
    uint32_t v = (uint32_t)ld32(c, i, ea(c, i));
    if (v & ~MXCSR_MASK)
        raise_gp0(c, i);
    memcpy(c->fx + FX_MXCSR, &v, 4);
    NEXT;
}

static HANDLER(stmxcsr)
{
    sse_ctl_checks(c, i);
    st32(c, i, ea(c, i), fx32(c, FX_MXCSR));
    NEXT;
}

/* FXSAVE/FXRSTOR: aux = REX.W (64-bit format). The image is produced and
 * consumed by the host's own FXSAVE/FXRSTOR (reserved fields, FCW/FTW
 * normalisation, the 32-bit format's pointers), around the guest state. */
static NOINLINE void fxsave_run(struct cpu *c, const struct insn *i)
{
    if (c->cr0 & (CR0_TS | CR0_EM))
        raise_exc(c, i, EXC_NM, NO_ERR);
    uint64_t va = ea(c, i);
    if (va & 15)
        raise_gp0(c, i);
    mem_probe_write(c, i, va, 4, ACC_W); /* first dword, then the last byte (measured) */
    mem_probe_write(c, i, va + 511, 1, ACC_W);
    uint8_t img[512] __attribute__((aligned(16)));
    if (i->aux)
        asm volatile("fxrstor64 (%1); fxsave64 (%0); fxrstor64 (%2)"
                     : : "r"(img), "r"(c->fx), "r"(c->fx_host) : "memory");
    else
        asm volatile("fxrstor64 (%1); fxsave (%0); fxrstor64 (%2)"
                     : : "r"(img), "r"(c->fx), "r"(c->fx_host) : "memory");
    /* the host writes bytes 0-415 (measured: 416-511 are left alone) */
    mem_write_buf(c, i, va, img, 416, ACC_W);
}

static NOINLINE void fxrstor_run(struct cpu *c, const struct insn *i)
{
    if (c->cr0 & (CR0_TS | CR0_EM))
        raise_exc(c, i, EXC_NM, NO_ERR);
    uint64_t va = ea(c, i);
    if (va & 15)
        raise_gp0(c, i);
    uint8_t img[512] __attribute__((aligned(16)));
    mem_read_buf(c, i, va, img, 4, ACC_R); /* first dword, then the last byte (measured) */
    mem_read_buf(c, i, va + 511, img, 1, ACC_R);
    memset(img, 0, sizeof(img));
    mem_read_buf(c, i, va, img, 416, ACC_R);
    uint32_t mx;
    memcpy(&mx, img + FX_MXCSR, 4);
    if (mx & ~MXCSR_MASK)
        raise_gp0(c, i);
    if (i->aux)
        asm volatile("fxrstor64 (%0); fxsave64 (%1); fxrstor64 (%2)"
                     : : "r"(img), "r"(c->fx), "r"(c->fx_host) : "memory");
    else
        asm volatile("fxrstor (%0); fxsave64 (%1); fxrstor64 (%2)"
                     : : "r"(img), "r"(c->fx), "r"(c->fx_host) : "memory");
}

static HANDLER(fxsave) { fxsave_run(c, i); NEXT; }
static HANDLER(fxrstor) { fxrstor_run(c, i); NEXT; }

const insn_fn h_hx = hx_exec, h_fwait = fwait, h_emms = emms, h_maskmov = maskmov,
              h_fxsave = fxsave, h_fxrstor = fxrstor, h_ldmxcsr = ldmxcsr, h_stmxcsr = stmxcsr;
