/* The protocol: packets in, replies out, the target driven. */
#include "debug/gdbstub.h"

#include <stdio.h>
#include <string.h>

#include "debug/gdb_internal.h"
#include "util/log.h"

#define SIGINT_NR 2
#define SIGTRAP_NR 5

static void reply(struct gdbstub *s, const char *text)
{
    gdb_conn_send_packet(s, text, strlen(text));
}

static void reply_error(struct gdbstub *s, int code)
{
    char e[8];
    snprintf(e, sizeof(e), "E%02x", code & 0xff);
    reply(s, e);
}

/* Thread ids: vCPU n is thread n+1; 0 "any" and -1 "all". Returns false for
 * a malformed id or one beyond the vCPUs. */
static bool parse_thread(const struct gdbstub *s, const char *p, int *cpu)
{
    if (!strcmp(p, "-1")) {
        *cpu = -1;
        return true;
    }
    uint64_t id;
    if (!gdb_parse_hex(&p, &id) || *p || id > s->target.nr_cpus)
        return false;
    *cpu = id == 0 ? -1 : (int)id - 1;
    return true;
}

/* "ADDR,LEN" then 'end' (':' or NUL). */
static bool parse_addr_len(const char **p, uint64_t *addr, uint64_t *len, char end)
{
    if (!gdb_parse_hex(p, addr) || **p != ',')
        return false;
    (*p)++;
    if (!gdb_parse_hex(p, len) || **p != end)
        return false;
    if (end)
        (*p)++;
    return true;
}

/* --- breakpoints ---------------------------------------------------------------- */

bool gdbstub_owns_breakpoint(const struct gdbstub *s, uint64_t pc)
{
    for (unsigned i = 0; i < s->nr_sw; i++)
        if (s->sw[i].va == pc)
            return true;
    return false;
}

static void insert_sw(struct gdbstub *s)
{
    static const uint8_t int3 = 0xcc;
    for (unsigned i = 0; i < s->nr_sw; i++) {
        struct gdb_sw_breakpoint *b = &s->sw[i];
        if (b->inserted)
            continue;
        if (s->target.ops->read_mem(s->target.ctx, b->cpu, b->va, &b->saved, 1) ||
            s->target.ops->write_mem(s->target.ctx, b->cpu, b->va, &int3, 1)) {
            log_warn("gdb: cannot insert the breakpoint at %#llx (not mapped now)",
                     (unsigned long long)b->va);
            continue;
        }
        b->inserted = true;
    }
}

static void remove_sw(struct gdbstub *s)
{
    for (unsigned i = 0; i < s->nr_sw; i++) {
        struct gdb_sw_breakpoint *b = &s->sw[i];
        if (b->inserted &&
            s->target.ops->write_mem(s->target.ctx, b->cpu, b->va, &b->saved, 1))
            log_warn("gdb: cannot remove the breakpoint at %#llx",
                     (unsigned long long)b->va);
        b->inserted = false;
    }
}

void gdbstub_lift_breakpoints(struct gdbstub *s, bool lift)
{
    if (lift)
        remove_sw(s);
    else if (s->running)
        insert_sw(s);
}

static bool add_sw(struct gdbstub *s, uint64_t va)
{
    if (gdbstub_owns_breakpoint(s, va))
        return true;
    uint8_t byte;
    if (s->nr_sw >= GDB_MAX_SW_BREAKPOINTS ||
        s->target.ops->read_mem(s->target.ctx, s->g_cpu, va, &byte, 1))
        return false;
    s->sw[s->nr_sw++] = (struct gdb_sw_breakpoint){.va = va, .cpu = s->g_cpu};
    return true;
}

static bool del_sw(struct gdbstub *s, uint64_t va)
{
    for (unsigned i = 0; i < s->nr_sw; i++)
        if (s->sw[i].va == va) {
            s->sw[i] = s->sw[--s->nr_sw];
            return true;
        }
    return false;
}

/* Z1-Z4: a debug register. x86 watches 1, 2, 4 or 8 aligned bytes and has
 * no read-only watchpoint: reads are watched as accesses. */
