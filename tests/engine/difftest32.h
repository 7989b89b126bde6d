/* difftest's 32-bit cases: integer instructions of 32-bit code (a 64-bit
 * kernel's i386 processes), run natively in compatibility mode and on the
 * engine the same way. Included by difftest.c.
 *
 * Natively the prologue ends in a far JMP to Linux's 32-bit user code
 * selector (__USER32_CS, 0x23) instead of a near one, with DS and ES holding
 * the user data selector (null ones fault in 32-bit code); the int3 fill
 * ends the case as in 64-bit code, and the kernel delivers the signal to
 * the 64-bit handler. The engine starts at the instruction with the same
 * selectors, their descriptors copied from what LAR/LSL show natively. */
#define USER32_CS 0x23u
#define USER_DS 0x2bu
#define FAR_SLOT (STATE_VA + 0x810)
/* dwords of the stack page that hold selectors, for POP Sreg and POPA */
#define SEL_SLOTS_OFF 0x7e0u

static const uint8_t prologue32_tail[] = {
    0xff, 0x2c, 0x25, 0x10, 0x08, 0x03, 0x10, /* jmp far [FAR_SLOT] (m16:32) */
};
_Static_assert(FAR_SLOT == 0x10030810ull, "the prologue's far pointer address");

/* Whether the host runs 32-bit user code: Linux's 0x23 is a present,
 * 32-bit (D = 1, L = 0) code segment. */
static bool host_runs_32bit_code(const struct shm *s)
{
    uint64_t ar = s->gdt_ar[USER32_CS >> 3];
    return ar != ~0ull && (ar & 0x8000) && (ar & 0x800) && (ar & (1u << 22)) &&
           !(ar & (1u << 21));
}

/* The 64-bit prologue with its last near JMP replaced by the far one. */
static void fill_code32(uint8_t *code, const uint8_t *insn, unsigned len)
{
    fill_code(code, insn, len);
    memcpy(code + PRO_OFF + PRO_LEN - 5, prologue32_tail, sizeof(prologue32_tail));
}

static void set_far_slot(uint8_t *state_page)
{
    uint32_t off = (uint32_t)INSN_VA;
    uint16_t sel = USER32_CS;
    memcpy(state_page + (FAR_SLOT - STATE_VA), &off, 4);
    memcpy(state_page + (FAR_SLOT - STATE_VA) + 4, &sel, 2);
}

/* Selectors POP Sreg and POPA find on the stack: valid, null, the wrong
 * kind, RPL 0, past the GDT. */
static void stack_selectors(uint8_t *stack)
{
    static const uint32_t sels[] = {USER_DS, USER32_CS, 0, 0x33, 0x28, 0x10, 0x2b | 0xabcd0000,
                                    0x7b, 0xfff8, 0x2b, 0x18, 3};
    memcpy(stack + SEL_SLOTS_OFF, sels, sizeof(sels));
}

/* Opcodes of 32-bit code worth a case of their own: what only it has, its
 * stack forms, and what differs from 64-bit code. */
static const uint16_t op32_focus[] = {
    0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x60, 0x61, 0xc8, 0xc9,
    0xce, 0xd4, 0xd5, 0x9c, 0x9d, 0x50, 0x58, 0x68, 0x6a, 0xe8, 0xc3, 0xc2, 0x8f, 0xff, 0x40,
    0x48, 0x0fa0, 0x0fa1, 0x0fa8, 0x0fa9,
};

