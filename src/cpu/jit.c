/* The translator's emitters: host code for one record of each form it
 * knows (moves, ADD/OR/AND/SUB/XOR/CMP/TEST, LEA, MOVZX/MOVSX, PUSH/POP of
 * a 64-bit register, shifts and rotates by an immediate, IMUL r,r(,imm),
 * read-modify-write ALU forms), and the code arena. The block pass that
 * strings records into runs, and the transfers that end them, are in
 * jit_run.c. Host code is entered like any handler (rdi = the vCPU, rsi =
 * the record) and leaves a run by jumping to the next record's handler.
 * Guest state outside a run is where the interpreter keeps it (registers in
 * c->r[], the lazy-flag fields exactly as the handlers set them), so
 * exceptions, interrupts at block ends and flag materialisation are
 * unchanged; inside a run some registers live in host registers
 * (struct regcache). Memory operands probe the soft TLB inline; a miss (or
 * MMIO, a code page, a watched page, a page-crossing access) jumps to the
 * record's interpreter handler, which redoes the instruction from the
 * start with its slow paths — nothing guest-visible happened before the
 * probe — and goes on with the next record's handler.
 *
 * Code lives in a per-vCPU arena mapped twice (shared memory): written
 * through a read-write view, run through a read-execute view (no page is
 * writable and executable at once, and no mprotect per block). It is
 * reset together with the block cache; invalidated blocks' code is simply
 * never entered again, as their records are not. */
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cpu/internal.h"
#include "cpu/handlers.h"
#include "cpu/jit_internal.h"

#define JIT_ARENA (128u << 20) /* a boot and the bench's work write ~60 MiB */

_Static_assert(sizeof(struct tlbe) == 32, "TLB entry size is baked into the probe");
_Static_assert(offsetof(struct cpu, r) == 0, "guest registers at the vCPU's start");

/* Host flags equal to the guest's after emit_alu (rax = a, rcx = b,
 * rdx = the result): the same operation at the operand's size, so a host
 * Jcc with the guest's condition code decides as the guest's would. */
void emit_host_flags(struct emit *e, unsigned op, unsigned lg)
{
    unsigned byte = lg == 0 ? 1 : 0; /* byte forms: the opcode below */
    if (op == 5 || op == 7)
        op_rr(e, lg, 0x39 - byte, RCX, RAX); /* cmp a, b */
    else if (op == 0)
        op_rr(e, lg, 0x01 - byte, RCX, RAX); /* add a, b */
    else
        op_rr(e, lg, 0x85 - byte, RDX, RDX); /* test r, r: logic flags */
}

/* --- emitting ---------------------------------------------------------------- */

/* The guest register a register operand 'g' of size lg names (g is a byte
 * offset into r[] for byte operands, as in the records), noting its use in
 * the dry pass; -1 when it stays in memory. */
static int cached_host(struct emit *e, unsigned g, unsigned lg)
{
    struct regcache *rc = e->rc;
    if (!rc)
        return -1;
    unsigned r = lg == 0 ? g >> 3 : g;
    if (rc->counting) {
        rc->uses[r]++;
        if (lg == 0 && (g & 7))
            rc->high |= (uint16_t)(1u << r);
        return -1;
    }
    return rc->host[r];
}

/* Host register 'h' = guest register operand 'g' of size lg, zero-extended. */
void rd_greg(struct emit *e, unsigned h, unsigned g, unsigned lg)
{
    static const unsigned opc[4] = {0x0fb6, 0x0fb7, 0x8b, 0x8b};
    int c = cached_host(e, g, lg);
    if (c < 0)
        op_rm(e, lg == 3 ? 3 : 2, opc[lg], h, RDI, (int32_t)(lg == 0 ? g : g * 8));
    else if (lg >= 2)
        op_rr(e, lg, 0x89, (unsigned)c, h);
    else
        op_rr(e, 2, opc[lg], h, (unsigned)c); /* movzx from r8b..r11w: REX.B set */
}

/* Guest register operand 'g' = host register 'h' (zero-extended already
 * when lg is 2: a 32-bit write clears the upper half). */
void wr_greg(struct emit *e, unsigned g, unsigned h, unsigned lg)
{
    int c = cached_host(e, g, lg);
    if (c >= 0) {
        op_rr(e, lg, lg == 0 ? 0x88 : 0x89, h, (unsigned)c);
        e->rc->dirty |= (uint16_t)(1u << (lg == 0 ? g >> 3 : g));
    } else if (lg == 0) {
        op_rm(e, 0, 0x88, h, RDI, (int32_t)g);
    } else {
        op_rm(e, lg == 1 ? 1 : 3, 0x89, h, RDI, (int32_t)(g * 8));
    }
}