static bool add_hw(struct gdbstub *s, int type, uint64_t addr, uint64_t len)
{
    if (type == 1)
        len = 1;
    else if (!s->target.watchpoints || (len != 1 && len != 2 && len != 4 && len != 8) ||
             (addr & (len - 1)))
        return false;
    for (unsigned n = 0; n < 4; n++)
        if (!s->hw[n].used) {
            s->hw[n] = (struct gdb_hw_slot){true, type, addr, (unsigned)len};
            return true;
        }
    return false;
}

static bool del_hw(struct gdbstub *s, int type, uint64_t addr)
{
    for (unsigned n = 0; n < 4; n++)
        if (s->hw[n].used && s->hw[n].type == type && s->hw[n].addr == addr) {
            s->hw[n].used = false;
            return true;
        }
    return false;
}

void gdb_debug_state(const struct gdbstub *s, struct accel_debug *dbg)
{
    static const unsigned len_bits[9] = {[1] = 0, [2] = 1, [4] = 3, [8] = 2};
    memset(dbg, 0, sizeof(*dbg));
    if (s->nr_sw)
        dbg->flags |= ACCEL_DEBUG_SW_BP;
    for (unsigned n = 0; n < 4; n++) {
        const struct gdb_hw_slot *h = &s->hw[n];
        if (!h->used)
            continue;
        unsigned rw = h->type == 1 ? 0 : h->type == 2 ? 1 : 3;
        dbg->flags |= ACCEL_DEBUG_HW_BP;
        dbg->dr[n] = h->addr;
        dbg->dr7 |= ACCEL_DR7_ENABLE(n) | ACCEL_DR7_RW(n, rw) |
                    ACCEL_DR7_LEN(n, rw ? len_bits[h->len] : 0);
    }
}

static void handle_z(struct gdbstub *s, const char *p, bool insert)
{
    int type = p[0] - '0';
    uint64_t addr, kind;
    const char *q = p + 2;
    if (type < 0 || type > 4 || p[1] != ',' || !gdb_parse_hex(&q, &addr) || *q++ != ',' ||
        !gdb_parse_hex(&q, &kind) || (*q && *q != ';')) {
        reply_error(s, 1);
        return;
    }
    if (type == 3 && insert && !s->target.watchpoints) {
        reply(s, ""); /* not supported */
        return;
    }
    bool ok = type == 0 ? (insert ? add_sw(s, addr) : del_sw(s, addr))
                        : (insert ? add_hw(s, type, addr, kind) : del_hw(s, type, addr));
    if (!ok && insert && type >= 2 && !s->target.watchpoints)
        reply(s, ""); /* the engine: GDB then says it cannot */
    else
        reply(s, ok ? "OK" : "E0e");
}

/* --- running and stopping ---------------------------------------------------------- */

static void resume(struct gdbstub *s, int step)
{
    struct accel_debug dbg;
    gdb_debug_state(s, &dbg);
    insert_sw(s);
    s->running = true;
    if (s->target.ops->resume(s->target.ctx, &dbg, step)) {
        log_warn("gdb: cannot resume the guest: %s", err_msg());
        s->running = false;
        remove_sw(s);
        reply_error(s, 0x0e);
    }
}

/* Which watchpoint or breakpoint a debug exit's DR6 names. */
static void describe_hw_stop(const struct gdbstub *s, uint64_t dr6, char *out, size_t size)
{
    out[0] = '\0';
    for (unsigned n = 0; n < 4; n++) {
        if (!(dr6 & (1ull << n)) || !s->hw[n].used)
            continue;
        const struct gdb_hw_slot *h = &s->hw[n];
        if (h->type == 1)
            snprintf(out, size, "hwbreak:;");
        else
            snprintf(out, size, "%swatch:%llx;", h->type == 2 ? "" : h->type == 3 ? "r" : "a",
                     (unsigned long long)h->addr);
        return;
    }
}

