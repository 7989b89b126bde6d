/* Segments in the engine: descriptor loads into the data segment
 * registers with their checks, bases and (in 32-bit code) limits, far JMP,
 * CALL and RET, IRET in 64- and 32-bit code, MOV/PUSH/POP of segment
 * registers and LDS/LES/LSS/LFS/LGS. What runs: flat or based data segments,
 * 64-bit and flat 32-bit code segments; 16-bit code, a based CS and gates
 * are reported as not run (raise_unsupported). */
#include "cpu/internal.h"
#include "cpu/handlers.h"

/* --- segments ----------------------------------------------------------------- */
void seg_from_desc(struct x86_segment *s, uint16_t sel, uint64_t d)
{
    uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));
    bool g = (d >> 55) & 1;
    *s = (struct x86_segment){
        .base = ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000),
        .limit = g ? (limit << 12) | 0xfff : limit,
        .selector = sel,
        .type = (d >> 40) & 0xf,
        .s = (d >> 44) & 1,
        .dpl = (d >> 45) & 3,
        .present = (d >> 47) & 1,
        .avl = (d >> 52) & 1,
        .l = (d >> 53) & 1,
        .db = (d >> 54) & 1,
        .g = g,
    };
}

static uint32_t seg_desc_base(uint64_t d)
{
    return (uint32_t)(((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000));
}

/* 32-bit code: the offsets data segment 'k' allows, and whether that
 * leaves out any (c->seg_limited). An expand-down segment allows those
 * above its limit, up to 64 KiB or 4 GiB by its B bit. A null segment is
 * not checked (hardware raises #GP for its use). */
static void seg_update_limit(struct cpu *c, int k)
{
    const struct x86_segment *s = &c->seg[k];
    bool expand_down = !(s->type & 8) && (s->type & 4);
    c->seg_lo[k] = expand_down ? s->limit + 1 : 0;
    c->seg_hi[k] = expand_down ? (s->db ? 0xffffffffu : 0xffffu) : s->limit;
    bool limited = c->seg_lo[k] != 0 || c->seg_hi[k] != 0xffffffffu;
    if (limited && !s->unusable && k != SEG_CS)
        c->seg_limited |= (uint8_t)(1u << k);
}

void seg_update_bases(struct cpu *c)
{
    /* 64-bit mode: only FS and GS have bases; 32-bit code: all six (a CS
     * with a base is not run, see far_target), and the limits */
    bool all = cpu_mode32(c);
    for (int k = 0; k < 8; k++)
        c->segbase[k] = 0;
    c->seg_limited = 0;
    for (int k = 0; k < 6; k++) {
        if (k == SEG_FS || k == SEG_GS || (all && !c->seg[k].unusable))
            c->segbase[k] = c->seg[k].base;
        if (all)
            seg_update_limit(c, k);
    }
}

void seg_limit_fault(struct cpu *c, const struct insn *i, int seg)
{
    raise_exc(c, i, seg == SEG_SS ? EXC_SS : EXC_GP, 0);
}

void cpu_set_cpl(struct cpu *c, unsigned cpl)
{
    c->cpl = (uint8_t)cpl;
    mmu_update_mode(c);
}

static void set_accessed(struct cpu *c, uint16_t sel, uint64_t d)
{
    if (d & (1ull << 40))
        return;
    uint64_t base = (sel & 4) ? c->ldtr.base : c->gdtr.base;
    uint8_t b = (uint8_t)((d >> 40) | 1);
    mem_write_buf(c, NULL, base + (sel & ~7u) + 5, &b, 1, ACC_SUP | ACC_W);
}

/* Load a data segment register (ES/SS/DS/FS/GS) in 64-bit mode. */
static void load_data_seg(struct cpu *c, const struct insn *i, int sr, uint16_t sel)
{
    unsigned rpl = sel & 3;
    if ((sel & ~3u) == 0) {
        if (sr == SEG_SS && (c->cpl == 3 || rpl != c->cpl))
            raise_exc(c, i, EXC_GP, 0);
        struct x86_segment *s = &c->seg[sr];
        *s = (struct x86_segment){.selector = sel, .unusable = true};
        if (sr == SEG_SS)
            s->dpl = c->cpl;
        seg_update_bases(c);
        return;
    }
    uint64_t d;
    if (!desc_fetch(c, sel, &d, false))
        raise_exc(c, i, EXC_GP, sel & ~3);
    unsigned type = (d >> 40) & 0xf, dpl = (d >> 45) & 3;
    bool s = (d >> 44) & 1, p = (d >> 47) & 1;
    if (sr == SEG_SS) {
        if (rpl != c->cpl || !s || (type & 8) || !(type & 2) || dpl != c->cpl)
            raise_exc(c, i, EXC_GP, sel & ~3);
        if (!p)
            raise_exc(c, i, EXC_SS, sel & ~3);
    } else {
        bool code = type & 8, readable = type & 2, conforming = type & 4;
        if (!s || (code && !readable))
            raise_exc(c, i, EXC_GP, sel & ~3);
        if ((!code || !conforming) && (dpl < c->cpl || dpl < rpl))
            raise_exc(c, i, EXC_GP, sel & ~3);
        if (!p)
            raise_exc(c, i, EXC_NP, sel & ~3);
    }
    struct x86_segment loaded;
    seg_from_desc(&loaded, sel, d | (1ull << 40));
    set_accessed(c, sel, d);
    c->seg[sr] = loaded;
    seg_update_bases(c);
}

/* After a return to an outer privilege level: null data segments the new
 * CPL may not use (selector only; the hidden base stays). */
static void null_inaccessible(struct cpu *c)
{
    static const int regs[] = {SEG_ES, SEG_DS, SEG_FS, SEG_GS};
    for (unsigned k = 0; k < 4; k++) {
        struct x86_segment *s = &c->seg[regs[k]];
        bool code = s->type & 8, conforming = s->type & 4;
        if ((!code || !conforming) && c->cpl > s->dpl) {
            s->selector = 0;
            s->unusable = true;
        }
    }
}

/* Checks for a far transfer target code segment in 64-bit mode (same
 * privilege). Returns the descriptor. */
static uint64_t far_target(struct cpu *c, const struct insn *i, uint16_t sel)
{
    if ((sel & ~3u) == 0)
        raise_exc(c, i, EXC_GP, 0);
    uint64_t d;
    if (!desc_fetch(c, sel, &d, false))
        raise_exc(c, i, EXC_GP, sel & ~3);
    unsigned type = (d >> 40) & 0xf, dpl = (d >> 45) & 3;
    bool s = (d >> 44) & 1, p = (d >> 47) & 1;
    if (!s)
        raise_unsupported(c, i, "far transfer through a system descriptor (call gate/TSS, "
                                "selector %#x) is not implemented", sel);
    if (!(type & 8))
        raise_exc(c, i, EXC_GP, sel & ~3);
    if (type & 4) {
        if (dpl > c->cpl)
            raise_exc(c, i, EXC_GP, sel & ~3);
    } else if ((sel & 3) > c->cpl || dpl != c->cpl) {
        raise_exc(c, i, EXC_GP, sel & ~3);
    }
    if (!p)
        raise_exc(c, i, EXC_NP, sel & ~3);
    bool to64 = ((d >> 53) & 1) && (c->efer & EFER_LMA);
    if (!to64 && !((d >> 54) & 1))
        raise_unsupported(c, i, "transfer to 16-bit code (selector %#x) is not implemented",
                          sel);
    if (!to64 && seg_desc_base(d))
        raise_unsupported(c, i, "32-bit code segment with base %#x (selector %#x): only flat "
                                "segments are implemented", seg_desc_base(d), sel);
    return d;
}

static void load_cs(struct cpu *c, uint16_t sel, uint64_t d, unsigned cpl)
{
    seg_from_desc(&c->seg[SEG_CS], (uint16_t)((sel & ~3u) | cpl), d | (1ull << 40));
}

/* JMP far m16:(16|32|64): imm = operand lg */
HANDLER(h_jmpf)
{
    unsigned lg = (unsigned)i->imm, n = 1u << lg;
    uint64_t va = ea(c, i);
    uint64_t off = ldn(c, i, va, lg);
    uint16_t sel = (uint16_t)ld16(c, i, va + n);
    uint64_t d = far_target(c, i, sel);
    if (!canonical(off))
        raise_gp0(c, i);
    load_cs(c, sel, d, c->cpl);
    retire_to(c, i, off);
}

/* JMP ptr16:32 (32-bit code): imm = offset, disp = selector */
HANDLER(h_jmpf_d)
{
    uint16_t sel = (uint16_t)i->disp;
    uint64_t d = far_target(c, i, sel);
    load_cs(c, sel, d, c->cpl);
    retire_to(c, i, i->imm);
}

/* A far CALL's pushes (CS, then the return offset, 'lg' each) and transfer;
 * 32-bit code's stack is ESP, which wraps. */
static void far_call(struct cpu *c, const struct insn *i, uint16_t sel, uint64_t off,
                     unsigned lg)
{
    unsigned n = 1u << lg;
    uint64_t d = far_target(c, i, sel);
    if (!canonical(off))
        raise_gp0(c, i);
    bool m32 = cpu_mode32(c);
    uint64_t sp = c->r[4], s1 = sp - n, s2 = sp - 2 * n;
    if (m32) {
        s1 = (uint32_t)s1;
        s2 = (uint32_t)s2;
    }
    st_ss(c, i, s1, c->seg[SEG_CS].selector, lg);
    st_ss(c, i, s2, next_rip(c, i), lg);
    c->r[4] = s2;
    load_cs(c, sel, d, c->cpl);
    retire_to(c, i, off);
}

/* CALL far m16:(16|32|64): imm = operand lg */
HANDLER(h_callf)
{
    unsigned lg = (unsigned)i->imm, n = 1u << lg;
    uint64_t va = ea(c, i);
    uint64_t off = ldn(c, i, va, lg);
    uint16_t sel = (uint16_t)ld16(c, i, va + n);
    far_call(c, i, sel, off, lg);
}

/* CALL ptr16:32 (32-bit code): imm = offset, disp = selector */
HANDLER(h_callf_d)
{
    far_call(c, i, (uint16_t)i->disp, i->imm, 2);
}

/* RETF [imm16]: aux = operand lg */
HANDLER(h_retf)
{
    unsigned lg = i->aux, n = 1u << lg;
    bool m32 = cpu_mode32(c); /* ESP, which wraps */
    uint64_t sp = m32 ? (uint32_t)c->r[4] : c->r[4];
    uint64_t off = ld_ss(c, i, sp, lg);
    uint16_t sel = (uint16_t)ld_ss(c, i, m32 ? (uint32_t)(sp + n) : sp + n, lg);
    unsigned rpl = sel & 3;
    if ((sel & ~3u) == 0)
        raise_exc(c, i, EXC_GP, 0);
    if (rpl < c->cpl)
        raise_exc(c, i, EXC_GP, sel & ~3);
    uint64_t d;
    if (!desc_fetch(c, sel, &d, false))
        raise_exc(c, i, EXC_GP, sel & ~3);
    unsigned type = (d >> 40) & 0xf, dpl = (d >> 45) & 3;
    if (!((d >> 44) & 1) || !(type & 8))
        raise_exc(c, i, EXC_GP, sel & ~3);
    if ((type & 4) ? dpl > rpl : dpl != rpl)
        raise_exc(c, i, EXC_GP, sel & ~3);
    if (!((d >> 47) & 1))
        raise_exc(c, i, EXC_NP, sel & ~3);
    bool to64 = (d >> 53) & 1;
    if (!to64 && (!((d >> 54) & 1) || seg_desc_base(d)))
        raise_unsupported(c, i, "RETF to 16-bit or non-flat compatibility-mode code (selector "
                                "%#x) is not implemented", sel);
    if (!to64) /* flat 32-bit code: EIP */
        off &= 0xffffffffull;
    if (!canonical(off))
        raise_gp0(c, i);
    uint64_t nsp = sp + 2 * n + i->imm;
    if (m32)
        nsp = (uint32_t)nsp;
    if (rpl > c->cpl) {
        /* return to an outer level: pop SS:RSP too */
        uint64_t rsp = ld_ss(c, i, nsp, lg);
        uint16_t ss = (uint16_t)ld_ss(c, i, nsp + n, lg);
        uint64_t sd = 0;
        if ((ss & ~3u) == 0) {
            if (rpl == 3)
                raise_exc(c, i, EXC_GP, 0);
        } else {
            if (!desc_fetch(c, ss, &sd, false))
                raise_exc(c, i, EXC_GP, ss & ~3);
            unsigned st = (sd >> 40) & 0xf;
            if ((ss & 3) != rpl || !((sd >> 44) & 1) || (st & 8) || !(st & 2) ||
                ((sd >> 45) & 3) != rpl)
                raise_exc(c, i, EXC_GP, ss & ~3);
            if (!((sd >> 47) & 1))
                raise_exc(c, i, EXC_SS, ss & ~3);
        }
        load_cs(c, sel, d, rpl);
        if ((ss & ~3u) == 0)
            c->seg[SEG_SS] = (struct x86_segment){.selector = ss, .unusable = true,
                                                 .dpl = (uint8_t)rpl};
        else
            seg_from_desc(&c->seg[SEG_SS], ss, sd | (1ull << 40));
        c->r[4] = rsp + i->imm;
        cpu_set_cpl(c, rpl);
        null_inaccessible(c);
        seg_update_bases(c);
    } else {
        load_cs(c, sel, d, c->cpl);
        c->r[4] = nsp;
    }
    retire_to(c, i, off);
}

/* IRET: aux = operand lg. In 64-bit code it pops SS:RSP always; in 32-bit
 * code (compatibility mode, ESP wrapping) only when it returns to an outer
 * level, as in protected mode. */
HANDLER(h_iret)
{
    unsigned lg = i->aux, n = 1u << lg;
    if (c->rflags & F_NT)
        raise_gp0(c, i);
    bool m32 = cpu_mode32(c);
    uint64_t wrap = m32 ? 0xffffffffull : ~0ull;
    uint64_t sp = c->r[4] & wrap;
    uint64_t f[5];
    for (unsigned k = 0; k < 3; k++)
        f[k] = ld_ss(c, i, (sp + k * n) & wrap, lg);
    uint16_t cs = (uint16_t)f[1];
    unsigned rpl = cs & 3;
    bool pop_ss = !m32 || rpl > c->cpl;
    for (unsigned k = 3; k < 5; k++)
        f[k] = pop_ss ? ld_ss(c, i, (sp + k * n) & wrap, lg) : 0;
    uint64_t nrip = f[0], nrflags = f[2], nrsp = f[3];
    uint16_t ss = (uint16_t)f[4];
    if ((cs & ~3u) == 0)
        raise_gp0(c, i);
    uint64_t d;
    if (!desc_fetch(c, cs, &d, false))
        raise_exc(c, i, EXC_GP, cs & ~3);
    unsigned type = (d >> 40) & 0xf, dpl = (d >> 45) & 3;
    if (!((d >> 44) & 1) || !(type & 8) || rpl < c->cpl)
        raise_exc(c, i, EXC_GP, cs & ~3);
    if ((type & 4) ? dpl > rpl : dpl != rpl)
        raise_exc(c, i, EXC_GP, cs & ~3);
    if (!((d >> 47) & 1))
        raise_exc(c, i, EXC_NP, cs & ~3);
    bool to64 = (d >> 53) & 1;
    if (!to64 && (!((d >> 54) & 1) || seg_desc_base(d))) {
        /* the kernel returning to a user's 16-bit or based code segment
         * (an LDT entry): the IRET faults, which Linux turns into a
         * SIGSEGV for that process */
        if (rpl != 3)
            raise_error(c, i, "IRET to 16-bit or non-flat compatibility-mode code (CS %#x) is "
                              "not implemented", cs);
        warn_unsupported(c, i, "IRET to 16-bit or non-flat user code", "#GP raised");
        raise_exc(c, i, EXC_GP, cs & ~3);
    }
    if (!to64) /* flat 32-bit code (a 64-bit kernel's 32-bit process): EIP */
        nrip &= 0xffffffffull;
    if (!canonical(nrip))
        raise_gp0(c, i);
    uint64_t sd = 0;
    if (!pop_ss) {
        /* the same level in 32-bit code: SS stays */
    } else if ((ss & ~3u) == 0) {
        if (rpl == 3 || (ss & 3) != rpl)
            raise_exc(c, i, EXC_GP, 0);
    } else {
        if (!desc_fetch(c, ss, &sd, false))
            raise_exc(c, i, EXC_GP, ss & ~3);
        unsigned st = (sd >> 40) & 0xf;
        if ((ss & 3) != rpl || !((sd >> 44) & 1) || (st & 8) || !(st & 2) ||
            ((sd >> 45) & 3) != rpl)
            raise_exc(c, i, EXC_GP, ss & ~3);
        if (!((sd >> 47) & 1))
            raise_exc(c, i, EXC_SS, ss & ~3);
    }
    /* RFLAGS by privilege */
    uint64_t old = rflags_get(c);
    uint64_t mask = F_ARITH | F_TF | F_DF | F_NT | F_RF | F_AC | F_ID | F_VIF | F_VIP;
    unsigned iopl = (old >> 12) & 3;
    if (c->cpl == 0)
        mask |= F_IOPL | F_IF;
    else if (c->cpl <= iopl)
        mask |= F_IF;
    if (lg == 1)
        mask &= 0xffff;
    uint64_t nf = ((old & ~mask) | (nrflags & mask)) & ~(uint64_t)F_VM;
    /* commit */
    unsigned oldcpl = c->cpl;
    load_cs(c, cs, d, rpl);
    if (!pop_ss)
        c->r[4] = (sp + 3 * n) & wrap;
    else if ((ss & ~3u) == 0)
        c->seg[SEG_SS] = (struct x86_segment){.selector = ss, .unusable = true,
                                             .dpl = (uint8_t)rpl, .db = 1, .present = true,
                                             .type = 3, .s = true, .limit = 0xffffffff};
    else
        seg_from_desc(&c->seg[SEG_SS], ss, sd | (1ull << 40));
    if (pop_ss)
        c->r[4] = nrsp;
    rflags_set(c, nf);
    cpu_set_cpl(c, rpl);
    if (rpl > oldcpl)
        null_inaccessible(c);
    seg_update_bases(c);
    c->nmi_masked = false;
    retire_to(c, i, nrip);
}

/* MOV Sreg, r/m: aux = sreg */
HANDLER(h_mov_rs)
{
    uint16_t sel = (uint16_t)(mf_regform(i) ? c->r[i->base] : ld16(c, i, ea(c, i)));
    load_data_seg(c, i, i->aux, sel);
    if (i->aux == SEG_SS)
        c->shadow = 2;
    retire_to(c, i, next_rip(c, i));
}

/* PUSH/POP Sreg: aux = the segment, imm = the operand's lg. 32-bit code
 * (ES CS SS DS too) uses ESP; a 32-bit push stores the selector
 * zero-extended. */
static inline uint64_t sreg_sp(const struct cpu *c, uint64_t sp)
{
    return cpu_mode32(c) ? (uint32_t)sp : sp;
}

HANDLER(h_push_sreg)
{
    unsigned lg = (unsigned)i->imm;
    uint64_t sp = sreg_sp(c, c->r[4] - (1u << lg));
    st_ss(c, i, sp, c->seg[i->aux].selector, lg);
    c->r[4] = sp;
    NEXT;
}

HANDLER(h_pop_sreg)
{
    unsigned lg = (unsigned)i->imm;
    uint64_t sp = sreg_sp(c, c->r[4]);
    uint16_t sel = (uint16_t)ld_ss(c, i, sp, lg);
    load_data_seg(c, i, i->aux, sel);
    c->r[4] = sreg_sp(c, sp + (1u << lg));
    if (i->aux == SEG_SS)
        c->shadow = 2;
    retire_to(c, i, next_rip(c, i));
}

/* LSS/LFS/LGS r, m16:(16|32|64): aux = sreg, imm = lg */
HANDLER(h_lseg)
{
    unsigned lg = (unsigned)i->imm, n = 1u << lg;
    uint64_t va = ea(c, i);
    uint64_t off = ldn(c, i, va, lg);
    uint16_t sel = (uint16_t)ld16(c, i, va + n);
    load_data_seg(c, i, i->aux, sel);
    setr(c, i->reg, off, lg);
    retire_to(c, i, next_rip(c, i));
}