/* The cached registers loaded from c->r[] (a run's entry). */
void emit_cache_load(struct emit *e, const struct regcache *rc)
{
    for (unsigned r = 0; rc && r < 16; r++)
        if (rc->host[r] >= 0)
            op_rm(e, 3, 0x8b, (unsigned)rc->host[r], RDI, (int32_t)(r * 8));
}

/* ... and the changed ones stored back (before any exit from the run);
 * plain moves, so the host flags survive. */
void emit_cache_store(struct emit *e, const struct regcache *rc, uint16_t dirty)
{
    for (unsigned r = 0; rc && r < 16; r++)
        if (rc->host[r] >= 0 && (dirty >> r & 1))
            op_rm(e, 3, 0x89, (unsigned)rc->host[r], RDI, (int32_t)(r * 8));
}

/* Whether the run caches guest registers in callee-saved host registers
 * (a "dirty" run, see rc_slot_host): all five are saved where C enters
 * it and restored where it leaves for C, and none in between when one
 * dirty run chains into another. */
bool rc_dirty(const struct regcache *rc)
{
    for (unsigned r = 0; rc && !rc->counting && r < 16; r++)
        if (rc->host[r] >= 0 && rc_callee_saved((unsigned)rc->host[r]))
            return true;
    return false;
}

static const uint8_t callee_saved_regs[5] = {RBX, 12, 13, 14, 15};

/* The five saved into the vCPU (opcode 0x89) or restored from it (0x8b). */
static void emit_callee_moves(struct emit *e, unsigned opcode)
{
    for (unsigned k = 0; k < 5; k++)
        op_rm(e, 3, opcode, callee_saved_regs[k], RDI,
              CPU_OFF(jit_callee_saved) + (int32_t)(8 * rc_callee_index(callee_saved_regs[k])));
}

void emit_save_callee(struct emit *e)
{
    emit_callee_moves(e, 0x89);
}

void emit_restore_callee(struct emit *e)
{
    emit_callee_moves(e, 0x8b);
}

/* Host code's way to C ('how': jmp rax with rsi = the record, jmp [rsi],
 * or ret to the run loop), through the arena's stub that restores the
 * callee-saved registers first if this run changed them. */
void emit_to_c(struct emit *e, unsigned how)
{
    if (rc_dirty(e->rc)) {
        patch32(jmp32(e), e->to_c + how);
        return;
    }
    if (how == TO_C_RET) {
        e8(e, 0xc3);
        return;
    }
    e8(e, 0xff);
    e8(e, how == TO_C_JMP_RAX ? 0xe0 : 0x26); /* jmp rax / jmp [rsi] */
}

/* The stubs emit_to_c jumps to, at the arena's start (kept by jit_reset). */
void emit_to_c_stubs(uint8_t *at)
{
    static const uint8_t tail[3][2] = {{0xff, 0xe0}, {0xff, 0x26}, {0xc3, 0x90}};
    for (unsigned k = 0; k < 3; k++) {
        struct emit e = {.p = at + 48 * k, .end = at + 48 * (k + 1)};
        emit_restore_callee(&e);
        e8(&e, tail[k][0]);
        e8(&e, tail[k][1]);
    }
}

/* The address size and the segment base applied to rax. */
static void emit_ea_tail(struct emit *e, const struct insn *rec)
{
    if (rec->mf & MF_ADDR32)
        op_rr(e, 2, 0x89, RAX, RAX);
    int seg = insn_seg(rec);
    if (seg == SEG_FS || seg == SEG_GS) /* the other bases are 0 in 64-bit mode */
        op_rm(e, 3, 0x03, RAX, RDI, CPU_OFF(segbase) + seg * 8);
}

/* rax = the record's effective address, as ea() computes it: one LEA
 * from the base's and index's host registers (cached, or loaded into rax
 * and rcx) when the displacement fits. */
void emit_ea(struct emit *e, const struct insn *rec)
{
    if (rec->base != NOREG && fits_s32((uint64_t)rec->disp)) {
        int base = in_place(e, rec->base, 3), index = RSP; /* RSP: no index */
        if (base < 0)
            rd_greg(e, (unsigned)(base = RAX), rec->base, 3);
        if (rec->index != NOREG && (index = in_place(e, rec->index, 3)) < 0)
            rd_greg(e, (unsigned)(index = RCX), rec->index, 3);
        lea_sib(e, RAX, (unsigned)base, (unsigned)index, rec->mf & MF_SCALE,
                (int32_t)rec->disp);
        emit_ea_tail(e, rec);
        return;
    }
    bool disp_done = false;
    if (rec->base != NOREG) {
        rd_greg(e, RAX, rec->base, 3);
    } else {
        mov_imm(e, RAX, (uint64_t)rec->disp);
        disp_done = true;
    }
    if (rec->index != NOREG) {
        rd_greg(e, RCX, rec->index, 3);
        if (rec->mf & MF_SCALE)
            shift_ri(e, 4, RCX, rec->mf & MF_SCALE);
        op_rr(e, 3, 0x01, RCX, RAX);
    }
    if (!disp_done && rec->disp) {
        if (fits_s32((uint64_t)rec->disp)) {
            alu_ri(e, 3, 0, RAX, (int32_t)rec->disp);
        } else {
            mov_imm(e, RCX, (uint64_t)rec->disp);
            op_rr(e, 3, 0x01, RCX, RAX);
        }
    }
    emit_ea_tail(e, rec);
}