void gdbstub_stopped(struct gdbstub *s, unsigned cpu, enum gdb_stop_kind kind,
                     const struct accel_exit *exit)
{
    remove_sw(s);
    s->stopped_once = true;
    if (s->fd < 0) {
        /* a stop nobody waits for (the client left meanwhile): run on */
        s->running = false;
        gdb_detach(s);
        return;
    }
    s->stop_cpu = cpu;
    s->g_cpu = cpu;
    char why[48] = "";
    int sig = SIGTRAP_NR;
    if (kind == GDB_STOP_INTERRUPT)
        sig = SIGINT_NR;
    else if (exit && exit->debug.vector == 3)
        snprintf(why, sizeof(why), "swbreak:;");
    else if (exit)
        describe_hw_stop(s, exit->debug.dr6, why, sizeof(why));
    snprintf(s->stop_reply, sizeof(s->stop_reply), "T%02xthread:%x;%s", sig, cpu + 1, why);
    if (s->running) {
        s->running = false;
        reply(s, s->stop_reply);
    }
}

void gdbstub_vm_ended(struct gdbstub *s, int status)
{
    if (s->fd < 0)
        return;
    char w[8];
    snprintf(w, sizeof(w), "W%02x", status & 0xff);
    s->running = false;
    reply(s, w);
    gdb_conn_flush(s);
}

/* --- registers and memory ---------------------------------------------------------- */

static int read_state(struct gdbstub *s, struct gdb_x86_state *st)
{
    return s->target.ops->get_regs(s->target.ctx, s->g_cpu, st);
}

static void handle_g(struct gdbstub *s)
{
    struct gdb_x86_state st;
    uint8_t raw[GDB_X86_REGS_SIZE];
    if (read_state(s, &st)) {
        reply_error(s, 0x0e);
        return;
    }
    gdb_x86_encode(&st, raw);
    gdb_bytes_to_hex(raw, sizeof(raw), s->reply);
    reply(s, s->reply);
}

static void handle_G(struct gdbstub *s, const char *hex, size_t len)
{
    struct gdb_x86_state st;
    uint8_t raw[GDB_X86_REGS_SIZE];
    if (len != 2 * sizeof(raw) || !gdb_hex_to_bytes(hex, raw, sizeof(raw)) ||
        read_state(s, &st)) {
        reply_error(s, 0x16);
        return;
    }
    bool ok = gdb_x86_decode(&st, raw) &&
              !s->target.ops->set_regs(s->target.ctx, s->g_cpu, &st);
    reply(s, ok ? "OK" : "E16");
}

/* p/P: one register. */
static void handle_p(struct gdbstub *s, const char *p, bool write)
{
    uint64_t regnum;
    size_t off, size;
    struct gdb_x86_state st;
    uint8_t raw[GDB_X86_REGS_SIZE];
    if (!gdb_parse_hex(&p, &regnum) || regnum > 1000 ||
        !(size = gdb_x86_reg_slot((unsigned)regnum, &off)) || read_state(s, &st)) {
        reply_error(s, 0x16);
        return;
    }
    gdb_x86_encode(&st, raw);
    if (!write) {
        gdb_bytes_to_hex(raw + off, size, s->reply);
        reply(s, s->reply);
        return;
    }
    bool ok = *p++ == '=' && strlen(p) == 2 * size && gdb_hex_to_bytes(p, raw + off, size) &&
              gdb_x86_decode(&st, raw) &&
              !s->target.ops->set_regs(s->target.ctx, s->g_cpu, &st);
    reply(s, ok ? "OK" : "E16");
}

static void handle_m(struct gdbstub *s, const char *p)
{
    uint64_t addr, len;
    uint8_t data[GDB_PACKET_MAX / 2];
    if (!parse_addr_len(&p, &addr, &len, '\0') || len > sizeof(data)) {
        reply_error(s, 0x16);
        return;
    }
    /* all of it, or as far as it is mapped: GDB reads across the end of
     * what exists */
    size_t done = (size_t)len;
    if (s->target.ops->read_mem(s->target.ctx, s->g_cpu, addr, data, (size_t)len)) {
        done = 0;
        while (done < len &&
               !s->target.ops->read_mem(s->target.ctx, s->g_cpu, addr + done, data + done, 1))
            done++;
    }
    if (!done && len) {
        reply_error(s, 0x0e);
        return;
    }
    gdb_bytes_to_hex(data, done, s->reply);
    reply(s, s->reply);
}

