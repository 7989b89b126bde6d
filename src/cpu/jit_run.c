/* The translator's block pass: each run of records whose instruction it
 * knows (jit_forms.c) becomes host code, and those records' handlers point
 * into it; a run ending the block with a transfer goes on into the next
 * block in host code (jit_chain.c). Everything else keeps its interpreter
 * handler, so a block mixes both freely.
 *
 * Within a run the guest registers it uses most live in host registers
 * (struct regcache): loaded where the run is entered, stored back where it
 * is left — at its end, on a TLB miss (before the record's handler redoes
 * the instruction from the start), at a taken branch and before a
 * transfer — so outside host code c->r[] is always the guest's state.
 * A run is entered from outside at its first record (after the handler
 * of the record before it, or from another block); a run that caches no
 * register also at any of its records, after a TLB miss's handler. A branch back to the start of a run that
 * starts the block loops in host code with the registers still cached
 * (emit_self_loop); every exit of such a run stores all of them, as an
 * earlier pass may have changed one a later pass has not yet. */
#include <stddef.h>
#include <sys/mman.h>

#include "cpu/internal.h"
#include "cpu/handlers.h"
#include "cpu/jit_internal.h"

/* Leave the run: the cached registers it changed stored back. */
static void emit_leave_run(struct emit *e)
{
    if (e->rc)
        emit_cache_store(e, e->rc, e->rc->dirty);
}

/* ... and return to the run loop, the next instruction at 't' (after
 * emit_self_loop's checks failed: its instruction is retired). */
static void emit_leave_to_run_loop(struct emit *e, uint16_t dirty, uint64_t t)
{
    if (e->rc)
        emit_cache_store(e, e->rc, dirty);
    mov_imm(e, RAX, t);
    op_rm(e, 3, 0x89, RAX, RDI, CPU_OFF(rip));
    emit_to_c(e, TO_C_RET); /* to the run loop */
}

/* Leave host code for record 'rec': its handler (host code, an
 * interpreter handler, or h_exit_stale after a store into this block). */
static void emit_goto_record(struct emit *e, const struct insn *rec)
{
    mov_imm(e, RSI, (uint64_t)(uintptr_t)rec);
    emit_to_c(e, TO_C_JMP_RECORD);
}

/* ... for record 'rec''s interpreter handler (the one it has while its
 * block is translated): a Jcc whose way out cannot chain, which may have
 * an entry of its own (a lone Jcc) that would only come back here. */
static void emit_goto_handler(struct emit *e, const struct insn *rec)
{
    mov_imm(e, RSI, (uint64_t)(uintptr_t)rec);
    mov_imm(e, RAX, (uint64_t)(uintptr_t)rec->fn);
    emit_to_c(e, TO_C_JMP_RAX);
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

/* CALL's push: rsp - 8 probed for writing (rax = its host address);
 * *miss gets the probe's jump. Nothing is written yet. */
static void emit_push_probe(struct emit *e, uint8_t **miss)
{
    rd_greg(e, RAX, RSP, 3);
    alu_ri(e, 3, 5, RAX, 8);
    *miss = emit_probe(e, 3, true);
}

/* ... then the return address written there and RSP moved. */
static void emit_push_return(struct emit *e, const struct block *b, const struct insn *rec)
{
    mov_imm(e, RCX, b->va + rec->off + rec->len);
    emit_store(e, RCX, 3);
    rd_greg(e, RDX, RSP, 3);
    alu_ri(e, 3, 5, RDX, 8);
    wr_greg(e, RSP, RDX, 3);
}

/* RET (imm16): as the interpreter's handler, the target loaded through the
 * TLB probe and checked canonical before RSP moves, so a miss or a #GP
 * runs that handler from the start. */
static void emit_ret(struct emit *e, const struct insn *rec, unsigned idx, uint8_t **miss)
{
    rd_greg(e, RAX, RSP, 3);
    miss[0] = emit_probe(e, 3, false);
    op_rm(e, 3, 0x8b, RAX, RAX, 0);
    miss[1] = emit_canonical_check(e, RAX);
    rd_greg(e, RDX, RSP, 3);
    alu_ri(e, 3, 0, RDX, (int32_t)(8 + rec->imm));
    wr_greg(e, RSP, RDX, 3);
    emit_leave_run(e);
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
        rd_greg(e, RSI, rec->base, 3);
    } else {
        emit_ea(e, rec);
        miss[0] = emit_probe(e, 3, false);
        op_rm(e, 3, 0x8b, RSI, RAX, 0);
    }
    if (call)
        emit_push_probe(e, &miss[1]);
    miss[2] = emit_canonical_check(e, RSI);
    if (call)
        emit_push_return(e, b, rec);
    op_rr(e, 3, 0x89, RSI, RAX);
    emit_leave_run(e);
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
    emit_leave_run(e);
    emit_chain(e, idx, rec->imm, in_page(b, rec->imm, &b->chain[0]));
}

