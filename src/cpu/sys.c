/* System instructions: SYSCALL/SYSRET, SWAPGS, MOV CR/DR (and the CR0
 * writes that enter and leave 32-bit code), RDMSR/WRMSR, descriptor-table
 * instructions, I/O with IOPL and the TSS bitmap, CPUID, RDTSC(P), HLT,
 * CLI/STI, INT n. Segment loads and far transfers are in seg.c. */
#include <time.h>

#include "cpu/internal.h"
#include "cpu/handlers.h"

/* --- privilege-checked simple system instructions ------------------------------ */
static inline void need_cpl0(struct cpu *c, const struct insn *i)
{
    if (c->cpl != 0)
        raise_gp0(c, i);
}

static HANDLER(hlt)
{
    need_cpl0(c, i);
    c->halted = true;
    retire_to(c, i, next_rip(c, i));
}

static inline bool iopl_ok(const struct cpu *c)
{
    return c->cpl <= ((c->rflags >> 12) & 3);
}

static HANDLER(cli)
{
    if (!iopl_ok(c))
        raise_gp0(c, i);
    c->rflags &= ~(uint64_t)F_IF;
    NEXT;
}

/* STI ends its block only when something waits to be delivered, so that
 * it is taken right after the one instruction in STI's shadow (sti; nop;
 * cli windows, sti; hlt). An interrupt raised later waits for the block's
 * end, as it does after any other instruction. The kernel enables
 * interrupts on every system call. */
static HANDLER(sti)
{
    if (!iopl_ok(c))
        raise_gp0(c, i);
    if (c->rflags & F_IF)
        NEXT;
    c->rflags |= F_IF;
    if (!atomic_load_explicit(&c->events, memory_order_relaxed) && !c->nmi_pending &&
        !(c->rflags & F_TF))
        NEXT;
    c->shadow = 1;
    retire_to(c, i, next_rip(c, i));
}

static HANDLER(int3)
{
    /* a debugger's breakpoint stops the vCPU; the guest's own INT3 (passed
     * on once when the debugger says it is not one of its) reaches the guest */
    if (unlikely(c->dbg.flags & CPU_DEBUG_SW_BP) && !c->dbg.pass_int3)
        raise_debug_stop(c, i, EXC_BP, 0);
    c->dbg.pass_int3 = false;
    raise_trap(c, i, EXC_BP, 2);
}
static HANDLER(int_n) { raise_trap(c, i, (int)i->imm, 1); }
static HANDLER(int1) { raise_trap(c, i, EXC_DB, 3); }
static HANDLER(ud) { raise_ud(c, i); }

/* --- I/O ------------------------------------------------------------------------ */
int io_check(struct cpu *c, const struct insn *i, uint16_t port, unsigned len)
{
    if (iopl_ok(c))
        return 0;
    /* TSS I/O permission bitmap */
    if (c->tr.unusable || (c->tr.type != 9 && c->tr.type != 11) || c->tr.limit < 103)
        raise_gp0(c, i);
    uint16_t base;
    mem_read_buf(c, i, c->tr.base + 102, &base, 2, ACC_SUP | ACC_R);
    uint32_t off = base + port / 8u;
    if (off + 1 > c->tr.limit)
        raise_gp0(c, i);
    uint16_t bits;
    mem_read_buf(c, i, c->tr.base + off, &bits, 2, ACC_SUP | ACC_R);
    if ((bits >> (port & 7)) & ((1u << len) - 1))
        raise_gp0(c, i);
    return 0;
}

void io_port(struct cpu *c, uint16_t port, void *data, unsigned len, bool write)
{
    c->stats.pio++;
    if (!write)
        memset(data, 0xff, len);
    if (c->ops.pio)
        c->ops.pio(c->ops.ctx, port, data, len, write);
}

/* IN/OUT: aux bit0 = port in DX, imm = port; operand lg in mf high bits */
static NOINLINE void in_out(struct cpu *c, const struct insn *i, bool write)
{
    unsigned lg = i->index, n = 1u << lg;
    uint16_t port = (i->aux & 1) ? (uint16_t)c->r[2] : (uint16_t)i->imm;
    io_check(c, i, port, n);
    uint64_t v = write ? c->r[0] : ~0ull;
    io_port(c, port, &v, n, write);
    if (!write)
        setr(c, 0, v, lg);
}

static HANDLER(in)
{
    in_out(c, i, false);
    NEXT;
}

static HANDLER(out)
{
    in_out(c, i, true);
    NEXT;
}

