/* Exceptions and interrupts: raising (longjmp back to cpu_run), delivery
 * through the 64-bit IDT (gate checks, privilege change with RSP0 from the
 * TSS, IST stacks, error codes), #DF on a fault during delivery and
 * shutdown on a fault while delivering #DF. */
#include <stdarg.h>
#include <stdio.h>

#include "cpu/internal.h"

void debugf(struct cpu *c, const char *fmt, ...)
{
    if (!c->ops.debug)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    c->ops.debug(c->ops.ctx, buf);
}

NORETURN static void unwind(struct cpu *c)
{
    ENGINE_LONGJMP(c->jb);
}

void raise_exc(struct cpu *c, const struct insn *i, int vec, int err)
{
    if (i) {
        c->rip = insn_rip(c, i);
        c->icount += (uint64_t)(i - c->blk_first);
    }
    c->exc_vec = vec;
    c->exc_err = err;
    c->exc_soft = 0;
    unwind(c);
}

void raise_trap(struct cpu *c, const struct insn *i, int vec, int soft)
{
    if (i) {
        c->exc_fault_rip = insn_rip(c, i);
        c->rip = next_rip(c, i);
        c->icount += (uint64_t)(i - c->blk_first) + 1;
    }
    c->exc_vec = vec;
    c->exc_err = NO_ERR;
    c->exc_soft = soft;
    unwind(c);
}

void raise_debug_stop(struct cpu *c, const struct insn *i, uint8_t vector, uint64_t dr6)
{
    if (i) {
        c->rip = insn_rip(c, i);
        c->icount += (uint64_t)(i - c->blk_first);
    }
    c->exit->vector = vector;
    c->exit->dr6 = dr6;
    c->stop = CPU_EXIT_DEBUG;
    unwind(c);
}

void raise_gp0(struct cpu *c, const struct insn *i)
{
    raise_exc(c, i, EXC_GP, 0);
}

void raise_ud(struct cpu *c, const struct insn *i)
{
    raise_exc(c, i, EXC_UD, NO_ERR);
}

void raise_error(struct cpu *c, const struct insn *i, const char *fmt, ...)
{
    if (i) {
        c->rip = insn_rip(c, i);
        c->icount += (uint64_t)(i - c->blk_first);
    }
    struct cpu_exit *ex = c->exit;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ex->detail, sizeof(ex->detail), fmt, ap);
    va_end(ap);
    c->stop = CPU_EXIT_ERROR;
    unwind(c);
}

/* Once per vCPU: what the engine did not run for a guest user's program,
 * and the exception it raised instead. */
void warn_unsupported(struct cpu *c, const struct insn *i, const char *what, const char *instead)
{
    if (c->unsupported_said)
        return;
    c->unsupported_said = true;
    /* the bytes from the instruction's first, as far as its page goes (a
     * record the decoder gave up on does not know its length) */
    char bytes[3 * 8 + 1] = "";
    const struct block *b = c->cur_block;
    if (i && b && b->hptr > 1) {
        unsigned in_page = 4096 - (unsigned)((b->pa + i->off) & 0xfff);
        for (unsigned k = 0; k < 8 && k < in_page; k++)
            snprintf(bytes + 3 * k, sizeof(bytes) - 3 * k, " %02x",
                     ((const uint8_t *)b->hptr)[i->off + k]);
    }
    char msg[400];
    snprintf(msg, sizeof(msg), "user code at %#llx%s%s: %s; %s (said once)",
             (unsigned long long)(i ? insn_rip(c, i) : c->rip), *bytes ? ", bytes" : "", bytes,
             what, instead);
    if (c->ops.warn)
        c->ops.warn(c->ops.ctx, msg);
    else
        debugf(c, "%s", msg);
}

/* Something the engine does not run. In kernel code that stops the VM
 * with an error naming it. In a guest user's program (CPL3) it raises #UD
 * instead, so that the program gets SIGILL and the VM goes on — not what
 * hardware would do, but no user can stop the VM with it. */
void raise_unsupported(struct cpu *c, const struct insn *i, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (c->cpl == 3) {
        warn_unsupported(c, i, what, "#UD raised");
        raise_ud(c, i);
    }
    raise_error(c, i, "%s", what);
}

static bool contributory(int v)
{
    return v == EXC_DE || v == EXC_TS || v == EXC_NP || v == EXC_SS || v == EXC_GP;
}

/* Read a GDT/LDT descriptor (8 bytes; 16 with 'wide' for system descriptors).
 * Returns false if the selector is outside the table. */
bool desc_fetch(struct cpu *c, uint16_t sel, uint64_t *d, bool wide)
{
    uint64_t base;
    uint32_t limit;
    if (sel & 4) {
        if (c->ldtr.unusable || !c->ldtr.present)
            return false;
        base = c->ldtr.base;
        limit = c->ldtr.limit;
    } else {
        base = c->gdtr.base;
        limit = c->gdtr.limit;
    }
    uint32_t off = sel & ~7u;
    if (off + (wide ? 15u : 7u) > limit)
        return false;
    mem_read_buf(c, NULL, base + off, d, wide ? 16 : 8, ACC_SUP | ACC_R);
    return true;
}

