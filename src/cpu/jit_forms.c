/* The translator's knowledge of the interpreter's records (jit.c emits
 * host code from it): which handler is which instruction form, and how
 * each form treats the guest's flags — whether a block overwrites them
 * unread (so host code need not store them) and which kind of producer a
 * flag reader after it sees (so host code can recompute the condition). */
#include <pthread.h>
#include <stdint.h>

#include "cpu/internal.h"
#include "cpu/handlers.h"
#include "cpu/jit_internal.h"

#define FORM_BITS 11
static struct jform forms[1u << FORM_BITS];
static pthread_once_t forms_once = PTHREAD_ONCE_INIT;

static unsigned form_hash(insn_fn fn)
{
    uint64_t v = (uint64_t)(uintptr_t)fn;
    return (unsigned)((v * 0x9e3779b97f4a7c15ull) >> (64 - FORM_BITS));
}

static void form_add1(insn_fn fn, struct jform f)
{
    if (!fn)
        return;
    f.fn = fn;
    unsigned h = form_hash(fn);
    while (forms[h].fn && forms[h].fn != fn)
        h = (h + 1) & ((1u << FORM_BITS) - 1);
    forms[h] = f;
}

/* A handler and, for memory forms, its base+displacement fast variant. */
static void form_add(insn_fn fn, unsigned kind, unsigned op, unsigned lg)
{
    struct jform f = {.kind = (uint8_t)kind, .op = (uint8_t)op, .lg = (uint8_t)lg};
    form_add1(fn, f);
    if (fn)
        form_add1(fast_mem_variant(fn), f);
}

static void forms_fill(void)
{
    static const unsigned alu_ops[] = {0, 1, 2, 3, 4, 5, 6, 7};
    for (unsigned lg = 0; lg < 4; lg++) {
        form_add(h_mov[0][lg], K_MOV_RR, 0, lg);
        form_add(h_mov[1][lg], K_MOV_RM, 0, lg);
        form_add(h_mov[2][lg], K_MOV_MR, 0, lg);
        form_add(h_mov[3][lg], K_MOV_RI, 0, lg);
        form_add(h_mov[4][lg], K_MOV_MI, 0, lg);
        for (unsigned k = 0; k < sizeof(alu_ops) / sizeof(alu_ops[0]); k++) {
            unsigned op = alu_ops[k];
            form_add(h_alu[ALU_RR][op][lg], K_ALU_RR, op, lg);
            form_add(h_alu[ALU_RI][op][lg], K_ALU_RI, op, lg);
            form_add(h_alu[ALU_RM][op][lg], K_ALU_RM, op, lg);
        }
        for (unsigned op = 0; op < 7; op++) /* not ADC/SBB: they read CF */
            if (op != 2 && op != 3) {
                form_add(h_alu[ALU_MR][op][lg], K_ALU_MR, op, lg);
                form_add(h_alu[ALU_MI][op][lg], K_ALU_MI, op, lg);
            }
        form_add(h_alu[ALU_MR][7][lg], K_CMP_MR, 7, lg);
        form_add(h_alu[ALU_MI][7][lg], K_CMP_MI, 7, lg);
        form_add(h_test[0][lg], K_TEST_RR, 4, lg);
        form_add(h_test[1][lg], K_TEST_MR, 4, lg);
        form_add(h_test[2][lg], K_TEST_RI, 4, lg);
        form_add(h_test[3][lg], K_TEST_MI, 4, lg);
        form_add(h_lea[lg], K_LEA, 0, lg);
    }
    for (unsigned lg = 0; lg < 4; lg++)
        form_add1(h_shift[0][lg], (struct jform){.kind = K_SHIFT_RI, .lg = (uint8_t)lg});
    bool imul = host_imul_flags_from_result() || host_imul_keeps_other_flags();
    for (unsigned lg = 1; lg < 4 && imul; lg++) {
        form_add1(h_imul[0][lg], (struct jform){.kind = K_IMUL_RR, .lg = (uint8_t)lg});
        form_add1(h_imul[2][lg], (struct jform){.kind = K_IMUL_RI, .lg = (uint8_t)lg});
    }
    for (unsigned lg = 0; lg < 4; lg++) { /* NEG's lazy flags are a SUB's from 0 */
        form_add1(h_unop[0][2][lg], (struct jform){.kind = K_NOT, .lg = (uint8_t)lg});
        form_add1(h_unop[0][3][lg], (struct jform){.kind = K_NEG, .op = 5, .lg = (uint8_t)lg});
    }
    for (unsigned op = 0; op < 2; op++) /* INC, DEC of a register */
        for (unsigned lg = 0; lg < 4; lg++)
            form_add1(h_unop[0][op][lg],
                      (struct jform){.kind = K_INCDEC, .op = (uint8_t)op, .lg = (uint8_t)lg});
    form_add1(h_nop, (struct jform){.kind = K_NOP});
    form_add1(h_setcc[0], (struct jform){.kind = K_SETCC});
    for (unsigned lg = 1; lg < 4; lg++)
        form_add1(h_cmov[0][lg], (struct jform){.kind = K_CMOV, .lg = (uint8_t)lg});
    form_add(h_push_r[3], K_PUSH, 0, 3);
    form_add(h_pop_r[3], K_POP, 0, 3);
    form_add(h_push_i[3], K_PUSH_I, 0, 3);
    form_add(h_push_m[3], K_PUSH_M, 0, 3);
    for (unsigned sx = 0; sx < 2; sx++)
        for (unsigned m = 0; m < 2; m++)
            for (unsigned s = 0; s < 3; s++)
                for (unsigned d = 1; d < 4; d++) {
                    struct jform f = {.kind = m ? K_EXT_M : K_EXT_R, .lg = (uint8_t)d,
                                      .slg = (uint8_t)s, .sx = (uint8_t)sx};
                    insn_fn fn = h_ext[sx][m][s][d];
                    form_add1(fn, f);
                    if (fn && m)
                        form_add1(fast_mem_variant(fn), f);
                }
}