/* --- time -------------------------------------------------------------------------- */
static uint64_t clock_ns(struct cpu *c)
{
    if (c->ops.clock_ns)
        return c->ops.clock_ns(c->ops.ctx);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec - c->clock_base_ns;
}

/* Linux runs an RDTSC on every return to user space (the random kernel
 * stack offset): a rate that is whole GHz takes a multiply, not a 128-bit
 * division. */
uint64_t tsc_read(struct cpu *c)
{
#if CPU_TSC_HZ % 1000000000ull == 0
    uint64_t t = clock_ns(c) * (CPU_TSC_HZ / 1000000000ull);
#else
    uint64_t t = (uint64_t)((unsigned __int128)clock_ns(c) * CPU_TSC_HZ / 1000000000u);
#endif
    return t + c->tsc_offset;
}

static HANDLER(rdtsc)
{
    if ((c->cr4 & CR4_TSD) && c->cpl)
        raise_gp0(c, i);
    uint64_t t = tsc_read(c);
    c->r[0] = (uint32_t)t;
    c->r[2] = t >> 32;
    NEXT;
}

static HANDLER(rdtscp)
{
    if (!(c->ext1_edx & (1u << 27)))
        raise_ud(c, i);
    if ((c->cr4 & CR4_TSD) && c->cpl)
        raise_gp0(c, i);
    uint64_t t = tsc_read(c);
    c->r[0] = (uint32_t)t;
    c->r[2] = t >> 32;
    c->r[1] = (uint32_t)c->tsc_aux;
    NEXT;
}

static HANDLER(rdpid)
{
    if (!(c->feat7_ecx & (1u << 22)))
        raise_ud(c, i);
    c->r[i->base] = (uint32_t)c->tsc_aux;
    NEXT;
}

/* RDFSBASE/RDGSBASE/WRFSBASE/WRGSBASE (64-bit code, CR4.FSGSBASE): aux
 * bit 0 GS, bit 1 a write, bit 2 REX.W (else 32 bits, zero-extended) */
static HANDLER(fsgsbase)
{
    if (!(c->cr4 & CR4_FSGSBASE))
        raise_ud(c, i);
    int seg = (i->aux & 1) ? SEG_GS : SEG_FS;
    bool w = i->aux & 4;
    if (!(i->aux & 2)) {
        uint64_t v = c->seg[seg].base;
        c->r[i->base] = w ? v : (uint32_t)v;
        NEXT;
    }
    uint64_t v = w ? c->r[i->base] : (uint32_t)c->r[i->base];
    if (!canonical(v))
        raise_gp0(c, i);
    c->seg[seg].base = v;
    seg_update_bases(c);
    NEXT;
}

static HANDLER(rdpmc)
{
    raise_gp0(c, i);
}

static HANDLER(rdrand)
{
    if (!(c->feat1_ecx & (1u << 30)))
        raise_ud(c, i);
    unsigned lg = i->aux;
    uint64_t v = 0;
    unsigned char ok = 0;
    for (int tries = 0; tries < 100 && !ok; tries++) {
        if (lg == 1) {
            uint16_t x;
            asm volatile("rdrand %0; setc %1" : "=r"(x), "=qm"(ok) : : "cc");
            v = x;
        } else if (lg == 2) {
            uint32_t x;
            asm volatile("rdrand %0; setc %1" : "=r"(x), "=qm"(ok) : : "cc");
            v = x;
        } else {
            asm volatile("rdrand %0; setc %1" : "=r"(v), "=qm"(ok) : : "cc");
        }
    }
    setr(c, i->base, v, lg);
    cc_set_eager(c, ok ? F_CF : 0);
    NEXT;
}

/* --- CPUID ------------------------------------------------------------------------ */
static NOINLINE void cpuid_run(struct cpu *c)
{
    uint32_t out[4];
    cpuid_query(c, (uint32_t)c->r[0], (uint32_t)c->r[1], out);
    c->r[0] = out[0];
    c->r[3] = out[1];
    c->r[1] = out[2];
    c->r[2] = out[3];
}

static HANDLER(cpuid)
{
    cpuid_run(c);
    NEXT;
}