/* Host flags for the Jcc of a fused pair whose first half is 'ff', or
 * (ff NULL) for a Jcc on its own after the run's producer 'w'. */
static void emit_jcc_flags(struct emit *e, const struct jform *ff, const struct jform *w)
{
    if (ff)
        emit_branch_flags(e, ff);
    else
        emit_lone_jcc_flags(e, w);
}

/* A Jcc ending the block at 'jidx' (a fused pair's, or on its own: see
 * emit_jcc_flags): the
 * host flags decide; each way chains when it can, or else runs the Jcc's
 * handler, which decides again from the lazy flags and chains as ever.
 * With 'loop_at' (the block's run starts at its first record and the Jcc
 * goes back there) the taken way stays in the run (emit_self_loop). */
static void emit_fused_end(struct emit *e, struct block *b, unsigned jidx, const struct jform *ff,
                           const struct jform *w, unsigned cond, uint8_t *loop_at)
{
    struct insn *jrec = &b->insns[jidx];
    uint64_t taken = jrec->imm, fall = b->va + jrec->off + jrec->len;
    if (!loop_at)
        emit_leave_run(e);
    emit_jcc_flags(e, ff, w);
    uint8_t *to_taken = jcc32(e, cond);
    if (loop_at) /* only the way out leaves the run */
        emit_leave_run(e);
    if (chainable(b, fall))
        emit_chain(e, jidx, fall, in_page(b, fall, &b->chain[1]));
    else
        emit_goto_handler(e, jrec);
    patch32(to_taken, e->p);
    if (loop_at) {
        emit_self_loop(e, jidx, b, loop_at);
        emit_leave_to_run_loop(e, e->rc ? e->rc->dirty : 0, taken);
        return;
    }
    if (chainable(b, taken))
        emit_chain(e, jidx, taken, in_page(b, taken, &jrec->link));
    else
        emit_goto_handler(e, jrec);
}

/* An exit from the middle of a run, emitted after it: a TLB miss to the
 * record's handler or a taken branch to the next block; 'dirty' is what
 * the run had changed by then. */
struct run_exit {
    uint8_t *at;
    unsigned j;
    uint16_t dirty;
    int16_t pending; /* a miss: the record whose flags it recomputes, or -1 */
    bool miss;
    bool loop; /* a taken Jcc back to the start of the block's run */
};

struct pass {
    struct cpu *c;
    struct block *b;
    struct emit e;
    uint8_t *limit; /* a run stops when less than JIT_INSN_MAX is left */
    uint8_t *entry[BLOCK_MAX_INSNS];
    uint8_t *inline_at[BLOCK_MAX_INSNS];
    bool dead[BLOCK_MAX_INSNS];
    bool defer[BLOCK_MAX_INSNS];     /* flags_deferred */
    uint8_t defer_end[BLOCK_MAX_INSNS];
    int pending; /* the deferred producer whose flags are unstored, or -1 */
    struct run_exit exits[2 * BLOCK_MAX_INSNS + 2];
    unsigned nexit, ntr;
    bool overflow;
    bool self_loop; /* the run being emitted ends in a branch to its own start */
    uint8_t *host_entry; /* the block's, for struct block */
};