/* A shift or rotate by an immediate the C fast path would take: SHL/SHR/SAR
 * by 1..size-1 (lazy flags), ROL/ROR by a nonzero count where the host's
 * CF/OF are the modelled ones. Not RCL/RCR, not counts in CL. */
static bool shift_translatable(const struct insn *rec, unsigned lg)
{
    unsigned op = rec->aux & 7, cnt = (unsigned)rec->imm & (lg == 3 ? 63 : 31);
    if ((rec->aux & 8) || cnt == 0 || op == 2 || op == 3)
        return false;
    if (op < 2)
        return host_rot_flags_modelled();
    return cnt < (8u << lg);
}

static const struct jform *form_lookup(const struct insn *rec, insn_fn fn)
{
    unsigned h = form_hash(fn);
    while (forms[h].fn) {
        if (forms[h].fn == fn)
            break;
        h = (h + 1) & ((1u << FORM_BITS) - 1);
    }
    const struct jform *f = &forms[h];
    if (!f->fn)
        return NULL;
    switch (f->kind) {
    case K_ALU_RI: case K_CMP_MI: case K_TEST_RI: case K_TEST_MI: case K_MOV_RI: case K_MOV_MI:
    case K_ALU_MI:
        /* the builder masks immediates to the operand size; the code
         * below relies on it */
        if (rec->imm & ~sz_mask(f->lg))
            return NULL;
        break;
    case K_SHIFT_RI:
        if (!shift_translatable(rec, f->lg))
            return NULL;
        break;
    case K_PUSH_M: /* its address before the pushes ahead of it in a group */
        if (rec->base == RSP || rec->index == RSP)
            return NULL;
        break;
    default:
        break;
    }
    return f;
}

const struct jform *form_of(const struct insn *rec)
{
    if (rec->mf & MF_FUSED)
        return NULL;
    return form_lookup(rec, rec->fn);
}