/* --- control registers ------------------------------------------------------------- */
int set_cr0(struct cpu *c, uint64_t v)
{
    if (v >> 32)
        return -1;
    v |= CR0_ET;
    if ((v & CR0_PG) && !(v & CR0_PE))
        return -1;
    if ((v & CR0_NW) && !(v & CR0_CD))
        return -1;
    uint64_t changed = c->cr0 ^ v;
    if ((changed & CR0_PG) && !(v & CR0_PG) && (c->efer & EFER_LMA)) {
        if (c->seg[SEG_CS].l)
            return -1; /* only compatibility mode may leave long mode */
        c->efer &= ~EFER_LMA;
    }
    if ((changed & CR0_PG) && (v & CR0_PG)) {
        if (!(c->efer & EFER_LME))
            return -2; /* legacy paging, not implemented */
        if (!(c->cr4 & CR4_PAE))
            return -1;
        c->efer |= EFER_LMA;
    }
    c->cr0 = v;
    if (changed & (CR0_PG | CR0_WP | CR0_PE))
        tlb_flush_all(c, true);
    mmu_update_mode(c);
    return 0;
}

int set_cr3(struct cpu *c, uint64_t v)
{
    if (v >> 52)
        return -1;
    c->cr3 = v;
    tlb_flush_all(c, false);
    return 0;
}

int set_cr4(struct cpu *c, uint64_t v)
{
    if (v & ~CR4_SUPPORTED)
        return -1;
    if ((v & CR4_FSGSBASE) && !(c->feat7_ebx & 1u)) /* not offered (a CPU template) */
        return -1;
    if ((c->efer & EFER_LMA) && !(v & CR4_PAE))
        return -1;
    uint64_t changed = c->cr4 ^ v;
    c->cr4 = v;
    if (changed & (CR4_PGE | CR4_PAE | CR4_PSE))
        tlb_flush_all(c, true);
    return 0;
}

/* aux = CR number; base = register */
static HANDLER(mov_from_cr)
{
    need_cpl0(c, i);
    uint64_t v;
    switch (i->aux) {
    case 0: v = c->cr0; break;
    case 2: v = c->cr2; break;
    case 3: v = c->cr3; break;
    case 4: v = c->cr4; break;
    case 8: v = c->cr8; break;
    default: raise_ud(c, i);
    }
    c->r[i->base] = cpu_mode32(c) ? (uint32_t)v : v;
    NEXT;
}

static HANDLER(mov_to_cr)
{
    need_cpl0(c, i);
    uint64_t v = cpu_mode32(c) ? (uint32_t)c->r[i->base] : c->r[i->base];
    int r = 0;
    switch (i->aux) {
    case 0: r = set_cr0(c, v); break;
    case 2: c->cr2 = v; break;
    case 3: r = set_cr3(c, v); break;
    case 4: r = set_cr4(c, v); break;
    case 8:
        if (v > 15)
            r = -1;
        else
            c->cr8 = v;
        break;
    default: raise_ud(c, i);
    }
    if (r == -2)
        raise_error(c, i, "paging without EFER.LME (32-bit paging) is not implemented");
    if (r)
        raise_gp0(c, i);
    retire_to(c, i, next_rip(c, i));
}

static HANDLER(mov_from_dr)
{
    unsigned n = i->aux;
    if (n > 7 || ((n == 4 || n == 5) && (c->cr4 & CR4_DE)))
        raise_ud(c, i);
    need_cpl0(c, i);
    if (n == 4 || n == 5)
        n += 2;
    uint64_t v = n < 4 ? c->dr[n] : n == 6 ? c->dr6 : c->dr7;
    c->r[i->base] = v;
    NEXT;
}

static HANDLER(mov_to_dr)
{
    unsigned n = i->aux;
    if (n > 7 || ((n == 4 || n == 5) && (c->cr4 & CR4_DE)))
        raise_ud(c, i);
    need_cpl0(c, i);
    if (n == 4 || n == 5)
        n += 2;
    uint64_t v = c->r[i->base];
    if (n < 4) {
        c->dr[n] = v;
    } else {
        if (v >> 32)
            raise_gp0(c, i);
        if (n == 6)
            c->dr6 = (v & 0x0000f00full) | 0xffff0ff0ull;
        else
            c->dr7 = (v & 0xffff2bffull) | 0x400;
    }
    if (n != 6)
        guest_dr_changed(c);
    retire_to(c, i, next_rip(c, i));
}

static HANDLER(clts)
{
    need_cpl0(c, i);
    c->cr0 &= ~CR0_TS;
    retire_to(c, i, next_rip(c, i));
}

static HANDLER(lmsw)
{
    need_cpl0(c, i);
    uint64_t v = mf_regform(i) ? c->r[i->base] : ld16(c, i, ea(c, i));
    /* LMSW sets PE but never clears it; MP, EM, TS follow the source */
    uint64_t n = (c->cr0 & ~0xeull) | (v & 0xf) | (c->cr0 & CR0_PE);
    if (set_cr0(c, n))
        raise_gp0(c, i);
    retire_to(c, i, next_rip(c, i));
}