static void trace_event(struct cpu *c, int vec, int err, int soft)
{
    if (!(c->flags & CPU_CFG_TRACE_INT))
        return;
    debugf(c, "v=%02x e=%04x i=%d cpl=%u IP=%04x:%016llx pc=%016llx SP=%04x:%016llx "
              "CR2=%016llx",
           vec, err < 0 ? 0 : err, soft != 0, c->cpl, c->seg[SEG_CS].selector,
           (unsigned long long)c->rip, (unsigned long long)c->rip, c->seg[SEG_SS].selector,
           (unsigned long long)c->r[4], (unsigned long long)c->cr2);
    debugf(c, "  RAX=%016llx RBX=%016llx RCX=%016llx RDX=%016llx RSI=%016llx RDI=%016llx "
              "RBP=%016llx R8=%016llx R9=%016llx R10=%016llx R11=%016llx R12=%016llx "
              "R13=%016llx R14=%016llx R15=%016llx RFL=%08llx",
           (unsigned long long)c->r[0], (unsigned long long)c->r[3], (unsigned long long)c->r[1],
           (unsigned long long)c->r[2], (unsigned long long)c->r[6], (unsigned long long)c->r[7],
           (unsigned long long)c->r[5], (unsigned long long)c->r[8], (unsigned long long)c->r[9],
           (unsigned long long)c->r[10], (unsigned long long)c->r[11], (unsigned long long)c->r[12],
           (unsigned long long)c->r[13], (unsigned long long)c->r[14], (unsigned long long)c->r[15],
           (unsigned long long)rflags_get(c));
}

/* Deliver 'vec' through the IDT. 'soft': 0 hardware (exception, interrupt,
 * NMI), 1 INT n, 2 INT3/INTO, 3 INT1. The return address is c->rip. May
 * raise (longjmp) on a fault during delivery. Returns true if delivered,
 * false if only the checks ran (exit-on-exception mode). */
static bool deliver(struct cpu *c, int vec, int err, int soft, bool checks_only)
{
    int ext = (soft == 0 || soft == 3) ? 1 : 0;
    /* a fault while delivering INT n/INT3/INT1 is reported at that instruction */
    uint64_t ret_rip = c->rip;
    if (soft)
        c->rip = c->exc_fault_rip;
    int idt_err = vec * 8 + 2 + ext;
    if (!(c->efer & EFER_LMA))
        raise_error(c, NULL, "exception or interrupt %d outside long mode (32-bit protected "
                             "mode): not implemented", vec);
    if ((uint32_t)vec * 16 + 15 > c->idtr.limit)
        raise_exc(c, NULL, EXC_GP, idt_err);
    uint64_t g[2];
    mem_read_buf(c, NULL, c->idtr.base + (uint64_t)vec * 16, g, 16, ACC_SUP | ACC_R);
    unsigned type = (g[0] >> 40) & 0xf, dpl = (g[0] >> 45) & 3, ist = (g[0] >> 32) & 7;
    bool present = (g[0] >> 47) & 1;
    if (type != 0xe && type != 0xf)
        raise_exc(c, NULL, EXC_GP, idt_err);
    if ((soft == 1 || soft == 2) && dpl < c->cpl)
        raise_exc(c, NULL, EXC_GP, idt_err);
    if (!present)
        raise_exc(c, NULL, EXC_NP, idt_err);
    if (checks_only) {
        c->rip = ret_rip;
        return false;
    }
    uint16_t sel = (uint16_t)(g[0] >> 16);
    uint64_t target = (g[0] & 0xffff) | ((g[0] >> 32) & 0xffff0000ull) | (g[1] << 32);
    if ((sel & ~3u) == 0)
        raise_exc(c, NULL, EXC_GP, ext);
    uint64_t d;
    if (!desc_fetch(c, sel, &d, false))
        raise_exc(c, NULL, EXC_GP, (sel & ~3) + ext);
    unsigned dtype = (d >> 40) & 0xf, ddpl = (d >> 45) & 3;
    bool ds = (d >> 44) & 1, dp = (d >> 47) & 1, dl = (d >> 53) & 1, ddb = (d >> 54) & 1;
    if (!ds || !(dtype & 8) || ddpl > c->cpl)
        raise_exc(c, NULL, EXC_GP, (sel & ~3) + ext);
    if (!dp)
        raise_exc(c, NULL, EXC_NP, (sel & ~3) + ext);
    if (!dl || ddb)
        raise_exc(c, NULL, EXC_GP, (sel & ~3) + ext);
    unsigned ncpl = (dtype & 4) ? c->cpl : ddpl;
    uint64_t rsp = c->r[4];
    if (ist || ncpl < c->cpl) {
        uint32_t off = ist ? 36 + (ist - 1) * 8 : 4 + ncpl * 8;
        if (off + 7 > c->tr.limit)
            raise_exc(c, NULL, EXC_TS, (c->tr.selector & ~3) + ext);
        mem_read_buf(c, NULL, c->tr.base + off, &rsp, 8, ACC_SUP | ACC_R);
        if (!canonical(rsp))
            raise_exc(c, NULL, EXC_SS, ext);
    }
    if (!canonical(target))
        raise_exc(c, NULL, EXC_GP, ext);
    rsp &= ~0xfull;
    uint64_t frame[6];
    unsigned n = 0;
    if (err >= 0)
        frame[n++] = (uint32_t)err;
    frame[n++] = ret_rip;
    frame[n++] = c->seg[SEG_CS].selector;
    frame[n++] = rflags_get(c);
    frame[n++] = c->r[4];
    frame[n++] = c->seg[SEG_SS].selector;
    /* frame[] is in push order reversed: write lowest address first */
    uint64_t top = rsp - 8ull * n;
    mem_write_buf(c, NULL, top, frame, 8 * n, ACC_SUP | ACC_W | ACC_SS);
    /* commit */
    if (ncpl < c->cpl) {
        c->seg[SEG_SS] = (struct x86_segment){.selector = (uint16_t)ncpl, .unusable = true,
                                             .dpl = (uint8_t)ncpl, .db = 1, .present = true,
                                             .type = 3, .s = true, .limit = 0xffffffff};
    }
    seg_from_desc(&c->seg[SEG_CS], (uint16_t)((sel & ~3u) | ncpl), d);
    c->r[4] = top;
    uint64_t fl = rflags_get(c) & ~(uint64_t)(F_TF | F_NT | F_RF | F_VM);
    if (type == 0xe)
        fl &= ~(uint64_t)F_IF;
    rflags_set(c, fl);
    c->rip = target;
    cpu_set_cpl(c, ncpl);
    seg_update_bases(c);
    return true;
}