/* The TLB hit test for an access of 2^lg bytes at rax (ld##bits/st##bits):
 * rax becomes the host address. Clobbers rcx, rdx. Returns the jump to
 * patch towards the miss stub. */
uint8_t *emit_probe(struct emit *e, unsigned lg, bool write)
{
    return emit_probe_len(e, 1u << lg, write);
}

/* ... for 'len' bytes (at most a page) at rax, all in one page. */
uint8_t *emit_probe_len(struct emit *e, unsigned len, bool write)
{
    emit_tlb_entry(e, CPU_OFF(tlb));
    op_rm(e, 3, 0x8d, RDX, RAX, (int32_t)(len - 1));
    alu_ri(e, 3, 4, RDX, (int32_t)~TLBF_MASK);
    op_rm(e, 3, 0x3b, RDX, RCX,
          write ? (int32_t)offsetof(struct tlbe, tag_w) : (int32_t)offsetof(struct tlbe, tag_r));
    uint8_t *miss = jcc32(e, 0x5); /* jne */
    op_rm(e, 3, 0x03, RAX, RCX, (int32_t)offsetof(struct tlbe, addend));
    return miss;
}

/* Host register 'h' = the 2^lg bytes at [rax], zero-extended. */
static void emit_load(struct emit *e, unsigned h, unsigned lg)
{
    static const unsigned opc[4] = {0x0fb6, 0x0fb7, 0x8b, 0x8b};
    op_rm(e, lg == 3 ? 3 : 2, opc[lg], h, RAX, 0);
}

void emit_store(struct emit *e, unsigned h, unsigned lg)
{
    static const unsigned sz[4] = {0, 1, 2, 3};
    op_rm(e, sz[lg], lg == 0 ? 0x88 : 0x89, h, RAX, 0);
}

/* op r/m, r for ADD/OR/AND/SUB/XOR/CMP (the group-1 /op; CMP as SUB) */
static const unsigned alu_opc[8] = {0x01, 0x09, 0, 0, 0x21, 0x29, 0x31, 0x29};

/* The lazy flags of an ALU op from rax = a, rcx = b, rdx = the result. */
static void emit_alu_flags(struct emit *e, unsigned op, unsigned lg)
{
    bool arith = op == 0 || op == 5 || op == 7;
    unsigned kind = op == 0 ? CC_ADD : arith ? CC_SUB : CC_LOGIC;
    op_rm(e, 2, 0xc7, 0, RDI, CPU_OFF(cc_op));
    e32(e, kind << 2 | lg);
    op_rm(e, 3, 0x89, RDX, RDI, CPU_OFF(cc_res));
    if (arith) {
        op_rm(e, 3, 0x89, RAX, RDI, CPU_OFF(cc_a));
        op_rm(e, 3, 0x89, RCX, RDI, CPU_OFF(cc_b));
    } else {
        op_rm(e, 3, 0xc7, 0, RDI, CPU_OFF(cc_a));
        e32(e, 0);
        op_rm(e, 3, 0xc7, 0, RDI, CPU_OFF(cc_b));
        e32(e, 0);
    }
}

/* ADD/OR/AND/SUB/XOR/CMP (op as in the opcode map; 4 for TEST) on
 * a = rax, b = rcx (zero-extended): the result, lazy flags as alu_op()
 * leaves them unless the block overwrites them unread ('dead',
 * flags_dead_after), and the destination unless 'dest' < 0. */
static void emit_alu(struct emit *e, unsigned op, unsigned lg, int dest, bool dead)
{
    const unsigned *opc = alu_opc;
    bool arith = op == 0 || op == 5 || op == 7;
    op_rr(e, 3, 0x89, RAX, RDX);
    op_rr(e, 3, opc[op], RCX, RDX);
    if (arith && lg == 2)
        op_rr(e, 2, 0x89, RDX, RDX);
    else if (arith && lg == 1)
        op_rr(e, 2, 0x0fb7, RDX, RDX);
    else if (arith && lg == 0)
        op_rr(e, 2, 0x0fb6, RDX, RDX);
    if (dest >= 0)
        wr_greg(e, (unsigned)dest, RDX, lg);
    if (!dead)
        emit_alu_flags(e, op, lg);
}