static HANDLER(smsw)
{
    if (mf_regform(i))
        setr(c, i->base, c->cr0, (unsigned)i->imm);
    else
        st16(c, i, ea(c, i), c->cr0);
    NEXT;
}

static HANDLER(invlpg)
{
    need_cpl0(c, i);
    tlb_flush_page(c, ea(c, i));
    retire_to(c, i, next_rip(c, i));
}

static HANDLER(wbinvd)
{
    need_cpl0(c, i);
    retire_to(c, i, next_rip(c, i));
}

/* Does not end its block: addressing reads segbase[] when it runs, and
 * the kernel swaps twice on every system call. */
static HANDLER(swapgs)
{
    if (cpu_mode32(c))
        raise_ud(c, i);
    need_cpl0(c, i);
    uint64_t t = c->seg[SEG_GS].base;
    c->seg[SEG_GS].base = c->kernel_gs_base;
    c->kernel_gs_base = t;
    c->segbase[SEG_GS] = c->seg[SEG_GS].base;
    NEXT;
}

/* --- descriptor tables ---------------------------------------------------------------- */
static HANDLER(lgdt_lidt)
{
    need_cpl0(c, i);
    uint64_t va = ea(c, i);
    uint16_t limit = (uint16_t)ld16(c, i, va);
    uint64_t base = ld64(c, i, va + 2);
    if (!canonical(base))
        raise_gp0(c, i);
    struct x86_dtable *t = i->aux ? &c->idtr : &c->gdtr;
    t->limit = limit;
    t->base = base;
    retire_to(c, i, next_rip(c, i));
}

static NOINLINE void sgdt_sidt_run(struct cpu *c, const struct insn *i)
{
    const struct x86_dtable *t = i->aux ? &c->idtr : &c->gdtr;
    uint8_t buf[10];
    memcpy(buf, &t->limit, 2);
    memcpy(buf + 2, &t->base, 8);
    mem_write_buf(c, i, ea(c, i), buf, 10, ACC_W);
}

static HANDLER(sgdt_sidt)
{
    sgdt_sidt_run(c, i);
    NEXT;
}

/* SLDT/STR: aux 0 ldtr 1 tr */
static HANDLER(sldt_str)
{
    uint16_t sel = i->aux ? c->tr.selector : c->ldtr.selector;
    if (mf_regform(i))
        setr(c, i->base, sel, (unsigned)i->imm);
    else
        st16(c, i, ea(c, i), sel);
    NEXT;
}

static uint16_t sel_operand(struct cpu *c, const struct insn *i)
{
    return (uint16_t)(mf_regform(i) ? c->r[i->base] : ld16(c, i, ea(c, i)));
}

static HANDLER(lldt)
{
    need_cpl0(c, i);
    uint16_t sel = sel_operand(c, i);
    if ((sel & ~3u) == 0) {
        c->ldtr = (struct x86_segment){.selector = sel, .unusable = true};
        retire_to(c, i, next_rip(c, i));
        return;
    }
    uint64_t d[2];
    if ((sel & 4) || !desc_fetch(c, sel, d, true))
        raise_exc(c, i, EXC_GP, sel & ~3);
    if (((d[0] >> 44) & 1) || ((d[0] >> 40) & 0xf) != 2 || ((d[1] >> 40) & 0x1f))
        raise_exc(c, i, EXC_GP, sel & ~3);
    if (!((d[0] >> 47) & 1))
        raise_exc(c, i, EXC_NP, sel & ~3);
    uint64_t base = ((d[0] >> 16) & 0xffffff) | ((d[0] >> 32) & 0xff000000) | (d[1] << 32);
    if (!canonical(base))
        raise_exc(c, i, EXC_GP, sel & ~3);
    seg_from_desc(&c->ldtr, sel, d[0]);
    c->ldtr.base = base;
    retire_to(c, i, next_rip(c, i));
}

