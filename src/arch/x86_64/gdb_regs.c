#include "arch/x86_64/gdb_regs.h"
#include "arch/x86_64/fxsave.h"

#include <string.h>

/* Register numbers (the order of the 'g' packet). */
enum {
    R_GPR0 = 0,       /* rax rbx rcx rdx rsi rdi rbp rsp r8..r15 */
    R_RIP = 16,
    R_EFLAGS = 17,
    R_SEG0 = 18,      /* cs ss ds es fs gs */
    R_ST0 = 24,
    R_FCTRL = 32,     /* fctrl fstat ftag fiseg fioff foseg fooff fop */
    R_XMM0 = 40,
    R_MXCSR = 56,
    R_FS_BASE = 57,
    R_GS_BASE = 58,
    R_CR0 = 59,       /* cr0 cr2 cr3 cr4 cr8 efer */
    R_END = 65,
};


static const char target_xml[] =
    "<?xml version=\"1.0\"?>\n"
    "<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
    "<target version=\"1.0\">\n"
    "<architecture>i386:x86-64</architecture>\n"
    "<feature name=\"org.gnu.gdb.i386.core\">\n"
    "<flags id=\"i386_eflags\" size=\"4\">"
    "<field name=\"CF\" start=\"0\" end=\"0\"/><field name=\"\" start=\"1\" end=\"1\"/>"
    "<field name=\"PF\" start=\"2\" end=\"2\"/><field name=\"AF\" start=\"4\" end=\"4\"/>"
    "<field name=\"ZF\" start=\"6\" end=\"6\"/><field name=\"SF\" start=\"7\" end=\"7\"/>"
    "<field name=\"TF\" start=\"8\" end=\"8\"/><field name=\"IF\" start=\"9\" end=\"9\"/>"
    "<field name=\"DF\" start=\"10\" end=\"10\"/><field name=\"OF\" start=\"11\" end=\"11\"/>"
    "<field name=\"NT\" start=\"14\" end=\"14\"/><field name=\"RF\" start=\"16\" end=\"16\"/>"
    "<field name=\"VM\" start=\"17\" end=\"17\"/><field name=\"AC\" start=\"18\" end=\"18\"/>"
    "<field name=\"VIF\" start=\"19\" end=\"19\"/><field name=\"VIP\" start=\"20\" end=\"20\"/>"
    "<field name=\"ID\" start=\"21\" end=\"21\"/></flags>\n"
    "<reg name=\"rax\" bitsize=\"64\" type=\"int64\" regnum=\"0\"/>\n"
    "<reg name=\"rbx\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rcx\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rdx\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rsi\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rdi\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rbp\" bitsize=\"64\" type=\"data_ptr\"/>\n"
    "<reg name=\"rsp\" bitsize=\"64\" type=\"data_ptr\"/>\n"
    "<reg name=\"r8\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r9\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r10\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r11\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r12\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r13\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r14\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r15\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rip\" bitsize=\"64\" type=\"code_ptr\"/>\n"
    "<reg name=\"eflags\" bitsize=\"32\" type=\"i386_eflags\"/>\n"
    "<reg name=\"cs\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"ss\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"ds\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"es\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"fs\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"gs\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"st0\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st1\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st2\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st3\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st4\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st5\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st6\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st7\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"fctrl\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fstat\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"ftag\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fiseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fioff\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"foseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fooff\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fop\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "</feature>\n"
    "<feature name=\"org.gnu.gdb.i386.sse\">\n"
    "<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/>"
    "<vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>"
    "<vector id=\"v16i8\" type=\"int8\" count=\"16\"/>"
    "<vector id=\"v8i16\" type=\"int16\" count=\"8\"/>"
    "<vector id=\"v4i32\" type=\"int32\" count=\"4\"/>"
    "<vector id=\"v2i64\" type=\"int64\" count=\"2\"/>"
    "<union id=\"vec128\">"
    "<field name=\"v4_float\" type=\"v4f\"/><field name=\"v2_double\" type=\"v2d\"/>"
    "<field name=\"v16_int8\" type=\"v16i8\"/><field name=\"v8_int16\" type=\"v8i16\"/>"
    "<field name=\"v4_int32\" type=\"v4i32\"/><field name=\"v2_int64\" type=\"v2i64\"/>"
    "<field name=\"uint128\" type=\"uint128\"/></union>\n"
    "<flags id=\"i386_mxcsr\" size=\"4\">"
    "<field name=\"IE\" start=\"0\" end=\"0\"/><field name=\"DE\" start=\"1\" end=\"1\"/>"
    "<field name=\"ZE\" start=\"2\" end=\"2\"/><field name=\"OE\" start=\"3\" end=\"3\"/>"
    "<field name=\"UE\" start=\"4\" end=\"4\"/><field name=\"PE\" start=\"5\" end=\"5\"/>"
    "<field name=\"DAZ\" start=\"6\" end=\"6\"/><field name=\"IM\" start=\"7\" end=\"7\"/>"
    "<field name=\"DM\" start=\"8\" end=\"8\"/><field name=\"ZM\" start=\"9\" end=\"9\"/>"
    "<field name=\"OM\" start=\"10\" end=\"10\"/><field name=\"UM\" start=\"11\" end=\"11\"/>"
    "<field name=\"PM\" start=\"12\" end=\"12\"/><field name=\"FZ\" start=\"15\" end=\"15\"/>"
    "</flags>\n"
    "<reg name=\"xmm0\" bitsize=\"128\" type=\"vec128\" regnum=\"40\"/>\n"
    "<reg name=\"xmm1\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm2\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm3\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm4\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm5\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm6\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm7\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm8\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm9\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm10\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm11\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm12\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm13\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm14\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm15\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"mxcsr\" bitsize=\"32\" type=\"i386_mxcsr\" group=\"vector\"/>\n"
    "</feature>\n"
    "<feature name=\"org.gnu.gdb.i386.segments\">\n"
    "<reg name=\"fs_base\" bitsize=\"64\" type=\"int\" regnum=\"57\"/>\n"
    "<reg name=\"gs_base\" bitsize=\"64\" type=\"int\"/>\n"
    "</feature>\n"
    "<feature name=\"org.ember.x86-64.sys\">\n"
    "<reg name=\"cr0\" bitsize=\"64\" type=\"int\" regnum=\"59\"/>\n"
    "<reg name=\"cr2\" bitsize=\"64\" type=\"int\"/>\n"
    "<reg name=\"cr3\" bitsize=\"64\" type=\"int\"/>\n"
    "<reg name=\"cr4\" bitsize=\"64\" type=\"int\"/>\n"
    "<reg name=\"cr8\" bitsize=\"64\" type=\"int\"/>\n"
    "<reg name=\"efer\" bitsize=\"64\" type=\"int\"/>\n"
    "</feature>\n"
    "</target>\n";