/* rcx = the host's CF and OF (pushfq; pop rcx; and ecx, CF|OF) */
static void emit_host_cfof(struct emit *e)
{
    e8(e, 0x9c);
    e8(e, 0x59);
    alu_ri(e, 2, 4, RCX, F_CF | F_OF);
}

/* cc_set_cfof(c, rcx): CF/OF replaced, the other flags kept lazy. */
static void emit_set_cfof(struct emit *e)
{
    op_rm(e, 2, 0x8b, RAX, RDI, CPU_OFF(cc_op));
    op_rr(e, 2, 0x85, RAX, RAX);
    uint8_t *lazy = jcc32(e, 0x5);
    op_rm(e, 2, 0x81, 4, RDI, CPU_OFF(cc_aux)); /* eager: and, or into cc_aux */
    e32(e, ~(uint32_t)(F_CF | F_OF));
    op_rm(e, 2, 0x09, RCX, RDI, CPU_OFF(cc_aux));
    uint8_t *done = jmp32(e);
    patch32(lazy, e->p);
    op_rr(e, 2, 0xc1, 5, RAX); /* shr eax, 2: the kind */
    e8(e, 2);
    alu_ri(e, 2, 7, RAX, CC_CFOF);
    uint8_t *set = jcc32(e, 0x4);
    static const struct { int32_t from, to; unsigned sz; } save[] = {
        {CPU_OFF(cc_op), CPU_OFF(cc2_op), 2},   {CPU_OFF(cc_aux), CPU_OFF(cc2_aux), 2},
        {CPU_OFF(cc_res), CPU_OFF(cc2_res), 3}, {CPU_OFF(cc_a), CPU_OFF(cc2_a), 3},
        {CPU_OFF(cc_b), CPU_OFF(cc2_b), 3},
    };
    for (unsigned k = 0; k < sizeof(save) / sizeof(save[0]); k++) {
        op_rm(e, save[k].sz, 0x8b, RAX, RDI, save[k].from);
        op_rm(e, save[k].sz, 0x89, RAX, RDI, save[k].to);
    }
    op_rm(e, 2, 0xc7, 0, RDI, CPU_OFF(cc_op));
    e32(e, CC_CFOF << 2);
    patch32(set, e->p);
    op_rm(e, 3, 0x89, RCX, RDI, CPU_OFF(cc_res));
    patch32(done, e->p);
}

/* SHL/SHR/SAR/ROL/ROR of a register by an immediate (shift_translatable):
 * the result computed at the operand's size on a zero-extended copy, so it
 * stays zero-extended; flags as fast_shift leaves them. */
static void emit_shift(struct emit *e, const struct insn *rec, unsigned lg, bool dead)
{
    static const uint8_t ext[8] = {0, 1, 2, 3, 4, 5, 4, 7};
    unsigned op = rec->aux & 7, cnt = (unsigned)rec->imm & (lg == 3 ? 63 : 31);
    int dst = dead ? in_place(e, rec->reg, lg) : -1;
    if (dst >= 0) {
        op_rr(e, lg, 0xc1, ext[op], (unsigned)dst);
        e8(e, cnt);
        mark_dirty(e, rec->reg);
        return;
    }
    rd_greg(e, RAX, rec->reg, lg);
    op_rr(e, 3, 0x89, RAX, RDX);
    op_rr(e, lg, lg == 0 ? 0xc0 : 0xc1, ext[op], RDX);
    e8(e, cnt);
    if (op < 2 && !dead)
        emit_host_cfof(e);
    wr_greg(e, rec->reg, RDX, lg);
    if (dead)
        return;
    if (op < 2) {
        emit_set_cfof(e);
        return;
    }
    unsigned kind = op == 5 ? CC_SHR : op == 7 ? CC_SAR : CC_SHL;
    op_rm(e, 2, 0xc7, 0, RDI, CPU_OFF(cc_op));
    e32(e, kind << 2 | lg);
    op_rm(e, 3, 0x89, RDX, RDI, CPU_OFF(cc_res));
    op_rm(e, 3, 0x89, RAX, RDI, CPU_OFF(cc_a));
    op_rm(e, 3, 0xc7, 0, RDI, CPU_OFF(cc_b));
    e32(e, cnt);
}

/* IMUL r, r / r, r, imm: with host_imul_flags_from_result the host's
 * flags are the guest's, stored eagerly; with host_imul_keeps_other_flags
 * its CF/OF are merged into the guest's, as a rotate's. */