static HANDLER(ltr)
{
    need_cpl0(c, i);
    uint16_t sel = sel_operand(c, i);
    if ((sel & ~3u) == 0)
        raise_gp0(c, i);
    uint64_t d[2];
    if ((sel & 4) || !desc_fetch(c, sel, d, true))
        raise_exc(c, i, EXC_GP, sel & ~3);
    if (((d[0] >> 44) & 1) || ((d[0] >> 40) & 0xf) != 9 || ((d[1] >> 40) & 0x1f))
        raise_exc(c, i, EXC_GP, sel & ~3);
    if (!((d[0] >> 47) & 1))
        raise_exc(c, i, EXC_NP, sel & ~3);
    uint64_t base = ((d[0] >> 16) & 0xffffff) | ((d[0] >> 32) & 0xff000000) | (d[1] << 32);
    if (!canonical(base))
        raise_exc(c, i, EXC_GP, sel & ~3);
    /* mark busy */
    uint8_t b = (uint8_t)((d[0] >> 40) | 2);
    mem_write_buf(c, i, c->gdtr.base + (sel & ~7u) + 5, &b, 1, ACC_SUP | ACC_W);
    seg_from_desc(&c->tr, sel, d[0] | (2ull << 40));
    c->tr.base = base;
    retire_to(c, i, next_rip(c, i));
}

/* LAR/LSL/VERR/VERW: aux 0 lar 1 lsl 2 verr 3 verw; imm = lg */
static NOINLINE void lar_lsl_run(struct cpu *c, const struct insn *i)
{
    uint16_t sel = sel_operand(c, i);
    unsigned op = i->aux;
    bool ok = false;
    uint64_t d = 0;
    if ((sel & ~3u) != 0 && desc_fetch(c, sel, &d, false)) {
        unsigned type = (d >> 40) & 0xf, dpl = (d >> 45) & 3;
        bool s = (d >> 44) & 1;
        bool conforming_code = s && (type & 0xc) == 0xc;
        bool priv = conforming_code || (dpl >= c->cpl && dpl >= (sel & 3u));
        if (!s) {
            if (op == 0)
                ok = type == 2 || type == 9 || type == 11 || type == 12;
            else if (op == 1)
                ok = type == 2 || type == 9 || type == 11;
            ok = ok && priv;
        } else if (op == 2) {
            ok = (!(type & 8) || (type & 2)) && priv;
        } else if (op == 3) {
            ok = !(type & 8) && (type & 2) && priv;
        } else {
            ok = priv;
        }
    }
    if (ok && op < 2) {
        unsigned lg = (unsigned)i->imm;
        uint64_t v;
        if (op == 0) {
            v = (d >> 32) & 0x00ffff00ull; /* AMD: limit 19:16 included (measured) */
        } else {
            uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));
            v = ((d >> 55) & 1) ? (limit << 12) | 0xfff : limit;
        }
        setr(c, i->reg, v, lg);
    }
    uint32_t f = cc_flags(c);
    cc_set_eager(c, ok ? f | F_ZF : f & ~F_ZF);
}

static HANDLER(lar_lsl)
{
    lar_lsl_run(c, i);
    NEXT;
}

/* --- SYSCALL/SYSRET ------------------------------------------------------------------ */
static HANDLER(syscall)
{
    if (!(c->efer & EFER_SCE))
        raise_ud(c, i);
    bool compat = cpu_mode32(c); /* a 32-bit process (AMD's SYSCALL32): CSTAR */
    uint64_t fl = rflags_get(c);
    c->r[1] = next_rip(c, i);
    c->r[11] = fl & ~(uint64_t)F_RF;
    uint16_t cs = (uint16_t)((c->star >> 32) & 0xfffc);
    c->seg[SEG_CS] = (struct x86_segment){.selector = cs, .type = 11, .s = true, .present = true,
                                         .l = true, .g = true, .limit = 0xffffffff};
    c->seg[SEG_SS] = (struct x86_segment){.selector = (uint16_t)(cs + 8), .type = 3, .s = true,
                                         .present = true, .db = true, .g = true,
                                         .limit = 0xffffffff};
    rflags_set(c, fl & ~(c->sfmask | F_RF));
    cpu_set_cpl(c, 0);
    seg_update_bases(c);
    if (compat || (c->rflags & F_TF)) { /* a change of code mode, or a single step */
        retire_to(c, i, compat ? c->cstar : c->lstar);
        return;
    }
    JUMP(c->lstar, -1); /* the kernel's entry, through the jump cache */
}