/* The record's form, a fused pair's first half (cond: its Jcc's), or a
 * transfer: what a run can take next. */
struct step {
    const struct jform *f, *ff;
    const struct jform *w; /* a lone Jcc (lone_jcc): the producer whose flags it reads */
    unsigned cond;
    bool xfer;
};

/* A Jcc on its own (not fused: its producer is further back, or not a
 * compare); its condition code in *cond. */
static bool lone_jcc(const struct insn *rec, unsigned *cond)
{
    if (rec->mf & MF_FUSED)
        return false;
    for (unsigned k = 0; k < 16; k++)
        if (rec->fn == h_jcc[k]) {
            *cond = k;
            return true;
        }
    return false;
}

static bool next_step(const struct block *b, unsigned j, const struct jform *w, struct step *s)
{
    s->cond = 0;
    s->f = usable(form_of(&b->insns[j]), w);
    s->ff = s->f ? NULL : fused_form(&b->insns[j], &s->cond);
    s->xfer = !s->f && !s->ff && is_transfer(b, &b->insns[j]);
    /* a lone Jcc only where the run knows its producer's kind */
    s->w = !s->f && !s->ff && !s->xfer && w && lone_jcc(&b->insns[j], &s->cond) ? w : NULL;
    return s->f || s->ff || s->xfer || s->w;
}

static void add_exit(struct pass *ps, uint8_t *at, unsigned j, bool miss)
{
    struct run_exit *x = &ps->exits[ps->nexit++];
    x->at = at;
    x->j = j;
    x->miss = miss;
    x->loop = false;
    x->dirty = ps->e.rc ? ps->e.rc->dirty : 0;
    x->pending = (int16_t)(miss ? ps->pending : -1);
}

/* The deferred producer's flags stored, where host code leaves the run
 * before the record that overwrites them (never, as flags_deferred
 * chooses, except where a run stops early to stay within its room). */
static void flush_pending(struct pass *ps)
{
    if (ps->pending < 0)
        return;
    const struct insn *rec = &ps->b->insns[ps->pending];
    emit_flags_of(&ps->e, rec, form_of(rec));
    ps->pending = -1;
}

/* Whether Jcc record 'jidx' of a run starting at record 'first' goes
 * back to that start, the block's: then it can loop in host code. */
static bool loops_back(const struct block *b, unsigned first, unsigned jidx)
{
    return first == 0 && b->insns[jidx].imm == b->va && chainable(b, b->va);
}

/* How many records from 'j' emit_stack_group takes as one: PUSHes of
 * registers other than RSP, of immediates and of at most one memory
 * operand, or POPs of registers other than RSP; 0 when record j is none
 * of them. */
#define STACK_GROUP_MAX 16
static unsigned stack_group(const struct block *b, unsigned j, const struct jform *f)
{
    bool push = f->kind == K_PUSH || f->kind == K_PUSH_I || f->kind == K_PUSH_M;
    if (!push && f->kind != K_POP)
        return 0;
    unsigned n = 0, loads = 0;
    for (; j + n < b->ninsn && n < STACK_GROUP_MAX; n++) {
        const struct insn *rec = &b->insns[j + n];
        const struct jform *g = form_of(rec);
        bool same = g && (push ? g->kind == K_PUSH || g->kind == K_PUSH_I || g->kind == K_PUSH_M
                               : g->kind == K_POP);
        if (!same || ((g->kind == K_PUSH || g->kind == K_POP) && rec->reg == RSP) ||
            (g->kind == K_PUSH_M && loads++))
            break;
    }
    return n;
}

