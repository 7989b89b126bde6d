/* The translator: when a block is built, each run of records whose
 * instruction it knows (moves, ADD/OR/AND/SUB/XOR/CMP/TEST, LEA, MOVZX/
 * MOVSX, PUSH/POP of a 64-bit register, shifts and rotates by an
 * immediate, IMUL r,r(,imm), fused compare-and-branch pairs) becomes host
 * code, and those records' handlers point into it; a run that ends the
 * block with a direct transfer in the page goes on into the next block
 * (jit_chain.c). Everything else keeps its interpreter
 * handler, so a block mixes both freely: host code is entered like any
 * handler (rdi = the vCPU, rsi = the record) and leaves a run by jumping
 * to the next record's handler. Guest state stays where the interpreter
 * keeps it (registers in c->r[], the lazy-flag fields exactly as the
 * handlers set them), so exceptions, interrupts at block ends and flag
 * materialisation are unchanged. Memory operands probe the soft TLB
 * inline; a miss (or MMIO, a code page, a watched page, a page-crossing
 * access) jumps to the record's interpreter handler, which redoes the
 * instruction from the start with its slow paths — nothing guest-visible
 * happened before the probe — and goes on with the next record's handler.
 *
 * Code lives in a per-vCPU arena mapped twice from one memfd: written
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

#define JIT_ARENA (64u << 20)
#define JIT_INSN_MAX 256 /* bytes of host code one record can take, stub included */
#define JIT_BLOCK_MAX ((BLOCK_MAX_INSNS + 1) * JIT_INSN_MAX)

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

/* Host register 'h' = guest register operand 'g' of size lg, zero-extended
 * (g is a byte offset into r[] for byte operands, as in the records). */
void rd_greg(struct emit *e, unsigned h, unsigned g, unsigned lg)
{
    static const unsigned opc[4] = {0x0fb6, 0x0fb7, 0x8b, 0x8b};
    op_rm(e, lg == 3 ? 3 : 2, opc[lg], h, RDI, (int32_t)(lg == 0 ? g : g * 8));
}

/* Guest register operand 'g' = host register 'h' (zero-extended already
 * when lg is 2: a 32-bit write clears the upper half). */
void wr_greg(struct emit *e, unsigned g, unsigned h, unsigned lg)
{
    if (lg == 0)
        op_rm(e, 0, 0x88, h, RDI, (int32_t)g);
    else
        op_rm(e, lg == 1 ? 1 : 3, 0x89, h, RDI, (int32_t)(g * 8));
}