static HANDLER(sysret)
{
    if (!(c->efer & EFER_SCE))
        raise_ud(c, i);
    need_cpl0(c, i);
    uint16_t base = (uint16_t)(c->star >> 48);
    uint64_t target;
    if (i->aux) {
        target = c->r[1];
        c->seg[SEG_CS] = (struct x86_segment){.selector = (uint16_t)((base + 16) | 3), .type = 11,
                                             .s = true, .dpl = 3, .present = true, .l = true,
                                             .g = true, .limit = 0xffffffff};
    } else { /* SYSRETL: back to a 32-bit process at ECX */
        target = (uint32_t)c->r[1];
        c->seg[SEG_CS] = (struct x86_segment){.selector = (uint16_t)(base | 3), .type = 11,
                                             .s = true, .dpl = 3, .present = true, .db = true,
                                             .g = true, .limit = 0xffffffff};
    }
    c->seg[SEG_SS] = (struct x86_segment){.selector = (uint16_t)((base + 8) | 3), .type = 3,
                                         .s = true, .dpl = 3, .present = true, .db = true,
                                         .g = true, .limit = 0xffffffff};
    rflags_set(c, (c->r[11] & 0x3c7fd7ull) | 2);
    cpu_set_cpl(c, 3);
    seg_update_bases(c);
    if (!i->aux || (c->rflags & F_TF)) { /* to 32-bit code, or a single step */
        retire_to(c, i, target);
        return;
    }
    JUMP(target, -1); /* (an interrupt IF=1 lets in stops it: chain_ok) */
}

/* --- MSRs ----------------------------------------------------------------------------- */
#define MSR_EFER 0xc0000080u
#define MSR_STAR 0xc0000081u
#define MSR_LSTAR 0xc0000082u
#define MSR_CSTAR 0xc0000083u
#define MSR_SFMASK 0xc0000084u
#define MSR_FS_BASE 0xc0000100u
#define MSR_GS_BASE 0xc0000101u
#define MSR_KERNEL_GS_BASE 0xc0000102u
#define MSR_TSC_AUX 0xc0000103u
#define MSR_PAT 0x277u
#define MSR_MTRRCAP 0xfeu
#define MSR_MTRR_DEF 0x2ffu
#define MSR_MISC_ENABLE 0x1a0u
#define MSR_SYSENTER_CS 0x174u
#define MSR_SYSENTER_ESP 0x175u
#define MSR_SYSENTER_EIP 0x176u
#define MSR_PATCH_LEVEL 0x8bu
#define MSR_K7_HWCR 0xc0010015u
#define MSR_K8_SYSCFG 0xc0010010u
#define MSR_DE_CFG 0xc0011029u
/* K8's interrupt-pending message register: Linux reads it for erratum 400
 * on this CPU family; 0 says C1E is off, so nothing to work around. */
#define MSR_K8_INT_PENDING_MSG 0xc0010055u

static int fixed_mtrr_index(uint32_t idx)
{
    if (idx == 0x250) return 0;
    if (idx == 0x258) return 1;
    if (idx == 0x259) return 2;
    if (idx >= 0x268 && idx <= 0x26f) return 3 + (int)(idx - 0x268);
    return -1;
}

static bool mtrr_offered(const struct cpu *c)
{
    return c->feat1_edx & (1u << 12);
}

static bool mem_type_ok(uint64_t t)
{
    return t == 0 || t == 1 || t == 4 || t == 5 || t == 6;
}

int msr_read(struct cpu *c, uint32_t idx, uint64_t *v)
{
    int fm;
    switch (idx) {
    case MSR_IA32_TSC: *v = tsc_read(c); return 0;
    case MSR_EFER: *v = c->efer; return 0;
    case MSR_STAR: *v = c->star; return 0;
    case MSR_LSTAR: *v = c->lstar; return 0;
    case MSR_CSTAR: *v = c->cstar; return 0;
    case MSR_SFMASK: *v = c->sfmask; return 0;
    case MSR_FS_BASE: *v = c->seg[SEG_FS].base; return 0;
    case MSR_GS_BASE: *v = c->seg[SEG_GS].base; return 0;
    case MSR_KERNEL_GS_BASE: *v = c->kernel_gs_base; return 0;
    case MSR_TSC_AUX:
        if (!(c->ext1_edx & (1u << 27)) && !(c->feat7_ecx & (1u << 22)))
            break;
        *v = c->tsc_aux;
        return 0;
    case MSR_PAT: *v = c->pat; return 0;
    case MSR_SYSENTER_CS: *v = c->sysenter_cs; return 0;
    case MSR_SYSENTER_ESP: *v = c->sysenter_esp; return 0;
    case MSR_SYSENTER_EIP: *v = c->sysenter_eip; return 0;
    case MSR_MISC_ENABLE: *v = c->misc_enable; return 0;
    case MSR_PATCH_LEVEL: *v = 0; return 0;
    case MSR_K7_HWCR: *v = c->hwcr; return 0;
    case MSR_K8_SYSCFG: *v = c->syscfg; return 0;
    case MSR_DE_CFG: *v = c->de_cfg; return 0;
    case MSR_K8_INT_PENDING_MSG: *v = 0; return 0;
    case MSR_MTRRCAP:
        if (!mtrr_offered(c)) break;
        *v = 0x508; /* WC, fixed ranges, 8 variable ranges */
        return 0;
    case MSR_MTRR_DEF:
        if (!mtrr_offered(c)) break;
        *v = c->mtrr_def;
        return 0;
    default:
        if (idx >= 0x200 && idx < 0x210 && mtrr_offered(c)) {
            *v = c->mtrr_var[idx - 0x200];
            return 0;
        }
        fm = fixed_mtrr_index(idx);
        if (fm >= 0 && mtrr_offered(c)) {
            *v = c->mtrr_fixed[fm];
            return 0;
        }
        break;
    }
    if (c->ops.msr && c->ops.msr(c->ops.ctx, idx, v, false))
        return 0;
    return -1;
}