static void emit_imul(struct emit *e, const struct insn *rec, unsigned lg, bool imm, bool dead)
{
    if (imm) {
        rd_greg(e, RAX, rec->base, lg);
        mov_imm(e, RCX, rec->imm);
    } else {
        rd_greg(e, RAX, rec->reg, lg);
        rd_greg(e, RCX, rec->base, lg);
    }
    op_rr(e, lg, 0x0faf, RAX, RCX);
    if (dead || !host_imul_flags_from_result()) {
        if (!dead)
            emit_host_cfof(e);
        wr_greg(e, rec->reg, RAX, lg);
        if (!dead)
            emit_set_cfof(e);
        return;
    }
    e8(e, 0x9c); /* pushfq; pop rdx */
    e8(e, 0x5a);
    alu_ri(e, 2, 4, RDX, F_ARITH);
    wr_greg(e, rec->reg, RAX, lg);
    op_rm(e, 2, 0xc7, 0, RDI, CPU_OFF(cc_op));
    e32(e, CC_EAGER);
    op_rm(e, 2, 0x89, RDX, RDI, CPU_OFF(cc_aux));
}

/* Sign-extend host register 'h' from 2^slg bytes to 64 bits. */
static void emit_sext(struct emit *e, unsigned h, unsigned slg)
{
    static const unsigned opc[3] = {0x0fbe, 0x0fbf, 0x63};
    op_rr(e, 3, opc[slg], h, h);
}

/* PUSH/POP r64: RSP moves only after the probe hit, so a miss leaves
 * everything to the handler; PUSH RSP stores the old value, POP RSP keeps
 * the loaded one. */
static void emit_push_pop(struct emit *e, const struct insn *rec, bool push, uint8_t **miss)
{
    rd_greg(e, RAX, RSP, 3);
    if (push)
        alu_ri(e, 3, 5, RAX, 8);
    *miss = emit_probe(e, 3, push);
    if (push)
        rd_greg(e, RCX, rec->reg, 3);
    else
        op_rm(e, 3, 0x8b, RCX, RAX, 0);
    if (push)
        emit_store(e, RCX, 3);
    rd_greg(e, RDX, RSP, 3);
    alu_ri(e, 3, push ? 5 : 0, RDX, 8);
    wr_greg(e, RSP, RDX, 3);
    if (!push)
        wr_greg(e, rec->reg, RCX, 3);
}

/* 'n' PUSHes of registers, immediates and at most one memory operand (or
 * POPs of registers) in a row, from 'rec', none of RSP (stack_group): one
 * probe covers all their stack slots, so a function's prologue or the
 * kernel's register frame costs one TLB lookup. The memory operand is
 * loaded first (into rsi; its address does not depend on RSP). A miss of
 * either probe (the slots in two pages, or any other) leaves them all to
 * the first one's handler, which finds nothing written yet; the records
 * after it in the group run their handlers too. */
void emit_stack_group(struct emit *e, const struct insn *rec, unsigned n, bool push,
                      uint8_t *miss[2])
{
    int32_t span = (int32_t)(8 * n);
    for (unsigned k = 0; push && k < n; k++)
        if (form_of(&rec[k])->kind == K_PUSH_M) {
            emit_mem_load(e, &rec[k], RSI, 3, &miss[1]);
            break;
        }
    rd_greg(e, RAX, RSP, 3);
    if (push)
        alu_ri(e, 3, 5, RAX, span);
    miss[0] = emit_probe_len(e, (unsigned)span, push);
    for (unsigned k = 0; k < n; k++) {
        const struct insn *r = &rec[k];
        int32_t at = push ? span - 8 * (int32_t)(k + 1) : 8 * (int32_t)k;
        int h = in_place(e, r->reg, 3);
        if (!push && h >= 0) {
            op_rm(e, 3, 0x8b, (unsigned)h, RAX, at);
            mark_dirty(e, r->reg);
        } else if (!push) {
            op_rm(e, 3, 0x8b, RCX, RAX, at);
            wr_greg(e, r->reg, RCX, 3);
        } else if (form_of(r)->kind == K_PUSH_M) {
            op_rm(e, 3, 0x89, RSI, RAX, at);
        } else if (form_of(r)->kind == K_PUSH_I && fits_s32(r->imm)) {
            op_rm(e, 3, 0xc7, 0, RAX, at);
            e32(e, (uint32_t)r->imm);
        } else {
            if (form_of(r)->kind == K_PUSH_I)
                mov_imm(e, (unsigned)(h = RCX), r->imm);
            else if (h < 0)
                rd_greg(e, (unsigned)(h = RCX), r->reg, 3);
            op_rm(e, 3, 0x89, (unsigned)h, RAX, at);
        }
    }
    int hs = in_place(e, RSP, 3);
    if (hs >= 0) {
        alu_ri(e, 3, push ? 5 : 0, (unsigned)hs, span);
        mark_dirty(e, RSP);
        return;
    }
    rd_greg(e, RDX, RSP, 3);
    alu_ri(e, 3, push ? 5 : 0, RDX, span);
    wr_greg(e, RSP, RDX, 3);
}