/* A compare-and-branch pair fuse.c fused at 'rec' whose first half the
 * translator knows: that half's form, and the Jcc's condition in *cond. */
const struct jform *fused_form(const struct insn *rec, unsigned *cond)
{
    if (!(rec->mf & MF_FUSED))
        return NULL;
    unsigned k = 0;
    while (k < 16 && rec[1].fn != h_jcc[k])
        k++;
    if (k == 16)
        return NULL;
    const struct jform *f = form_lookup(rec, fuse_plain(rec));
    if (!f || ((f->kind < K_ALU_RR || f->kind > K_TEST_MI) && f->kind != K_INCDEC))
        return NULL;
    *cond = k;
    return f;
}

void jit_forms_init(void)
{
    pthread_once(&forms_once, forms_fill);
}

/* --- the guest's flags ---------------------------------------------------------- */
/* ADC or SBB: reads CF, so it runs in host code only after a known
 * producer (usable) */
bool is_carry_op(const struct jform *f)
{
    return (f->kind == K_ALU_RR || f->kind == K_ALU_RI || f->kind == K_ALU_RM) &&
           (f->op == 2 || f->op == 3);
}

/* The form whose lazy flags a condition reader after record 'rec' (form
 * 'f', NULL for an interpreted one) sees, given 'w' before it: ALU, CMP
 * and TEST forms leave kinds emit_host_flags recomputes; records that
 * write no flags keep 'w'; anything else leaves them unknown. */
const struct jform *flags_writer(const struct jform *f, const struct jform *w)
{
    if (!f)
        return NULL;
    switch (f->kind) {
    case K_ALU_RR: case K_ALU_RI: case K_ALU_RM: case K_CMP_MR: case K_CMP_MI:
    case K_TEST_RR: case K_TEST_RI: case K_TEST_MR: case K_TEST_MI: case K_INCDEC:
    case K_ALU_MR: case K_ALU_MI: case K_NEG:
        return f;
    case K_MOV_RR: case K_MOV_RM: case K_MOV_MR: case K_MOV_RI: case K_MOV_MI: case K_LEA:
    case K_PUSH: case K_POP: case K_EXT_R: case K_EXT_M: case K_SETCC: case K_CMOV: case K_NOP:
    case K_NOT: case K_PUSH_I: case K_PUSH_M:
        return w;
    default:
        return NULL;
    }
}

/* How a record treats the guest's flags, for flags_dead_after. */
enum flag_use { FLAGS_READ, FLAGS_KILL, FLAGS_PASS };

/* KILL: writes every arithmetic flag and cannot fault first; PASS: reads
 * none and cannot fault (a rotate merges its CF/OF into the flags before
 * it, which are as dead as its own); READ: anything else, including every
 * memory access (a fault must see the flags exact) and every record the
 * interpreter runs. */
static enum flag_use flag_use(const struct insn *rec)
{
    unsigned cond;
    const struct jform *f = form_of(rec);
    if (!f) {
        f = fused_form(rec, &cond);
        bool reg = f && (f->kind == K_ALU_RR || f->kind == K_ALU_RI || f->kind == K_TEST_RR ||
                         f->kind == K_TEST_RI);
        return reg ? FLAGS_KILL : FLAGS_READ;
    }
    if (is_carry_op(f))
        return FLAGS_READ;
    switch (f->kind) {
    case K_ALU_RR: case K_ALU_RI: case K_TEST_RR: case K_TEST_RI: case K_NEG:
        return FLAGS_KILL;
    case K_IMUL_RR: case K_IMUL_RI:
        return host_imul_flags_from_result() ? FLAGS_KILL : FLAGS_PASS;
    case K_SHIFT_RI:
        return (rec->aux & 7) < 2 ? FLAGS_PASS : FLAGS_KILL;
    case K_MOV_RR: case K_MOV_RI: case K_LEA: case K_EXT_R:
    case K_INCDEC: /* keeps CF, as a rotate keeps the others */
    case K_NOP: case K_NOT:
        return FLAGS_PASS;
    default:
        return FLAGS_READ;
    }
}