int msr_write(struct cpu *c, uint32_t idx, uint64_t v)
{
    int fm;
    switch (idx) {
    case MSR_IA32_TSC: {
        unsigned __int128 t = (unsigned __int128)clock_ns(c) * CPU_TSC_HZ / 1000000000u;
        c->tsc_offset = v - (uint64_t)t;
        return 0;
    }
    case MSR_EFER: {
        uint64_t ok = EFER_SCE | EFER_LME | EFER_LMA;
        if (c->ext1_edx & (1u << 20))
            ok |= EFER_NXE;
        if (v & ~ok)
            return -1;
        /* LME cannot change while paging is on; LMA is read-only */
        if ((c->cr0 & CR0_PG) && ((v ^ c->efer) & EFER_LME))
            return -1;
        v = (v & ~EFER_LMA) | (c->efer & EFER_LMA);
        if ((v ^ c->efer) & EFER_NXE)
            tlb_flush_all(c, true);
        c->efer = v;
        return 0;
    }
    case MSR_STAR: c->star = v; return 0;
    case MSR_LSTAR:
    case MSR_CSTAR:
        if (!canonical(v))
            return -1;
        if (idx == MSR_LSTAR)
            c->lstar = v;
        else
            c->cstar = v;
        return 0;
    case MSR_SFMASK:
        if (v >> 32)
            return -1;
        c->sfmask = v;
        return 0;
    case MSR_FS_BASE:
    case MSR_GS_BASE:
    case MSR_KERNEL_GS_BASE:
        if (!canonical(v))
            return -1;
        if (idx == MSR_FS_BASE)
            c->seg[SEG_FS].base = v;
        else if (idx == MSR_GS_BASE)
            c->seg[SEG_GS].base = v;
        else
            c->kernel_gs_base = v;
        seg_update_bases(c);
        return 0;
    case MSR_TSC_AUX:
        if (!(c->ext1_edx & (1u << 27)) && !(c->feat7_ecx & (1u << 22)))
            break;
        if (v >> 32)
            return -1;
        c->tsc_aux = v;
        return 0;
    case MSR_PAT:
        for (int k = 0; k < 8; k++) {
            uint64_t t = (v >> (8 * k)) & 0xff;
            if (!mem_type_ok(t) && t != 7)
                return -1;
        }
        c->pat = v;
        return 0;
    case MSR_SYSENTER_CS: c->sysenter_cs = v & 0xffff; return 0;
    case MSR_SYSENTER_ESP:
        if (!canonical(v)) return -1;
        c->sysenter_esp = v;
        return 0;
    case MSR_SYSENTER_EIP:
        if (!canonical(v)) return -1;
        c->sysenter_eip = v;
        return 0;
    case MSR_MISC_ENABLE: c->misc_enable = v; return 0;
    case MSR_PATCH_LEVEL: return 0;
    case MSR_K7_HWCR: c->hwcr = v; return 0;
    case MSR_K8_SYSCFG: c->syscfg = v; return 0;
    case MSR_DE_CFG: c->de_cfg = v; return 0;
    case MSR_K8_INT_PENDING_MSG: return 0; /* C1E stays off */
    case MSR_MTRRCAP:
        if (!mtrr_offered(c)) break;
        return -1;
    case MSR_MTRR_DEF:
        if (!mtrr_offered(c)) break;
        if ((v & ~0xcffull) || !mem_type_ok(v & 0xff))
            return -1;
        c->mtrr_def = v;
        return 0;
    default:
        if (idx >= 0x200 && idx < 0x210 && mtrr_offered(c)) {
            uint64_t rsvd = (idx & 1) ? (0xffffff0000000000ull | 0x7ffull)
                                      : (0xffffff0000000000ull | 0xf00ull);
            if ((v & rsvd) || (!(idx & 1) && !mem_type_ok(v & 0xff)))
                return -1;
            c->mtrr_var[idx - 0x200] = v;
            return 0;
        }
        fm = fixed_mtrr_index(idx);
        if (fm >= 0 && mtrr_offered(c)) {
            for (int k = 0; k < 8; k++)
                if (!mem_type_ok((v >> (8 * k)) & 0xff))
                    return -1;
            c->mtrr_fixed[fm] = v;
            return 0;
        }
        break;
    }
    if (c->ops.msr && c->ops.msr(c->ops.ctx, idx, &v, true))
        return 0;
    return -1;
}