/* M (hex) and X (binary) writes. */
static void handle_write_mem(struct gdbstub *s, const char *p, size_t pkt_len, bool binary)
{
    const char *start = p;
    uint64_t addr, len;
    uint8_t data[GDB_PACKET_MAX];
    if (!parse_addr_len(&p, &addr, &len, ':') || len > sizeof(data)) {
        reply_error(s, 0x16);
        return;
    }
    size_t left = pkt_len - (size_t)(p - start);
    if (binary ? left != len : (left != 2 * len || !gdb_hex_to_bytes(p, data, (size_t)len))) {
        reply_error(s, 0x16);
        return;
    }
    if (binary)
        memcpy(data, p, (size_t)len);
    if (len && s->target.ops->write_mem(s->target.ctx, s->g_cpu, addr, data, (size_t)len))
        reply_error(s, 0x0e);
    else
        reply(s, "OK");
}

/* --- queries ------------------------------------------------------------------------- */

/* qXfer:features:read:target.xml:OFFSET,LENGTH */
static void handle_xfer(struct gdbstub *s, const char *p)
{
    const char *prefix = "features:read:target.xml:";
    uint64_t off, len;
    if (strncmp(p, prefix, strlen(prefix))) {
        reply(s, "");
        return;
    }
    p += strlen(prefix);
    if (!parse_addr_len(&p, &off, &len, '\0')) {
        reply_error(s, 0x16);
        return;
    }
    const char *xml = gdb_x86_target_xml();
    size_t total = strlen(xml);
    if (off > total)
        off = total;
    if (len > GDB_PACKET_MAX - 1)
        len = GDB_PACKET_MAX - 1;
    size_t n = total - off < len ? total - (size_t)off : (size_t)len;
    s->reply[0] = off + n < total ? 'm' : 'l';
    memcpy(s->reply + 1, xml + off, n);
    gdb_conn_send_packet(s, s->reply, n + 1);
}

static void handle_thread_info(struct gdbstub *s)
{
    int n = snprintf(s->reply, sizeof(s->reply), "m");
    for (unsigned i = 0; i < s->target.nr_cpus && n < (int)sizeof(s->reply) - 12; i++)
        n += snprintf(s->reply + n, sizeof(s->reply) - (size_t)n, "%s%x", i ? "," : "", i + 1);
    reply(s, s->reply);
}

static void handle_extra_info(struct gdbstub *s, const char *p)
{
    int cpu;
    char text[32];
    if (!parse_thread(s, p, &cpu) || cpu < 0) {
        reply_error(s, 0x16);
        return;
    }
    snprintf(text, sizeof(text), "vCPU %d", cpu);
    gdb_bytes_to_hex((const uint8_t *)text, strlen(text), s->reply);
    reply(s, s->reply);
}

static void handle_query(struct gdbstub *s, const char *p)
{
    if (!strncmp(p, "qSupported", 10)) {
        snprintf(s->reply, sizeof(s->reply),
                 "PacketSize=%x;qXfer:features:read+;swbreak+;hwbreak+;QStartNoAckMode+",
                 GDB_PACKET_MAX - 16);
        reply(s, s->reply);
    } else if (!strncmp(p, "qXfer:", 6)) {
        handle_xfer(s, p + 6);
    } else if (!strcmp(p, "qfThreadInfo")) {
        handle_thread_info(s);
    } else if (!strcmp(p, "qsThreadInfo")) {
        reply(s, "l");
    } else if (!strcmp(p, "qC")) {
        snprintf(s->reply, sizeof(s->reply), "QC%x", s->g_cpu + 1);
        reply(s, s->reply);
    } else if (!strncmp(p, "qAttached", 9)) {
        reply(s, "1");
    } else if (!strncmp(p, "qThreadExtraInfo,", 17)) {
        handle_extra_info(s, p + 17);
    } else {
        reply(s, "");
    }
}

/* --- dispatch --------------------------------------------------------------------------- */

static void handle_H(struct gdbstub *s, const char *p)
{
    int cpu;
    if ((p[0] != 'g' && p[0] != 'c') || !parse_thread(s, p + 1, &cpu)) {
        reply_error(s, 0x16);
        return;
    }
    if (p[0] == 'g')
        s->g_cpu = cpu < 0 ? s->g_cpu : (unsigned)cpu;
    else
        s->c_cpu = cpu;
    reply(s, "OK");
}

