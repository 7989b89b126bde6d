/* The guest's own debug registers: instruction and data breakpoints in
 * DR0-DR3 under DR7, raising #DB in the guest as hardware does (a fault
 * before an instruction at a breakpoint, unless RFLAGS.RF is set; a trap
 * after an instruction that wrote, or read or wrote, a watched byte), with
 * DR6's B0-B3 saying which. While any is on, cpu_run runs one instruction
 * at a time through here, and pages under a data breakpoint keep TLB
 * entries marked TLBF_WATCH, whose accesses take the slow paths that check
 * them (as a debugger's watchpoints do, cpu_set_debug). I/O breakpoints
 * (R/W = 10 with CR4.DE) and general detect (DR7.GD) are not implemented. */
#include "cpu/internal.h"

#define DR7_RW(dr7, n) (((dr7) >> (16 + 4 * (n))) & 3)
#define DR7_LEN(dr7, n) (((dr7) >> (18 + 4 * (n))) & 3)

static unsigned bp_len(uint64_t dr7, unsigned n)
{
    static const uint8_t len[4] = {1, 2, 8, 4};
    return len[DR7_LEN(dr7, n)];
}

/* A data breakpoint watches its length's aligned bytes (the CPU ignores the
 * address's low bits). */
static uint64_t bp_addr(const struct cpu *c, unsigned n)
{
    return c->dr[n] & ~(uint64_t)(bp_len(c->dr7, n) - 1);
}

void guest_dr_changed(struct cpu *c)
{
    uint8_t exec = 0, data = 0;
    for (unsigned n = 0; n < 4; n++) {
        if (!((c->dr7 >> (2 * n)) & 3))
            continue;
        unsigned rw = DR7_RW(c->dr7, n);
        if (rw == 0)
            exec |= (uint8_t)(1u << n);
        else if (rw != 2)
            data |= (uint8_t)(1u << n);
    }
    bool refill = data || c->gbp_data;
    c->gbp_exec = exec;
    c->gbp_data = data;
    if (refill)
        tlb_flush_all(c, true);
}

bool guest_dr_watches_page(const struct cpu *c, uint64_t page)
{
    for (unsigned n = 0; n < 4; n++)
        if (((c->gbp_data >> n) & 1) && bp_addr(c, n) + bp_len(c->dr7, n) > page &&
            bp_addr(c, n) < page + 4096)
            return true;
    return false;
}

void guest_dr_check(struct cpu *c, uint64_t va, unsigned len, bool write)
{
    for (unsigned n = 0; n < 4; n++) {
        if (!((c->gbp_data >> n) & 1) || (!write && DR7_RW(c->dr7, n) == 1))
            continue;
        uint64_t a = bp_addr(c, n);
        if (a < va + len && va < a + bp_len(c->dr7, n))
            c->gwatch_hit |= (uint8_t)(1u << n);
    }
}

void guest_dr_exec(struct cpu *c)
{
    uint8_t hit = 0;
    if (!(c->rflags & F_RF) && !c->db_held) /* the shadow inhibits this fault too */
        for (unsigned n = 0; n < 4; n++)
            if (((c->gbp_exec >> n) & 1) && c->dr[n] == c->rip)
                hit |= (uint8_t)(1u << n);
    if (hit) {
        c->dr6 |= hit;
        raise_exc(c, NULL, EXC_DB, NO_ERR); /* a fault: RIP stays at the instruction */
    }
    /* RF covers this one instruction; an IRET that sets it covers the next */
    c->rflags &= ~(uint64_t)F_RF;
    bool tf = c->rflags & F_TF;
    c->gwatch_hit = 0;
    exec_one(c);
    uint32_t dr6 = c->gwatch_hit | (tf ? 0x4000u : 0);
    c->gwatch_hit = 0;
    guest_db_after(c, dr6);
}

/* A MOV SS or POP SS holds its #DB trap (a watched SS load, TF) over the
 * next instruction, as hardware does: delivered after that one, or inside
 * the handler an INT n, INT3, INTO or SYSCALL entered (exc_deliver_pending
 * for the first three: the #DB's frame then points at the handler), and
 * dropped when that instruction faults or is ICEBP. Linux's mov_ss_trap
 * selftest checks the kernel survives each case (CVE-2018-8897). */
void guest_db_after(struct cpu *c, uint32_t dr6)
{
    uint32_t held = c->db_held;
    c->db_held = 0;
    if (dr6 && !held && c->shadow == 2) {
        c->db_held = dr6;
        return;
    }
    dr6 |= held;
    if (dr6) {
        c->dr6 |= dr6;
        raise_trap(c, NULL, EXC_DB, 0);
    }
}