static NOINLINE void rdmsr_run(struct cpu *c, const struct insn *i)
{
    need_cpl0(c, i);
    uint64_t v;
    if (msr_read(c, (uint32_t)c->r[1], &v))
        raise_gp0(c, i);
    c->r[0] = (uint32_t)v;
    c->r[2] = v >> 32;
}

static HANDLER(rdmsr)
{
    rdmsr_run(c, i);
    NEXT;
}

static HANDLER(wrmsr)
{
    need_cpl0(c, i);
    uint64_t v = (uint32_t)c->r[0] | (c->r[2] << 32);
    if (msr_write(c, (uint32_t)c->r[1], v))
        raise_gp0(c, i);
    retire_to(c, i, next_rip(c, i));
}

/* --- cache/prefetch/fences ---------------------------------------------------------- */
static HANDLER(clflush)
{
    /* faults like a byte read */
    (void)ld8(c, i, ea(c, i));
    NEXT;
}

static HANDLER(fence)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    NEXT;
}

static HANDLER(pause)
{
    __builtin_ia32_pause();
    if (c->ops.pause && c->ops.pause(c->ops.ctx))
        atomic_fetch_or(&c->events, CPU_EVENT_KICK); /* a spin-wait: give way */
    NEXT;
}

static HANDLER(nop)
{
    NEXT;
}

const insn_fn h_sys[OP_COUNT] = {
    [OP_HLT] = hlt, [OP_CLI] = cli, [OP_STI] = sti, [OP_INT3] = int3, [OP_INT] = int_n,
    [OP_INT1] = int1, [OP_UD] = ud, [OP_IN] = in, [OP_OUT] = out, [OP_RDTSC] = rdtsc,
    [OP_RDTSCP] = rdtscp, [OP_RDPID] = rdpid, [OP_FSGSBASE] = fsgsbase, [OP_RDPMC] = rdpmc, [OP_RDRAND] = rdrand,
    [OP_CPUID] = cpuid, [OP_MOV_FROM_CR] = mov_from_cr, [OP_MOV_TO_CR] = mov_to_cr,
    [OP_MOV_FROM_DR] = mov_from_dr, [OP_MOV_TO_DR] = mov_to_dr, [OP_CLTS] = clts,
    [OP_LMSW] = lmsw, [OP_SMSW] = smsw, [OP_INVLPG] = invlpg, [OP_WBINVD] = wbinvd,
    [OP_INVD] = wbinvd, [OP_SWAPGS] = swapgs, [OP_LGDT] = lgdt_lidt, [OP_LIDT] = lgdt_lidt,
    [OP_SGDT] = sgdt_sidt, [OP_SIDT] = sgdt_sidt, [OP_SLDT] = sldt_str, [OP_STR] = sldt_str,
    [OP_LLDT] = lldt, [OP_LTR] = ltr, [OP_LAR] = lar_lsl, [OP_LSL] = lar_lsl,
    [OP_VERR] = lar_lsl, [OP_VERW] = lar_lsl, [OP_SYSCALL] = syscall, [OP_SYSRET] = sysret,
    [OP_RDMSR] = rdmsr, [OP_WRMSR] = wrmsr, [OP_CLFLUSH] = clflush, [OP_FENCE] = fence,
    [OP_PAUSE] = pause, [OP_NOPM] = nop, [OP_IRET] = h_iret, [OP_RETF] = h_retf,
    [OP_JMPF] = h_jmpf, [OP_JMPF_D] = h_jmpf_d, [OP_CALLF_D] = h_callf_d, [OP_CALLF] = h_callf, [OP_MOV_RS] = h_mov_rs, [OP_PUSH_SREG] = h_push_sreg,
    [OP_POP_SREG] = h_pop_sreg, [OP_LSEG] = h_lseg,
};