static void fill_exception_exit(struct cpu *c, int vec, int err)
{
    struct cpu_exit *ex = c->exit;
    ex->reason = CPU_EXIT_EXCEPTION;
    ex->vector = (uint8_t)vec;
    ex->has_error_code = err >= 0;
    ex->error_code = err >= 0 ? (uint32_t)err : 0;
    ex->cr2 = c->cr2;
    ex->rip = c->rip;
}

int exc_deliver_pending(struct cpu *c)
{
    int vec = c->exc_vec, err = c->exc_err, soft = c->exc_soft;
    uint32_t held = c->db_held; /* a MOV SS's #DB: see guest_db_after */
    c->db_held = 0;
    int prev = c->delivering;
    if (prev >= 0 || prev == -3) {
        /* a fault while delivering 'prev' */
        if (prev == EXC_DF || prev == -3) {
            debugf(c, "triple fault (vector %d while delivering #DF) at rip %#llx", vec,
                   (unsigned long long)c->rip);
            c->delivering = -1;
            return CPU_EXIT_SHUTDOWN;
        }
        if ((contributory(prev) && contributory(vec)) ||
            (prev == EXC_PF && (vec == EXC_PF || contributory(vec)))) {
            vec = EXC_DF;
            err = 0;
            soft = 0;
        }
    }
    c->delivering = soft ? -2 : vec == EXC_DF ? -3 : vec;
    /* faults push RFLAGS with RF set (the handler itself runs with RF=0) */
    if (!soft && vec != EXC_DB && vec != EXC_BP && vec != EXC_OF && vec != EXC_NMI &&
        vec != EXC_DF && vec != EXC_MC)
        c->rflags |= F_RF;
    trace_event(c, vec, err, soft);
    if (c->flags & CPU_CFG_EXIT_ON_EXCEPTION) {
        if (soft == 1 || soft == 2)
            deliver(c, vec, err, soft, true);
        c->delivering = -1;
        fill_exception_exit(c, vec, err);
        return CPU_EXIT_EXCEPTION;
    }
    deliver(c, vec, err, soft, false);
    c->delivering = -1;
    if (vec < 32)
        c->stats.exceptions[vec]++;
    if (held && (soft == 1 || soft == 2)) { /* at the handler's first instruction */
        c->dr6 |= held;
        c->delivering = -2;
        deliver(c, EXC_DB, NO_ERR, 0, false);
        c->delivering = -1;
        c->stats.exceptions[EXC_DB]++;
    }
    return 0;
}

int deliver_interrupt(struct cpu *c, int vec, bool nmi)
{
    c->delivering = -2;
    c->exc_vec = vec;
    c->exc_err = NO_ERR;
    c->exc_soft = 0;
    trace_event(c, vec, -1, 0);
    deliver(c, vec, NO_ERR, 0, false);
    c->delivering = -1;
    c->halted = false;
    if (nmi) {
        c->nmi_masked = true;
        c->stats.nmis++;
    } else {
        c->stats.interrupts++;
    }
    return 0;
}