/* The records of one run from 'j' in host code; returns the index after it. */
static unsigned emit_run_body(struct pass *ps, unsigned j, struct step s)
{
    struct block *b = ps->b;
    struct emit *e = &ps->e;
    unsigned n = b->ninsn, first = j;
    const struct jform *w = NULL; /* flags_writer, for condition readers */
    ps->pending = -1;
    for (;;) {
        uint8_t *miss[3] = {NULL, NULL, NULL};
        uint16_t dirty_before = e->rc ? e->rc->dirty : 0;
        if (ps->pending >= 0 && j >= ps->defer_end[ps->pending])
            ps->pending = -1; /* record j overwrites them */
        bool defer = s.f && !ps->dead[j] && ps->defer[j];
        unsigned group = s.f ? stack_group(b, j, s.f) : 0;
        ps->inline_at[j] = e->p;
        if (ps->c->jit_count) { /* add qword [rdi + jit_executed], 1, 2 (fused) or the group's */
            op_rm(e, 3, 0x83, 0, RDI, CPU_OFF(stats.jit_executed));
            e8(e, s.ff ? 2 : group ? group : 1);
        }
        if (s.xfer || (s.ff && j + 2 >= n) || s.w)
            flush_pending(ps);
        if (s.w)
            ; /* a lone Jcc: below */
        else if (s.xfer)
            emit_transfer(e, b, j, miss);
        else if (group)
            emit_stack_group(e, &b->insns[j], group, s.f->kind != K_POP, miss);
        else
            emit_insn(e, &b->insns[j], s.f ? s.f : s.ff, s.f && (ps->dead[j] || defer), w,
                      &miss[0]);
        w = s.xfer ? NULL : s.w ? w : flags_writer(s.f ? s.f : s.ff, w);
        for (unsigned k = 0; k < 3; k++)
            if (miss[k]) {
                add_exit(ps, miss[k], j, true);
                ps->exits[ps->nexit - 1].dirty = dirty_before;
            }
        if (defer)
            ps->pending = (int)j;
        ps->ntr++;
        for (; group > 1; group--) { /* the group's later records: no entry of their own */
            ps->inline_at[++j] = NULL;
            ps->ntr++;
        }
        if (s.xfer) /* the block's end, left in host code */
            return n;
        if (s.ff && j + 2 >= n) { /* the block's last Jcc */
            bool loop = loops_back(b, first, j + 1);
            ps->self_loop |= loop;
            emit_fused_end(e, b, j + 1, s.ff, NULL, s.cond, loop ? ps->inline_at[0] : NULL);
            return n;
        }
        if (s.w && j + 1 >= n) { /* a lone Jcc ending the block */
            bool loop = loops_back(b, first, j);
            ps->self_loop |= loop;
            emit_fused_end(e, b, j, NULL, s.w, s.cond, loop ? ps->inline_at[0] : NULL);
            return n;
        }
        if (s.w) { /* as a fused pair's Jcc in the middle */
            emit_lone_jcc_flags(e, s.w);
            add_exit(ps, jcc32(e, s.cond), j, false);
            ps->exits[ps->nexit - 1].loop = loops_back(b, first, j);
            ps->self_loop |= ps->exits[ps->nexit - 1].loop;
        }
        if (s.ff) { /* not taken: on in host code; taken: out of line */
            emit_branch_flags(e, s.ff);
            add_exit(ps, jcc32(e, s.cond), j + 1, false);
            ps->exits[ps->nexit - 1].loop = loops_back(b, first, j + 1);
            ps->self_loop |= ps->exits[ps->nexit - 1].loop;
            j++;
        }
        j++;
        if (e->p > ps->limit)
            ps->overflow = true;
        if (j >= n || ps->overflow || !next_step(b, j, w, &s))
            break;
    }
    flush_pending(ps);
    emit_leave_run(e);
    emit_goto_record(e, &b->insns[j]);
    return j;
}