static int gen_int32(struct tcase *t)
{
    uint8_t b[24];
    unsigned n = 0;
    unsigned npfx = rn(4) == 0 ? 1 + rn(2) : 0;
    static const uint8_t pfx[] = {0x66, 0x66, 0x66, 0xf2, 0xf3, 0xf0, 0x2e, 0x3e, 0x26, 0x36};
    for (unsigned k = 0; k < npfx; k++)
        b[n++] = pfx[rn(sizeof(pfx))];
    if (rn(3) == 0) {
        uint16_t op = op32_focus[rn(sizeof(op32_focus) / sizeof(op32_focus[0]))];
        if (op > 0xff)
            b[n++] = 0x0f;
        b[n++] = (uint8_t)op;
    } else {
        if (rn(10) < 3)
            b[n++] = 0x0f;
        b[n++] = (uint8_t)rnd();
    }
    uint8_t modrm = (uint8_t)rnd();
    if (rn(2))
        modrm |= 0xc0;
    b[n++] = modrm;
    for (unsigned k = 0; k < 10; k++)
        b[n++] = (uint8_t)rnd();
    if (b[npfx] == 0xd4 || b[npfx] == 0xd5)
        b[npfx + 1] = rn(3) ? 10 : (uint8_t)edge64(); /* AAM/AAD: mostly base 10 */
    ZydisDecodedInstruction zi;
    ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
    struct dec d;
    int r = decode_mode(b, 15, &d, true);
    bool zinvalid = ZYAN_FAILED(ZydisDecoderDecodeFull(&zdec32, b, n, &zi, zo));
    if (zinvalid) {
        if (r == DEC_OK || rn(20) || (d.map == 1 && d.op == 0x01))
            return -1;
        zi.length = 15;
        memset(&d, 0, sizeof(d));
        d.base = d.index = NOREG;
    } else {
        /* what the engine does not run in 32-bit code (#UD and a warning,
         * not the CPU's answer), and what must not run natively */
        if (r != DEC_OK || excluded(&d, b))
            return -1;
        if (d.map == 0 && (d.op == 0xcd || d.op == 0xcc || d.op == 0xf1))
            return -1; /* INT n/INT3/INT1: the 64-bit cases have them */
        if (d.seg == SEG_FS || d.seg == SEG_GS)
            return -1;
        if (d.map == 1 && (d.op == 0xa0 || d.op == 0xa1 || d.op == 0xa8 || d.op == 0xa9))
            return -1; /* FS and GS hold glibc's TLS natively */
    }
    t->mode32 = 1;
    t->len = zi.length;
    memcpy(t->insn, b, zi.length);
    for (int k = 0; k < 8; k++)
        t->r[k] = (uint32_t)edge64();
    for (int k = 8; k < 16; k++)
        t->r[k] = edge64();
    t->r[4] = STACK_VA + 0x800 + (rn(8) ? 0 : (rnd() & 0x1f8)) - (rn(16) ? 0 : 4);
    t->rflags = 0x202 | (rnd() & 0x8d5) | (rn(4) == 0 ? 0x400 : 0) | (rn(20) == 0 ? 0x40000 : 0) |
                (rn(10) == 0 ? 0x200000 : 0);
    t->patch_off = rn(DATA_SIZE - 64);
    for (int k = 0; k < 64; k++)
        t->patch[k] = (uint8_t)edge64();
    uint32_t target = (uint32_t)(DATA_VA + rn(DATA_SIZE - 16));
    switch (rn(20)) {
    case 0: target = (uint32_t)(DATA_VA + DATA_SIZE - 1 - rn(8)); break;
    case 1: target = (uint32_t)(RO_VA + 4096 - 1 - rn(8)); break;
    case 2: target = (uint32_t)(HOLE_VA + rn(4096)); break;
    case 3: target = (uint32_t)(RO_VA + rn(4096 - 16)); break;
    case 4: target = 0xfffffffcu + rn(8); break; /* wraps at 4 GiB */
    default: break;
    }
    if (rn(4) == 0)
        target &= ~7u;
    if (d.has_mem) {
        uint32_t idx = 0;
        if (d.index != NOREG) {
            idx = rn(3) ? rn(64) : (uint32_t)(int32_t)(int8_t)rnd();
            t->r[d.index] = idx;
        }
        uint32_t want = target - (uint32_t)d.disp - (idx << d.scale);
        if (d.base != NOREG && d.base != d.index) {
            t->r[d.base] = want;
        } else if (d.base == NOREG) {
            uint32_t disp = target - (idx << d.scale);
            memcpy(t->insn + d.pos_disp, &disp, 4);
        }
    }
    if (d.map == 0 && d.op >= 0xa0 && d.op <= 0xa3)
        memcpy(t->insn + d.pos_imm, &target, 4);
    if (d.map == 0 && (is_string_op(d.op) || d.op == 0xd7)) {
        t->r[6] = (uint32_t)(DATA_VA + 0x800 + rn(0x400) - (rn(8) == 0 ? 0x800 + rn(8) : 0));
        t->r[7] = (uint32_t)(DATA_VA + 0x1000 + rn(0x400) + (rn(8) == 0 ? 0x1000 - rn(64) : 0));
        t->r[3] = (uint32_t)(DATA_VA + rn(0x1000));
        if (d.rep)
            t->r[1] = rn(4) ? rn(40) : (rn(2) ? rn(0x1100) : (uint32_t)edge64());
    }
    if (d.map == 0 && d.op == 0xc8)
        t->r[5] = STACK_VA + 0x900 + rn(0x100);
    if (d.map == 0 && d.op == 0xc9)
        t->r[5] = STACK_VA + 0x700 + rn(0x100) * (rn(2) ? 1 : 0);
    if (d.map == 0 && (d.op == 0x07 || d.op == 0x17 || d.op == 0x1f || d.op == 0x61) && rn(4))
        t->r[4] = STACK_VA + SEL_SLOTS_OFF + 4 * rn(12);
    return 0;
}