/* dead[j]: record j's flags are overwritten in this block before anything
 * can read them or the block can be left (interrupts and the instruction
 * limit act only at block ends), so its host code need not store them. */
void flags_dead_after(const struct block *b, bool *dead)
{
    bool live = true; /* the next block, or a handler, may read them */
    for (unsigned j = b->ninsn; j-- > 0;) {
        dead[j] = !live;
        enum flag_use u = flag_use(&b->insns[j]);
        if (u == FLAGS_KILL)
            live = false;
        else if (u == FLAGS_READ)
            live = true;
    }
}

/* The guest registers record 'rec' (form 'f') writes, when it can stand
 * between a deferred producer and the record that overwrites the
 * producer's flags: it neither reads nor writes flags, and it leaves host
 * code only by a TLB miss. *ok false: it cannot. */
static uint16_t window_writes(const struct insn *rec, const struct jform *f, bool *ok)
{
    unsigned r = f->lg == 0 ? rec->reg >> 3 : rec->reg;
    *ok = true;
    switch (f->kind) {
    case K_MOV_MR: case K_MOV_MI: case K_NOP:
        return 0;
    case K_PUSH: case K_PUSH_I: case K_PUSH_M:
        return 1u << RSP;
    case K_POP:
        return (uint16_t)(1u << RSP | 1u << r);
    case K_MOV_RR: case K_MOV_RI: case K_MOV_RM: case K_LEA: case K_EXT_R: case K_EXT_M:
    case K_NOT:
        return (uint16_t)(1u << r);
    default:
        *ok = false;
        return 0;
    }
}

/* Whether a live producer's lazy flags can be recomputed from the guest
 * registers it read, while they keep their values (emit_flags_of): a
 * register-only ADD/OR/AND/SUB/XOR/CMP/TEST at 32 or 64 bits, whose
 * destination then holds the result. An ADD or SUB of a register to
 * itself cannot: its source is gone. Returns the registers it needs. */
static uint16_t recomputable(const struct insn *rec, const struct jform *f)
{
    if (!f || f->lg < 2 || is_carry_op(f))
        return 0;
    bool rr = f->kind == K_ALU_RR || f->kind == K_TEST_RR;
    if (!rr && f->kind != K_ALU_RI && f->kind != K_TEST_RI)
        return 0;
    if (rr && f->kind == K_ALU_RR && (f->op == 0 || f->op == 5) && rec->base == rec->reg)
        return 0;
    return (uint16_t)(1u << rec->reg | (rr ? 1u << rec->base : 0));
}

/* defer[j]: record j's flags are live only for a TLB miss before the
 * record that overwrites them (memory moves read no flags, but a miss
 * runs the interpreter, which must see them exact): its host code leaves
 * them unstored and each miss stub in between recomputes them
 * (emit_flags_of), which holds while the registers they come from keep
 * their values. end[j]: that overwriting record. */
void flags_deferred(const struct block *b, const bool *dead, bool *defer, uint8_t *end)
{
    for (unsigned j = 0; j < b->ninsn; j++) {
        defer[j] = false;
        uint16_t needs = dead[j] ? 0 : recomputable(&b->insns[j], form_of(&b->insns[j]));
        for (unsigned k = j + 1; needs && k < b->ninsn; k++) {
            const struct insn *rec = &b->insns[k];
            if (flag_use(rec) == FLAGS_KILL) {
                defer[j] = true;
                end[j] = (uint8_t)k;
                break;
            }
            const struct jform *f = form_of(rec);
            bool ok = false;
            if (!f || (window_writes(rec, f, &ok) & needs) || !ok)
                break;
        }
    }
}

/* 'f', unless it reads the flags and the run has not said which kind they
 * are (w: flags_writer) */
const struct jform *usable(const struct jform *f, const struct jform *w)
{
    bool reads = f && (f->kind == K_SETCC || f->kind == K_CMOV || is_carry_op(f));
    return reads && !w ? NULL : f;
}