/* A memory operand's probe and load into 'h'. */
void emit_mem_load(struct emit *e, const struct insn *rec, unsigned h, unsigned lg,
                          uint8_t **miss)
{
    emit_ea(e, rec);
    *miss = emit_probe(e, lg, false);
    emit_load(e, h, lg);
}

/* ADD/OR/AND/SUB/XOR into the cached register 'dst': the op itself on
 * it; unless the flags are dead, rax/rcx/rdx = a, b and the result
 * (emit_alu's convention, which a fused branch reads) and the lazy flags. */
static void emit_alu_in_place(struct emit *e, const struct insn *rec, const struct jform *f,
                              unsigned dst, bool dead, uint8_t **miss)
{
    const unsigned *opc = alu_opc;
    unsigned lg = f->lg, src = RCX;
    bool imm = false;
    if (f->kind == K_ALU_RM) {
        emit_mem_load(e, rec, RCX, lg, miss);
    } else if (f->kind == K_ALU_RR) {
        int c = in_place(e, rec->base, lg);
        if (c >= 0)
            src = (unsigned)c;
        else
            rd_greg(e, RCX, rec->base, lg);
    } else if (dead && (lg == 2 || fits_s32(rec->imm))) {
        imm = true;
    } else {
        mov_imm(e, RCX, rec->imm);
    }
    if (!dead) {
        op_rr(e, lg, 0x89, dst, RAX);
        if (src != RCX)
            op_rr(e, lg, 0x89, src, RCX);
    }
    if (imm)
        alu_ri(e, lg, f->op, dst, (int32_t)rec->imm);
    else
        op_rr(e, lg, opc[f->op], src, dst);
    mark_dirty(e, rec->reg);
    if (dead)
        return;
    op_rr(e, lg, 0x89, dst, RDX);
    emit_alu_flags(e, f->op, lg);
}

/* ADD/OR/AND/SUB/XOR/CMP/TEST of a register with a register, an immediate
 * or (ALU_RM) memory. */
static void emit_alu_form(struct emit *e, const struct insn *rec, const struct jform *f,
                          bool dead, uint8_t **miss)
{
    unsigned lg = f->lg;
    bool no_dest = f->op == 7 || f->kind == K_TEST_RR || f->kind == K_TEST_RI;
    int dst = no_dest ? -1 : in_place(e, rec->reg, lg);
    if (dst >= 0) {
        emit_alu_in_place(e, rec, f, (unsigned)dst, dead, miss);
        return;
    }
    if (f->kind == K_ALU_RM)
        emit_mem_load(e, rec, RCX, lg, miss);
    rd_greg(e, RAX, rec->reg, lg);
    if (f->kind == K_ALU_RR || f->kind == K_TEST_RR)
        rd_greg(e, RCX, rec->base, lg);
    else if (f->kind != K_ALU_RM)
        mov_imm(e, RCX, rec->imm);
    emit_alu(e, f->op, lg, no_dest ? -1 : rec->reg, dead);
}

/* The lazy flags a deferred producer (flags_deferred: a register-only
 * ALU or TEST form at 32 or 64 bits) left unstored, recomputed from the
 * registers it read, which still hold their values: CMP and TEST from
 * their operands; ADD and SUB take a back out of the result in the
 * destination; the logic ops' flags are their result's. The same fields
 * its own code would have stored. Clobbers rax, rcx, rdx. */
void emit_flags_of(struct emit *e, const struct insn *rec, const struct jform *f)
{
    unsigned lg = f->lg, op = f->op;
    bool alu = f->kind == K_ALU_RR || f->kind == K_ALU_RI;
    if (f->kind == K_ALU_RR || f->kind == K_TEST_RR)
        rd_greg(e, RCX, rec->base, lg);
    else
        mov_imm(e, RCX, rec->imm);
    rd_greg(e, RAX, rec->reg, lg);
    if (alu && (op == 0 || op == 5)) {
        op_rr(e, 3, op == 0 ? 0x29 : 0x01, RCX, RAX); /* a = result -/+ b */
        if (lg == 2)
            op_rr(e, 2, 0x89, RAX, RAX);
    } else if (alu && op != 7) {
        op_rr(e, 3, 0x89, RAX, RCX); /* result & result */
        op = 4;
    }
    emit_alu(e, op, lg, -1, false);
}

/* ADD/OR/AND/SUB/XOR [mem], reg/imm: the write probe first (as rmw_ptr:
 * a page writable from here), then load, operate and store through the
 * host address, so a miss leaves everything to the interpreter's handler. */