static void handle_T(struct gdbstub *s, const char *p)
{
    int cpu;
    reply(s, parse_thread(s, p, &cpu) && cpu >= 0 ? "OK" : "E16");
}

/* c/s [ADDR] and C/S SIG[;ADDR]: the signal is not the guest's business. */
static void handle_resume(struct gdbstub *s, const char *p, bool step, bool with_signal)
{
    uint64_t v;
    if (with_signal && (!gdb_parse_hex(&p, &v) || (*p && *p++ != ';'))) {
        reply_error(s, 0x16);
        return;
    }
    if (*p) {
        struct gdb_x86_state st;
        if (!gdb_parse_hex(&p, &v) || *p || read_state(s, &st)) {
            reply_error(s, 0x16);
            return;
        }
        st.regs.rip = v;
        if (s->target.ops->set_regs(s->target.ctx, s->g_cpu, &st)) {
            reply_error(s, 0x0e);
            return;
        }
    }
    int cpu = s->c_cpu >= 0 ? s->c_cpu : (int)s->g_cpu;
    resume(s, step ? cpu : -1);
}

/* The client leaves: the guest runs on without the debugger. */
void gdb_detach(struct gdbstub *s)
{
    if (s->running) {
        /* stop it to take the breakpoints out safely */
        s->target.ops->stop(s->target.ctx);
        s->running = false;
        s->stopped_once = true;
    }
    remove_sw(s);
    s->nr_sw = 0;
    memset(s->hw, 0, sizeof(s->hw));
    s->no_ack = false;
    s->c_cpu = -1;
    if (s->stopped_once) {
        struct accel_debug none = {0};
        if (s->target.ops->resume(s->target.ctx, &none, -1))
            log_warn("gdb: cannot resume the guest: %s", err_msg());
    }
    s->stopped_once = false;
}

static void handle_general(struct gdbstub *s, const char *pkt, size_t len)
{
    switch (pkt[0]) {
    case 'g': handle_g(s); break;
    case 'G': handle_G(s, pkt + 1, len - 1); break;
    case 'p': handle_p(s, pkt + 1, false); break;
    case 'P': handle_p(s, pkt + 1, true); break;
    case 'm': handle_m(s, pkt + 1); break;
    case 'M': handle_write_mem(s, pkt + 1, len - 1, false); break;
    case 'X': handle_write_mem(s, pkt + 1, len - 1, true); break;
    case 'Z': handle_z(s, pkt + 1, true); break;
    case 'z': handle_z(s, pkt + 1, false); break;
    case 'H': handle_H(s, pkt + 1); break;
    case 'T': handle_T(s, pkt + 1); break;
    case 'q': handle_query(s, pkt); break;
    default: reply(s, ""); break; /* not supported: the client does without */
    }
}

void gdbstub_handle_packet(struct gdbstub *s, const char *pkt, size_t len)
{
    if (!len) {
        reply(s, "");
        return;
    }
    if (s->running && pkt[0] != 'D' && pkt[0] != 'k') {
        /* only an interrupt is expected while the guest runs */
        log_debug("gdb: packet '%c' while the guest runs: ignored", pkt[0]);
        return;
    }
    switch (pkt[0]) {
    case '?': reply(s, s->stop_reply); break;
    case 'c': handle_resume(s, pkt + 1, false, false); break;
    case 's': handle_resume(s, pkt + 1, true, false); break;
    case 'C': handle_resume(s, pkt + 1, false, true); break;
    case 'S': handle_resume(s, pkt + 1, true, true); break;
    case 'D':
        reply(s, "OK");
        gdb_conn_flush(s);
        gdb_detach(s);
        gdb_conn_close(s);
        break;
    case 'k':
        gdb_detach(s);
        gdb_conn_close(s);
        s->target.ops->kill(s->target.ctx);
        break;
    case 'Q':
        if (!strcmp(pkt, "QStartNoAckMode")) {
            reply(s, "OK");
            s->no_ack = true;
        } else {
            reply(s, "");
        }
        break;
    case 'v':
        reply(s, ""); /* vCont, vMustReplyEmpty ...: without them GDB uses Hc, c, s */
        break;
    default:
        handle_general(s, pkt, len);
        break;
    }
}