/* The run's exits from its middle, then the entries into its middle. */
static void emit_run_tail(struct pass *ps, unsigned first, unsigned end, unsigned nexit0)
{
    struct block *b = ps->b;
    struct emit *e = &ps->e;
    for (unsigned k = nexit0; k < ps->nexit; k++) {
        const struct run_exit *x = &ps->exits[k];
        const struct insn *rec = &b->insns[x->j];
        patch32(x->at, e->p);
        if (x->loop) { /* on in the run, or out to the run loop */
            emit_self_loop(e, x->j, b, ps->inline_at[first]);
            emit_leave_to_run_loop(e, x->dirty, rec->imm);
            continue;
        }
        if (x->pending >= 0) /* before the callee-saved registers are restored */
            emit_flags_of(e, &b->insns[x->pending], form_of(&b->insns[x->pending]));
        if (e->rc)
            emit_cache_store(e, e->rc, x->dirty);
        if (!x->miss) { /* a taken Jcc: as at the block's end */
            if (chainable(b, rec->imm))
                emit_chain(e, x->j, rec->imm, in_page(b, rec->imm, &b->insns[x->j].link));
            else
                emit_goto_handler(e, rec);
            continue;
        }
        emit_goto_handler(e, rec);
    }
    ps->nexit = nexit0;
    /* A run that caches no register can be joined anywhere as it is. One
     * that does gets no entries in its middle: they would only serve the
     * records after a TLB miss (their handlers run instead, to the next
     * run or the block's end), and took a sixth of the arena. */
    for (unsigned j = first + 1; j < end && !e->rc; j++)
        if (ps->inline_at[j])
            ps->entry[j] = ps->inline_at[j];
}

/* The registers worth caching in a run, from the dry pass's counts: used
 * at least three times (a load and a store are what caching costs), never
 * as AH..BH, the most used first. */
static void choose_cache(struct regcache *rc)
{
    uint16_t uses[16];
    memcpy(uses, rc->uses, sizeof(uses));
    memset(rc->host, -1, sizeof(rc->host));
    for (unsigned slot = 0; slot < RC_SLOTS; slot++) {
        unsigned best = 16;
        for (unsigned r = 0; r < 16; r++)
            if (!(rc->high >> r & 1) && uses[r] >= 3 && (best == 16 || uses[r] > uses[best]))
                best = r;
        if (best == 16)
            break;
        rc->host[best] = (int8_t)rc_slot_host[slot];
        uses[best] = 0;
    }
}

/* One run: a dry pass counts the registers it uses (its code is thrown
 * away), the real one keeps the most used in host registers. */
static unsigned emit_run(struct pass *ps, unsigned j, struct step s)
{
    struct regcache rc = {.counting = true};
    memset(rc.host, -1, sizeof(rc.host));
    ps->self_loop = false;
    uint8_t *start = ps->e.p;
    unsigned nexit0 = ps->nexit, ntr0 = ps->ntr;
    ps->e.rc = &rc;
    emit_run_body(ps, j, s);
    ps->e.p = start;
    ps->nexit = nexit0;
    ps->ntr = ntr0;
    ps->overflow = false;
    choose_cache(&rc);
    rc.counting = false;
    bool any = false;
    for (unsigned r = 0; r < 16; r++) {
        any |= rc.host[r] >= 0;
        /* around a loop every exit may follow a change made in an earlier
         * pass: each stores all the cached registers */
        if (rc.host[r] >= 0 && ps->self_loop)
            rc.dirty |= (uint16_t)(1u << r);
    }
    ps->self_loop = false;
    ps->e.rc = any ? &rc : NULL;
    bool dirty = rc_dirty(ps->e.rc);
    if (dirty)
        emit_save_callee(&ps->e);
    uint8_t *chained = ps->e.p; /* a dirty run's entry from another's */
    emit_cache_load(&ps->e, ps->e.rc);
    unsigned end = emit_run_body(ps, j, s);
    ps->entry[j] = start;
    emit_run_tail(ps, j, end, nexit0);
    if (j == 0 && !dirty) { /* a clean run: C's callee-saved registers first */
        chained = ps->e.p;
        emit_restore_callee(&ps->e);
        patch32(jmp32(&ps->e), start);
    }
    if (j == 0)
        ps->host_entry = chained;
    ps->e.rc = NULL;
    return end;
}