static void emit_alu_rmw(struct emit *e, const struct insn *rec, const struct jform *f,
                         bool dead, uint8_t **miss)
{
    unsigned lg = f->lg;
    emit_ea(e, rec);
    *miss = emit_probe(e, lg, true);
    op_rr(e, 3, 0x89, RAX, RSI);
    emit_load(e, RAX, lg);
    if (f->kind == K_ALU_MR)
        rd_greg(e, RCX, rec->reg, lg);
    else
        mov_imm(e, RCX, rec->imm);
    emit_alu(e, f->op, lg, -1, dead);
    op_rm(e, lg, lg == 0 ? 0x88 : 0x89, RDX, RSI, 0);
}

/* Host code for one record; *miss gets the jump to the miss stub, if any. */
void emit_insn(struct emit *e, const struct insn *rec, const struct jform *f,
                      bool dead, const struct jform *w, uint8_t **miss)
{
    unsigned lg = f->lg;
    int h; /* the destination's host register, when in_place */
    switch (f->kind) {
    case K_SETCC:
    case K_CMOV:
        emit_cond_reader(e, rec, f, w);
        break;
    case K_INCDEC:
        emit_incdec(e, rec, f, w, dead);
        break;
    case K_ALU_MR:
    case K_ALU_MI:
        emit_alu_rmw(e, rec, f, dead, miss);
        break;
    case K_NOP: /* (its record still gets an entry: a run may be joined there) */
        break;
    case K_NOT: /* at 32 bits on the dword, which zero-extends */
        if ((h = in_place(e, rec->reg, lg)) >= 0) {
            op_rr(e, lg, 0xf7, 2, (unsigned)h);
            mark_dirty(e, rec->reg);
            break;
        }
        rd_greg(e, RAX, rec->reg, lg);
        op_rr(e, lg == 2 ? 2 : 3, 0xf7, 2, RAX);
        wr_greg(e, rec->reg, RAX, lg);
        break;
    case K_NEG: /* 0 - a, flags as a SUB's */
        op_rr(e, 2, 0x31, RAX, RAX);
        rd_greg(e, RCX, rec->reg, lg);
        emit_alu(e, 5, lg, rec->reg, dead);
        break;
    case K_ALU_RR:
    case K_ALU_RI:
    case K_ALU_RM:
        if (is_carry_op(f)) {
            emit_carry_op(e, rec, f, w, dead, miss);
            break;
        }
        emit_alu_form(e, rec, f, dead, miss);
        break;
    case K_MOV_RR: /* into a cached register: rd_greg loads it directly */
        if ((h = in_place(e, rec->reg, lg)) >= 0) {
            rd_greg(e, (unsigned)h, rec->base, lg);
            mark_dirty(e, rec->reg);
            break;
        }
        rd_greg(e, RAX, rec->base, lg);
        wr_greg(e, rec->reg, RAX, lg);
        break;
    case K_MOV_RI:
        mov_imm(e, RAX, rec->imm);
        wr_greg(e, rec->reg, RAX, lg);
        break;
    case K_MOV_RM: /* (the address is computed before the load changes anything) */
        if ((h = in_place(e, rec->reg, lg)) >= 0) {
            emit_mem_load(e, rec, (unsigned)h, lg, miss);
            mark_dirty(e, rec->reg);
            break;
        }
        emit_mem_load(e, rec, RCX, lg, miss);
        wr_greg(e, rec->reg, RCX, lg);
        break;
    case K_MOV_MR:
    case K_MOV_MI:
        emit_ea(e, rec);
        *miss = emit_probe(e, lg, true);
        if (f->kind == K_MOV_MR)
            rd_greg(e, RCX, rec->reg, lg);
        else
            mov_imm(e, RCX, rec->imm);
        emit_store(e, RCX, lg);
        break;
    case K_TEST_RR:
    case K_TEST_RI:
        emit_alu_form(e, rec, f, dead, miss);
        break;
    case K_CMP_MR:
    case K_TEST_MR:
    case K_CMP_MI:
    case K_TEST_MI:
        emit_mem_load(e, rec, RAX, lg, miss);
        if (f->kind == K_CMP_MR || f->kind == K_TEST_MR)
            rd_greg(e, RCX, rec->reg, lg);
        else
            mov_imm(e, RCX, rec->imm);
        emit_alu(e, f->op, lg, -1, dead);
        break;
    case K_LEA:
        emit_ea(e, rec);
        if (lg == 2)
            op_rr(e, 2, 0x89, RAX, RAX);
        wr_greg(e, rec->reg, RAX, lg);
        break;
    case K_PUSH:
    case K_POP: /* of RSP (others: emit_stack_group) */
        emit_push_pop(e, rec, f->kind == K_PUSH, miss);
        break;
    case K_PUSH_I: /* (stack_group takes these: a group of one) */
    case K_PUSH_M:
        emit_stack_group(e, rec, 1, true, miss);
        break;
    case K_EXT_R: /* into a cached register directly */
    case K_EXT_M: {
        h = in_place(e, rec->reg, lg);
        unsigned t = h >= 0 ? (unsigned)h : RCX;
        if (f->kind == K_EXT_M)
            emit_mem_load(e, rec, t, f->slg, miss);
        else
            rd_greg(e, t, rec->base, f->slg);
        if (f->sx)
            emit_sext(e, t, f->slg);
        if (lg == 2 && f->sx) /* (the zero-extending loads left it clear) */
            op_rr(e, 2, 0x89, t, t);
        if (h >= 0)
            mark_dirty(e, rec->reg);
        else
            wr_greg(e, rec->reg, RCX, lg);
        break;
    }
    case K_SHIFT_RI:
        emit_shift(e, rec, lg, dead);
        break;
    case K_IMUL_RR:
    case K_IMUL_RI:
        emit_imul(e, rec, lg, f->kind == K_IMUL_RI, dead);
        break;
    default:
        break;
    }
}