/* rax = the record's effective address, as ea() computes it. */
static void emit_ea(struct emit *e, const struct insn *rec)
{
    bool disp_done = false;
    if (rec->base != NOREG) {
        op_rm(e, 3, 0x8b, RAX, RDI, rec->base * 8);
    } else {
        mov_imm(e, RAX, (uint64_t)rec->disp);
        disp_done = true;
    }
    if (rec->index != NOREG) {
        op_rm(e, 3, 0x8b, RCX, RDI, rec->index * 8);
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
    if (rec->mf & MF_ADDR32)
        op_rr(e, 2, 0x89, RAX, RAX);
    int seg = insn_seg(rec);
    if (seg == SEG_FS || seg == SEG_GS) /* the other bases are 0 in 64-bit mode */
        op_rm(e, 3, 0x03, RAX, RDI, CPU_OFF(segbase) + seg * 8);
}

/* The TLB hit test for an access of 2^lg bytes at rax (ld##bits/st##bits):
 * rax becomes the host address. Clobbers rcx, rdx. Returns the jump to
 * patch towards the miss stub. */
static uint8_t *emit_probe(struct emit *e, unsigned lg, bool write)
{
    emit_tlb_entry(e);
    op_rm(e, 3, 0x8d, RDX, RAX, (int32_t)((1u << lg) - 1));
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

static void emit_store(struct emit *e, unsigned h, unsigned lg)
{
    static const unsigned sz[4] = {0, 1, 2, 3};
    op_rm(e, sz[lg], lg == 0 ? 0x88 : 0x89, h, RAX, 0);
}

/* ADD/OR/AND/SUB/XOR/CMP (op as in the opcode map; 4 for TEST) on
 * a = rax, b = rcx (zero-extended): the result, lazy flags as alu_op()
 * leaves them unless the block overwrites them unread ('dead',
 * flags_dead_after), and the destination unless 'dest' < 0. */
static void emit_alu(struct emit *e, unsigned op, unsigned lg, int dest, bool dead)
{
    static const unsigned opc[8] = {0x01, 0x09, 0, 0, 0x21, 0x29, 0x31, 0x29};
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
    if (dead)
        return;
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

static void emit_push_pop(struct emit *e, const struct insn *rec, bool push, uint8_t **miss)
{
    if (push)
        op_rm(e, 3, 0x8b, R8, RDI, rec->reg * 8); /* the old value (push rsp) */
    op_rm(e, 3, 0x8b, RAX, RDI, 4 * 8);
    if (push)
        alu_ri(e, 3, 5, RAX, 8);
    op_rr(e, 3, 0x89, RAX, R9);
    *miss = emit_probe(e, 3, push);
    if (push) {
        emit_store(e, R8, 3);
        op_rm(e, 3, 0x89, R9, RDI, 4 * 8);
    } else {
        op_rm(e, 3, 0x8b, R8, RAX, 0);
        alu_ri(e, 3, 0, R9, 8);
        op_rm(e, 3, 0x89, R9, RDI, 4 * 8);
        op_rm(e, 3, 0x89, R8, RDI, rec->reg * 8); /* pop rsp: the loaded value wins */
    }
}

/* A memory operand's probe and load into 'h'. */
void emit_mem_load(struct emit *e, const struct insn *rec, unsigned h, unsigned lg,
                          uint8_t **miss)
{
    emit_ea(e, rec);
    *miss = emit_probe(e, lg, false);
    emit_load(e, h, lg);
}

/* ADD/OR/AND/SUB/XOR/CMP/TEST of a register with a register, an immediate
 * or (ALU_RM) memory. */
static void emit_alu_form(struct emit *e, const struct insn *rec, const struct jform *f,
                          bool dead, uint8_t **miss)
{
    unsigned lg = f->lg;
    bool no_dest = f->op == 7 || f->kind == K_TEST_RR || f->kind == K_TEST_RI;
    if (f->kind == K_ALU_RM)
        emit_mem_load(e, rec, RCX, lg, miss);
    rd_greg(e, RAX, rec->reg, lg);
    if (f->kind == K_ALU_RR || f->kind == K_TEST_RR)
        rd_greg(e, RCX, rec->base, lg);
    else if (f->kind != K_ALU_RM)
        mov_imm(e, RCX, rec->imm);
    emit_alu(e, f->op, lg, no_dest ? -1 : rec->reg, dead);
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
    op_rr(e, 3, 0x89, RAX, R8);
    emit_load(e, RAX, lg);
    if (f->kind == K_ALU_MR)
        rd_greg(e, RCX, rec->reg, lg);
    else
        mov_imm(e, RCX, rec->imm);
    emit_alu(e, f->op, lg, -1, dead);
    op_rm(e, lg, lg == 0 ? 0x88 : 0x89, RDX, R8, 0);
}

/* Host code for one record; *miss gets the jump to the miss stub, if any. */
static void emit_insn(struct emit *e, const struct insn *rec, const struct jform *f,
                      bool dead, const struct jform *w, uint8_t **miss)
{
    unsigned lg = f->lg;
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
    case K_MOV_RR:
        rd_greg(e, RAX, rec->base, lg);
        wr_greg(e, rec->reg, RAX, lg);
        break;
    case K_MOV_RI:
        mov_imm(e, RAX, rec->imm);
        wr_greg(e, rec->reg, RAX, lg);
        break;
    case K_MOV_RM:
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
    case K_POP:
        emit_push_pop(e, rec, f->kind == K_PUSH, miss);
        break;
    case K_EXT_R:
    case K_EXT_M:
        if (f->kind == K_EXT_M)
            emit_mem_load(e, rec, RCX, f->slg, miss);
        else
            rd_greg(e, RCX, rec->base, f->slg);
        if (f->sx)
            emit_sext(e, RCX, f->slg);
        if (lg == 2)
            op_rr(e, 2, 0x89, RCX, RCX);
        wr_greg(e, rec->reg, RCX, lg);
        break;
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

/* Leave host code for record 'rec': its handler (host code, an
 * interpreter handler, or h_exit_stale after a store into this block). */
static void emit_goto_record(struct emit *e, const struct insn *rec)
{
    mov_imm(e, RSI, (uint64_t)(uintptr_t)rec);
    e8(e, 0xff); /* jmp [rsi] */
    e8(e, 0x26);
}

/* --- the arena and the block pass ----------------------------------------------- */
static bool jit_wanted(const struct cpu *c)
{
    if (c->flags & CPU_CFG_JIT)
        return true;
    if (c->flags & CPU_CFG_NO_JIT)
        return false;
    const char *v = getenv("EMBER_JIT");
    if (v && (!strcmp(v, "1") || !strcmp(v, "on")))
        return true;
    if (v && (!strcmp(v, "0") || !strcmp(v, "off")))
        return false;
    return JIT_DEFAULT;
}

int jit_init(struct cpu *c)
{
    c->jit_rw = c->jit_rx = NULL;
    if (!jit_wanted(c))
        return 0;
    jit_forms_init();
    int fd = memfd_create("ember-jit", MFD_CLOEXEC);
    if (fd < 0)
        return 0; /* no translator: the interpreter alone */
    void *rw = MAP_FAILED, *rx = MAP_FAILED;
    if (ftruncate(fd, JIT_ARENA) == 0) {
        rw = mmap(NULL, JIT_ARENA, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
        rx = mmap(NULL, JIT_ARENA, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_NORESERVE, fd, 0);
    }
    close(fd);
    if (rw == MAP_FAILED || rx == MAP_FAILED) {
        if (rw != MAP_FAILED)
            munmap(rw, JIT_ARENA);
        if (rx != MAP_FAILED)
            munmap(rx, JIT_ARENA);
        return 0;
    }
    c->jit_rw = rw;
    c->jit_rx = rx;
    const char *count = getenv("EMBER_JIT_COUNT");
    c->jit_count = count && !strcmp(count, "1");
    c->jit_size = JIT_ARENA;
    c->jit_used = 0;
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

/* --- leaving a block for the next one (emit_chain, jit_chain.c) -------------------
 * Chain slots only for targets in the block's own page, as the interpreter
 * links them; a target in another page is found through the jump cache. */
static bool chainable(const struct block *b, uint64_t t)
{
    return canonical(t) && b->pa2 == ~0ull;
}

static struct block **in_page(const struct block *b, uint64_t t, struct block **slot)
{
    return (t ^ b->va) & ~0xfffull ? NULL : slot;
}

/* The transfers a run can end with in host code: a direct JMP or CALL
 * (a CALL's push probes the TLB first; a miss runs the
 * interpreter's handler from the start). */
static bool is_indirect(const struct insn *rec)
{
    return (rec->fn == h_jmp_r || rec->fn == h_jmp_m || rec->fn == h_call_r ||
            rec->fn == h_call_m) && !rec->aux; /* aux: a 16-bit target */
}

static bool is_transfer(const struct block *b, const struct insn *rec)
{
    if (rec->mf & MF_FUSED)
        return false;
    if (rec->fn == h_ret || is_indirect(rec)) /* to a run-time target: the jump cache */
        return true;
    return (rec->fn == h_jmp || rec->fn == h_call) && chainable(b, rec->imm);
}

/* Jump out unless register 'r' holds a canonical address (bits 63..47 all
 * equal); returns the jump to patch. Clobbers rcx. */
static uint8_t *emit_canonical_check(struct emit *e, unsigned r)
{
    mov_imm(e, RCX, 1ull << 47);
    op_rr(e, 3, 0x01, r, RCX);
    shift_ri(e, 5, RCX, 48);
    return jcc32(e, 0x5);
}

/* CALL's push: rsp - 8 probed for writing (rax = its host address, r9 =
 * the new rsp); *miss gets the probe's jump. Nothing is written yet. */
static void emit_push_probe(struct emit *e, uint8_t **miss)
{
    op_rm(e, 3, 0x8b, RAX, RDI, 4 * 8);
    alu_ri(e, 3, 5, RAX, 8);
    op_rr(e, 3, 0x89, RAX, R9);
    *miss = emit_probe(e, 3, true);
}

/* ... then the return address written there and RSP moved. */
static void emit_push_return(struct emit *e, const struct block *b, const struct insn *rec)
{
    mov_imm(e, RCX, b->va + rec->off + rec->len);
    emit_store(e, RCX, 3);
    op_rm(e, 3, 0x89, R9, RDI, 4 * 8);
}

/* RET (imm16): as the interpreter's handler, the target loaded through the
 * TLB probe and checked canonical before RSP moves, so a miss or a #GP
 * runs that handler from the start. */
static void emit_ret(struct emit *e, const struct insn *rec, unsigned idx, uint8_t **miss)
{
    op_rm(e, 3, 0x8b, RAX, RDI, 4 * 8);
    op_rr(e, 3, 0x89, RAX, R9);
    miss[0] = emit_probe(e, 3, false);
    op_rm(e, 3, 0x8b, RAX, RAX, 0);
    miss[1] = emit_canonical_check(e, RAX);
    alu_ri(e, 3, 0, R9, (int32_t)(8 + rec->imm));
    op_rm(e, 3, 0x89, R9, RDI, 4 * 8);
    emit_chain_rax(e, idx, NULL);
}

/* JMP/CALL r/m64: the target (a load probes the TLB), for a CALL the
 * push's probe, then the canonical check — each failing to the handler,
 * which redoes it all with the interpreter's order of faults — and only
 * then RSP and the return address change. */
static void emit_indirect(struct emit *e, const struct block *b, unsigned idx, uint8_t **miss)
{
    const struct insn *rec = &b->insns[idx];
    bool call = rec->fn == h_call_r || rec->fn == h_call_m;
    if (rec->fn == h_jmp_r || rec->fn == h_call_r) {
        op_rm(e, 3, 0x8b, R10, RDI, rec->base * 8);
    } else {
        emit_ea(e, rec);
        miss[0] = emit_probe(e, 3, false);
        op_rm(e, 3, 0x8b, R10, RAX, 0);
    }
    if (call)
        emit_push_probe(e, &miss[1]);
    miss[2] = emit_canonical_check(e, R10);
    if (call)
        emit_push_return(e, b, rec);
    op_rr(e, 3, 0x89, R10, RAX);
    emit_chain_rax(e, idx, NULL);
}

/* A transfer ending the block; miss[0..2] get the jumps to its handler. */
static void emit_transfer(struct emit *e, struct block *b, unsigned idx, uint8_t **miss)
{
    const struct insn *rec = &b->insns[idx];
    if (rec->fn == h_ret) {
        emit_ret(e, rec, idx, miss);
        return;
    }
    if (is_indirect(rec)) {
        emit_indirect(e, b, idx, miss);
        return;
    }
    if (rec->fn == h_call) {
        emit_push_probe(e, &miss[0]);
        emit_push_return(e, b, rec);
    }
    emit_chain(e, idx, rec->imm, in_page(b, rec->imm, &b->chain[0]));
}

/* A fused compare-and-branch ending the block (its Jcc at 'jidx'): the
 * host flags decide; each way chains when it can, or else runs the Jcc's
 * handler, which decides again from the lazy flags and chains as ever. */
static void emit_fused_end(struct emit *e, struct block *b, unsigned jidx, const struct jform *ff,
                           unsigned cond)
{
    struct insn *jrec = &b->insns[jidx];
    uint64_t taken = jrec->imm, fall = b->va + jrec->off + jrec->len;
    emit_branch_flags(e, ff);
    uint8_t *to_taken = jcc32(e, cond);
    if (chainable(b, fall))
        emit_chain(e, jidx, fall, in_page(b, fall, &b->chain[1]));
    else
        emit_goto_record(e, jrec);
    patch32(to_taken, e->p);
    if (chainable(b, taken))
        emit_chain(e, jidx, taken, in_page(b, taken, &jrec->link));
    else
        emit_goto_record(e, jrec);
}

void jit_block(struct cpu *c, struct block *b)
{
    b->fn0 = NULL;
    if (!c->jit_rw || jit_full(c))
        return;
    struct emit e = {c->jit_rw + c->jit_used, c->jit_rw + c->jit_size, c->jit_rx - c->jit_rw};
    uint8_t *entry[BLOCK_MAX_INSNS] = {0};
    /* out-of-line exits: a TLB miss to the record's interpreter handler, a
     * taken branch in the middle of the block to the next block (or the
     * Jcc record's handler) */
    struct { uint8_t *at; unsigned j; bool miss; } stubs[2 * BLOCK_MAX_INSNS + 2];
    unsigned n = b->ninsn, nstub = 0, ntr = 0;
    bool dead[BLOCK_MAX_INSNS];
    flags_dead_after(b, dead);
    for (unsigned j = 0; j < n;) {
        unsigned cond = 0;
        const struct jform *w = NULL; /* flags_writer, for condition readers */
        const struct jform *f = usable(form_of(&b->insns[j]), w);
        const struct jform *ff = f ? NULL : fused_form(&b->insns[j], &cond);
        bool xfer = !f && !ff && is_transfer(b, &b->insns[j]);
        if (!f && !ff && !xfer) {
            j++;
            continue;
        }
        bool ended = false; /* the run left the block in host code */
        for (;;) { /* a run of known records */
            uint8_t *miss[3] = {NULL, NULL, NULL};
            entry[j] = e.p;
            if (c->jit_count) { /* add qword [rdi + jit_executed], 1 or 2 (fused) */
                op_rm(&e, 3, 0x83, 0, RDI, CPU_OFF(stats.jit_executed));
                e8(&e, ff ? 2 : 1);
            }
            if (xfer)
                emit_transfer(&e, b, j, miss);
            else
                emit_insn(&e, &b->insns[j], f ? f : ff, f && dead[j], w, &miss[0]);
            w = xfer ? NULL : flags_writer(f ? f : ff, w);
            for (unsigned k = 0; k < 3; k++)
                if (miss[k]) {
                    stubs[nstub].at = miss[k];
                    stubs[nstub].miss = true;
                    stubs[nstub++].j = j;
                }
            ntr++;
            if (xfer) { /* the block's end, left in host code */
                j = n;
                ended = true;
                break;
            }
            if (ff && j + 2 >= n) { /* the block's last Jcc */
                emit_fused_end(&e, b, j + 1, ff, cond);
                j = n;
                ended = true;
                break;
            }
            if (ff) { /* not taken: on in host code; taken: out of line */
                emit_branch_flags(&e, ff);
                stubs[nstub].at = jcc32(&e, cond);
                stubs[nstub].miss = false;
                stubs[nstub++].j = j + 1;
                j++;
            }
            j++;
            if (j >= n)
                break;
            f = usable(form_of(&b->insns[j]), w);
            ff = f ? NULL : fused_form(&b->insns[j], &cond);
            xfer = !f && !ff && is_transfer(b, &b->insns[j]);
            if (!f && !ff && !xfer)
                break;
        }
        if (!ended)
            emit_goto_record(&e, &b->insns[j]);
    }
    if (!ntr)
        return;
    for (unsigned k = 0; k < nstub; k++) {
        const struct insn *rec = &b->insns[stubs[k].j];
        patch32(stubs[k].at, e.p);
        if (!stubs[k].miss) { /* a taken Jcc: as at the block's end */
            if (chainable(b, rec->imm))
                emit_chain(&e, stubs[k].j, rec->imm,
                           in_page(b, rec->imm, &b->insns[stubs[k].j].link));
            else
                emit_goto_record(&e, rec);
            continue;
        }
        mov_imm(&e, RSI, (uint64_t)(uintptr_t)rec);
        mov_imm(&e, RAX, (uint64_t)(uintptr_t)rec->fn);
        e8(&e, 0xff); /* jmp rax */
        e8(&e, 0xe0);
    }
    if (entry[0])
        b->fn0 = b->insns[0].fn;
    for (unsigned j = 0; j < n; j++)
        if (entry[j])
            b->insns[j].fn = (insn_fn)(uintptr_t)(entry[j] + e.delta);
    c->jit_used = ((size_t)(e.p - c->jit_rw) + 15) & ~(size_t)15;
    c->stats.jit_insns += ntr;
}

void jit_reset(struct cpu *c)
{
    c->jit_used = 0;
}