/* A block built one instruction long after a store rewrote the block
 * before it is likely to be rewritten again at once: translating it right
 * away, even where every block is (CPU_CFG_JIT), would translate code
 * that never runs twice. */
#define REWRITTEN_HOT 4

static unsigned hot_runs(const struct cpu *c)
{
    return c->jit_hot > 1 ? c->jit_hot : REWRITTEN_HOT;
}

/* The first record's handler while a block is counted: the block's
 * hot_runs-th entry translates it, then runs it (as host code, or as
 * records where the translator left them). */
static HANDLER(h_count_runs)
{
    struct block *b = (struct block *)((uintptr_t)i - offsetof(struct block, insns));
    if (++b->runs >= hot_runs(c) && b->valid) {
        b->insns[0].fn = b->fn0;
        jit_block(c, b);
        return b->insns[0].fn(c, b->insns);
    }
    return b->fn0(c, i);
}

void jit_block_later(struct cpu *c, struct block *b, bool rewritten)
{
    b->runs = 0;
    if (!c->jit_rw || (c->jit_hot <= 1 && !rewritten)) {
        jit_block(c, b);
        return;
    }
    b->fn0 = b->insns[0].fn;
    b->insns[0].fn = h_count_runs;
}

void jit_block(struct cpu *c, struct block *b)
{
    b->fn0 = NULL;
    b->host_entry = NULL;
    if (!c->jit_rw || jit_full(c))
        return;
    size_t rx_ready = c->jit_ready;
    arena_populate(c->jit_rw, c->jit_size, &c->jit_ready, c->jit_used + JIT_BLOCK_MAX,
                   MADV_POPULATE_WRITE);
    arena_populate(c->jit_rx, c->jit_size, &rx_ready, c->jit_ready, MADV_POPULATE_READ);
    struct pass ps;
    memset(&ps, 0, sizeof(ps));
    ps.c = c;
    ps.b = b;
    ps.e = (struct emit){c->jit_rw + c->jit_used, c->jit_rw + c->jit_size,
                         c->jit_rx - c->jit_rw, NULL, c->jit_rw};
    ps.limit = c->jit_rw + c->jit_used + JIT_BLOCK_MAX - JIT_INSN_MAX;
    unsigned n = b->ninsn;
    flags_dead_after(b, ps.dead);
    flags_deferred(b, ps.dead, ps.defer, ps.defer_end);
    for (unsigned j = 0; j < n;) {
        struct step s;
        if (ps.overflow)
            return; /* (never with today's emitters: the block stays interpreted) */
        if (!next_step(b, j, NULL, &s)) {
            j++;
            continue;
        }
        j = emit_run(&ps, j, s);
    }
    if (!ps.ntr || ps.overflow)
        return;
    if (ps.entry[0]) {
        uint8_t *linked[2];
        emit_linked_entries(&ps.e, b, ps.entry[0], ps.host_entry, linked);
        b->fn0 = b->insns[0].fn;
        b->host_entry = ps.host_entry + ps.e.delta;
        b->linked[0] = linked[0] + ps.e.delta;
        b->linked[1] = linked[1] + ps.e.delta;
    }
    for (unsigned j = 0; j < n; j++)
        if (ps.entry[j])
            b->insns[j].fn = (insn_fn)(uintptr_t)(ps.entry[j] + ps.e.delta);
    size_t from = c->jit_used;
    c->jit_used = ((size_t)(ps.e.p - c->jit_rw) + 15) & ~(size_t)15;
    c->stats.jit_insns += ps.ntr;
    c->stats.jit_bytes += c->jit_used - from;
    if (c->ops.code_translated)
        c->ops.code_translated(c->ops.ctx, c->jit_rx + from, (size_t)(ps.e.p - c->jit_rw) - from,
                               b->va);
}