/* --- the arena and the block pass ----------------------------------------------- */
/* EMBER_JIT: 1 for on|1, 0 for off|0, -1 unset or anything else */
static int env_jit(void)
{
    const char *v = getenv("EMBER_JIT");
    if (v && (!strcmp(v, "1") || !strcmp(v, "on")))
        return 1;
    if (v && (!strcmp(v, "0") || !strcmp(v, "off")))
        return 0;
    return -1;
}

static bool jit_wanted(const struct cpu *c)
{
    if (c->flags & CPU_CFG_JIT)
        return true;
    if (c->flags & CPU_CFG_NO_JIT)
        return false;
    int env = env_jit();
    return env >= 0 ? env == 1 : JIT_DEFAULT;
}

/* Memory for host code in two views of the same pages, one writable and
 * one executable, so that no page is both. Shared anonymous memory, the
 * second view by mremap: perf takes such a mapping ("/dev/zero") for
 * anonymous code and names it from the perf map (EMBER_PERF_MAP), which it
 * does not for a memfd's. */
int code_arena_map(size_t size, uint8_t **rw_out, uint8_t **rx_out)
{
    void *rw = mmap(NULL, size, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (rw == MAP_FAILED)
        return -1;
    void *rx = mremap(rw, 0, size, MREMAP_MAYMOVE);
    if (rx == MAP_FAILED || mprotect(rx, size, PROT_READ | PROT_EXEC) != 0) {
        if (rx != MAP_FAILED)
            munmap(rx, size);
        munmap(rw, size);
        return -1;
    }
    *rw_out = rw;
    *rx_out = rx;
    return 0;
}

/* Translating a block costs about as much as running it interpreted a few
 * dozen times, and most blocks of a boot or of a short-lived process run
 * only a few times (a Debian boot wrote 1 GB of host code, filling the
 * arena eight times, for a 7% gain over the interpreter alone). So a block
 * is translated on its JIT_HOT_RUNS-th entry. EMBER_JIT_HOT=N (1-65535)
 * or cpu_config.jit_hot sets the count; an explicit CPU_CFG_JIT or
 * EMBER_JIT=on (the tests) without either translates at once, so that each
 * case runs as host code. */
#define JIT_HOT_RUNS 32
static uint16_t jit_hot_runs(const struct cpu *c)
{
    const char *v = getenv("EMBER_JIT_HOT");
    long n = v ? strtol(v, NULL, 10) : 0;
    if (n >= 1 && n <= 65535)
        return (uint16_t)n;
    if (c->jit_hot)
        return c->jit_hot;
    if ((c->flags & CPU_CFG_JIT) || env_jit() == 1)
        return 1;
    return JIT_HOT_RUNS;
}

int jit_init(struct cpu *c)
{
    c->jit_rw = c->jit_rx = NULL;
    if (!jit_wanted(c))
        return 0;
    jit_forms_init();
    uint8_t *rw, *rx;
    if (code_arena_map(JIT_ARENA, &rw, &rx))
        return 0; /* no translator: the interpreter alone */
    c->jit_rw = rw;
    c->jit_rx = rx;
    const char *count = getenv("EMBER_JIT_COUNT");
    c->jit_count = count && !strcmp(count, "1");
    c->jit_hot = jit_hot_runs(c);
    c->jit_size = JIT_ARENA;
    emit_to_c_stubs(c->jit_rw);
    jit_reset(c);
    return 0;
}

void jit_free(struct cpu *c)
{
    if (c->jit_rw) {
        munmap(c->jit_rw, c->jit_size);
        munmap(c->jit_rx, c->jit_size);
    }
    c->jit_rw = c->jit_rx = NULL;
}

bool jit_full(const struct cpu *c)
{
    return c->jit_rw && c->jit_used + JIT_BLOCK_MAX > c->jit_size;
}

void jit_reset(struct cpu *c)
{
    c->jit_used = TO_C_STUBS_SIZE; /* the stubs stay */
}