const char *gdb_x86_target_xml(void)
{
    return target_xml;
}

size_t gdb_x86_reg_slot(unsigned regnum, size_t *offset)
{
    static const struct { unsigned first, size; } groups[] = {
        {R_GPR0, 8}, {R_RIP, 8}, {R_EFLAGS, 4}, {R_SEG0, 4}, {R_ST0, 10}, {R_FCTRL, 4},
        {R_XMM0, 16}, {R_MXCSR, 4}, {R_FS_BASE, 8}, {R_END, 0}};
    size_t off = 0;
    for (unsigned g = 0; groups[g].size; g++) {
        unsigned next = groups[g + 1].first;
        if (regnum < next) {
            *offset = off + (size_t)(regnum - groups[g].first) * groups[g].size;
            return groups[g].size;
        }
        off += (size_t)(next - groups[g].first) * groups[g].size;
    }
    return 0;
}

static void put(uint8_t *out, unsigned regnum, uint64_t v)
{
    size_t off;
    size_t size = gdb_x86_reg_slot(regnum, &off);
    for (size_t i = 0; i < size && i < 8; i++)
        out[off + i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get(const uint8_t *in, unsigned regnum)
{
    size_t off;
    size_t size = gdb_x86_reg_slot(regnum, &off);
    uint64_t v = 0;
    for (size_t i = 0; i < size && i < 8; i++)
        v |= (uint64_t)in[off + i] << (8 * i);
    return v;
}

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The order of the GPRs in the 'g' packet. */
static uint64_t *gpr_slot(struct x86_regs *r, unsigned i)
{
    uint64_t *slots[16] = {&r->rax, &r->rbx, &r->rcx, &r->rdx, &r->rsi, &r->rdi,
                           &r->rbp, &r->rsp, &r->r8,  &r->r9,  &r->r10, &r->r11,
                           &r->r12, &r->r13, &r->r14, &r->r15};
    return slots[i];
}

/* The full x87 tag word from FXSAVE's abridged one: 0 valid, 1 zero,
 * 2 special, 3 empty, per physical register. */
static uint16_t full_tag_word(const uint8_t *fx)
{
    unsigned top = (le(fx + FX_FSW, 2) >> 11) & 7;
    uint16_t tags = 0;
    for (unsigned phys = 0; phys < 8; phys++) {
        unsigned tag = 3;
        if (fx[FX_FTW] & (1u << phys)) {
            const uint8_t *st = fx + FX_ST0 + 16 * ((phys - top) & 7);
            uint64_t mant = le(st, 8);
            unsigned exp = (unsigned)le(st + 8, 2) & 0x7fff;
            if (exp == 0x7fff)
                tag = 2;
            else if (exp == 0)
                tag = mant ? 2 : 1;
            else
                tag = (mant >> 63) ? 0 : 2;
        }
        tags |= (uint16_t)(tag << (2 * phys));
    }
    return tags;
}

static void encode_fpu(const uint8_t *fx, uint8_t *out)
{
    size_t off;
    for (unsigned i = 0; i < 8; i++) {
        gdb_x86_reg_slot(R_ST0 + i, &off);
        memcpy(out + off, fx + FX_ST0 + 16 * i, 10);
    }
    put(out, R_FCTRL + 0, le(fx + FX_FCW, 2));
    put(out, R_FCTRL + 1, le(fx + FX_FSW, 2));
    put(out, R_FCTRL + 2, full_tag_word(fx));
    put(out, R_FCTRL + 3, 0); /* fiseg: the 64-bit format has no selectors */
    put(out, R_FCTRL + 4, le(fx + FX_FIP, 4));
    put(out, R_FCTRL + 5, 0);
    put(out, R_FCTRL + 6, le(fx + FX_FDP, 4));
    put(out, R_FCTRL + 7, le(fx + FX_FOP, 2));
    for (unsigned i = 0; i < 16; i++) {
        gdb_x86_reg_slot(R_XMM0 + i, &off);
        memcpy(out + off, fx + FX_XMM0 + 16 * i, 16);
    }
    put(out, R_MXCSR, le(fx + FX_MXCSR, 4));
}

void gdb_x86_encode(const struct gdb_x86_state *st, uint8_t out[GDB_X86_REGS_SIZE])
{
    memset(out, 0, GDB_X86_REGS_SIZE);
    struct x86_regs r = st->regs;
    for (unsigned i = 0; i < 16; i++)
        put(out, R_GPR0 + i, *gpr_slot(&r, i));
    put(out, R_RIP, r.rip);
    put(out, R_EFLAGS, r.rflags);
    const struct x86_sregs *s = &st->sregs;
    const struct x86_segment *segs[6] = {&s->cs, &s->ss, &s->ds, &s->es, &s->fs, &s->gs};
    for (unsigned i = 0; i < 6; i++)
        put(out, R_SEG0 + i, segs[i]->selector);
    encode_fpu(st->fxsave, out);
    put(out, R_FS_BASE, s->fs.base);
    put(out, R_GS_BASE, s->gs.base);
    const uint64_t ctl[6] = {s->cr0, s->cr2, s->cr3, s->cr4, s->cr8, s->efer};
    for (unsigned i = 0; i < 6; i++)
        put(out, R_CR0 + i, ctl[i]);
}

static void decode_fpu(uint8_t *fx, const uint8_t *in)
{
    size_t off;
    for (unsigned i = 0; i < 8; i++) {
        gdb_x86_reg_slot(R_ST0 + i, &off);
        memcpy(fx + FX_ST0 + 16 * i, in + off, 10);
    }
    uint16_t fcw = (uint16_t)get(in, R_FCTRL), fsw = (uint16_t)get(in, R_FCTRL + 1);
    uint16_t ftag = (uint16_t)get(in, R_FCTRL + 2), fop = (uint16_t)get(in, R_FCTRL + 7);
    memcpy(fx + FX_FCW, &fcw, 2);
    memcpy(fx + FX_FSW, &fsw, 2);
    uint8_t abridged = 0;
    for (unsigned phys = 0; phys < 8; phys++)
        if (((ftag >> (2 * phys)) & 3) != 3)
            abridged |= (uint8_t)(1u << phys);
    fx[FX_FTW] = abridged;
    memcpy(fx + FX_FOP, &fop, 2);
    for (unsigned i = 0; i < 16; i++) {
        gdb_x86_reg_slot(R_XMM0 + i, &off);
        memcpy(fx + FX_XMM0 + 16 * i, in + off, 16);
    }
    uint32_t mxcsr = (uint32_t)get(in, R_MXCSR);
    memcpy(fx + FX_MXCSR, &mxcsr, 4);
}

bool gdb_x86_decode(struct gdb_x86_state *st, const uint8_t in[GDB_X86_REGS_SIZE])
{
    /* What cannot be written must come back unchanged. */
    uint8_t now[GDB_X86_REGS_SIZE];
    gdb_x86_encode(st, now);
    size_t seg_off, tail_off;
    gdb_x86_reg_slot(R_SEG0, &seg_off);
    gdb_x86_reg_slot(R_FS_BASE, &tail_off);
    if (memcmp(now + seg_off, in + seg_off, 24) ||
        memcmp(now + tail_off, in + tail_off, GDB_X86_REGS_SIZE - tail_off))
        return false;
    for (unsigned i = 0; i < 16; i++)
        *gpr_slot(&st->regs, i) = get(in, R_GPR0 + i);
    st->regs.rip = get(in, R_RIP);
    st->regs.rflags = get(in, R_EFLAGS) | 2; /* bit 1 always reads 1 */
    decode_fpu(st->fxsave, in);
    return true;
}
