/* difftest: the x87/MMX/SSE class. Included by difftest.c. Random encodings
 * from the x87 escapes and the SSE maps, with a random FXSAVE image as the
 * input state (edge-case floats, NaNs, denormals, random TOP/tags, masked
 * and unmasked exceptions, rounding modes). */

static uint8_t fx_base[512] __attribute__((aligned(16)));

static void fpugen_init(const uint8_t *fx_init)
{
    memcpy(fx_base, fx_init, 512);
}

static void rand_f80(uint8_t *p)
{
    static const struct { uint64_t m; uint16_t e; } v[] = {
        {0, 0}, {0, 0x8000}, {0x8000000000000000ull, 0x3fff}, {0x8000000000000000ull, 0xbfff},
        {0x8000000000000000ull, 0x7fff}, {0x8000000000000000ull, 0xffff},
        {0xc000000000000000ull, 0x7fff}, {0xa000000000000000ull, 0x7fff},
        {0x0000000000000001ull, 0}, {0x4000000000000000ull, 0}, {0xffffffffffffffffull, 0x7ffe},
        {0x8000000000000000ull, 0x0001}, {0x4000000000000000ull, 0x3fff},
        {0xc90fdaa22168c235ull, 0x4000}, {0x8000000000000000ull, 0x403e},
    };
    uint64_t m;
    uint16_t e;
    if (rn(3)) {
        m = v[rn(sizeof(v) / sizeof(v[0]))].m;
        e = v[rn(sizeof(v) / sizeof(v[0]))].e;
        if (rn(2)) {
            unsigned k = rn(sizeof(v) / sizeof(v[0]));
            m = v[k].m;
            e = v[k].e;
        }
    } else {
        m = rnd() | 0x8000000000000000ull;
        e = (uint16_t)((0x3fff + (int)rn(128) - 64) | (rn(2) ? 0x8000 : 0));
    }
    memcpy(p, &m, 8);
    memcpy(p + 8, &e, 2);
}

static uint32_t rand_f32(void)
{
    static const uint32_t v[] = {0, 0x80000000u, 0x3f800000u, 0xbf800000u, 0x7f800000u,
                                 0xff800000u, 0x7fc00000u, 0xffc00000u, 0x7fa00000u, 0x00000001u,
                                 0x007fffffu, 0x00800000u, 0x7f7fffffu, 0x4f000000u, 0xcf000000u,
                                 0x3f000000u, 0x40490fdbu};
    return rn(3) ? v[rn(sizeof(v) / sizeof(v[0]))] : (uint32_t)rnd();
}

static uint64_t rand_f64(void)
{
    static const uint64_t v[] = {0, 0x8000000000000000ull, 0x3ff0000000000000ull,
                                 0xbff0000000000000ull, 0x7ff0000000000000ull,
                                 0xfff0000000000000ull, 0x7ff8000000000000ull,
                                 0xfff8000000000000ull, 0x7ff4000000000000ull, 1,
                                 0x000fffffffffffffull, 0x0010000000000000ull,
                                 0x7fefffffffffffffull, 0x43e0000000000000ull,
                                 0xc3e0000000000000ull, 0x41e0000000000000ull,
                                 0x3fe0000000000000ull};
    return rn(3) ? v[rn(sizeof(v) / sizeof(v[0]))] : rnd();
}

static void rand_fx(uint8_t *fx)
{
    memcpy(fx, fx_base, 512);
    uint16_t fcw = 0x37f;
    if (rn(4) == 0)
        fcw = (uint16_t)((rnd() & 0x0f3f) | 0x40);
    uint16_t fsw = (uint16_t)((rn(8) << 11) | (rn(6) == 0 ? (rnd() & 0x3f) : 0) |
                              (rn(8) == 0 ? (rnd() & 0x4700) : 0));
    /* ES/B follow the unmasked exception bits, as hardware keeps them */
    if (fsw & 0x3f & ~fcw)
        fsw |= 0x8080;
    memcpy(fx + 0, &fcw, 2);
    memcpy(fx + 2, &fsw, 2);
    fx[4] = (uint8_t)(rn(3) ? rnd() : (rn(2) ? 0xff : 0));
    uint16_t fop = 0;
    memcpy(fx + 6, &fop, 2);
    memset(fx + 8, 0, 16);
    uint32_t mx = 0x1f80;
    if (rn(4) == 0)
        mx = (uint32_t)(rnd() & 0xffff) | (rn(4) == 0 ? 1u << 17 : 0);
    else if (rn(4) == 0)
        mx |= (uint32_t)(rn(4) << 13) | (rn(2) ? 0x8040 : 0);
    /* bits past the host's MXCSR_MASK (AMD's MM, bit 17, on an Intel
     * host) make FXRSTOR fault before the case runs */
    uint32_t host_mask;
    memcpy(&host_mask, fx_base + 28, 4);
    mx &= host_mask ? host_mask : 0xffbfu;
    memcpy(fx + 24, &mx, 4);
    for (int k = 0; k < 8; k++) {
        memset(fx + 32 + 16 * k, 0, 16);
        rand_f80(fx + 32 + 16 * k);
    }
    for (int k = 0; k < 16; k++) {
        uint8_t *x = fx + 160 + 16 * k;
        switch (rn(4)) {
        case 0:
            for (int j = 0; j < 4; j++) {
                uint32_t f = rand_f32();
                memcpy(x + 4 * j, &f, 4);
            }
            break;
        case 1:
            for (int j = 0; j < 2; j++) {
                uint64_t f = rand_f64();
                memcpy(x + 8 * j, &f, 8);
            }
            break;
        default:
            for (int j = 0; j < 2; j++) {
                uint64_t f = edge64();
                memcpy(x + 8 * j, &f, 8);
            }
            break;
        }
    }
}

static int gen_fpu(struct tcase *t)
{
    uint8_t b[24];
    unsigned n = 0;
    if (rn(6) == 0)
        b[n++] = 0x66;
    unsigned kind = rn(10);
    if (kind >= 4 && rn(3) == 0)
        b[n++] = rn(2) ? 0xf3 : 0xf2;
    if (kind >= 4 && rn(4) == 0)
        b[n++] = 0x66;
    if (rn(2))
        b[n++] = 0x40 | (uint8_t)rn(16);
    if (kind < 4) {
        b[n++] = 0xd8 + (uint8_t)rn(8);
    } else if (kind < 8) {
        b[n++] = 0x0f;
        static const uint8_t ops[] = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x28, 0x29,
                                      0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x77, 0xae, 0xc2, 0xc3,
                                      0xc4, 0xc5, 0xc6};
        uint8_t op = (uint8_t)(rn(3) ? 0x50 + rn(0x30) : rn(2) ? 0xd0 + rn(0x30) : ops[rn(sizeof(ops))]);
        b[n++] = op;
    } else {
        b[n++] = 0x0f;
        bool m38 = rn(2);
        b[n++] = m38 ? 0x38 : 0x3a;
        b[n++] = (uint8_t)(m38 ? (rn(2) ? rn(0x20) : 0x20 + rn(0x22)) : (rn(3) ? 8 + rn(0x1b) : 0x40 + rn(0x24)));
        if (rn(6) == 0) /* AES-NI (0F38 DB-DF, 0F3A DF), PCLMULQDQ (0F3A 44) */
            b[n - 1] = (uint8_t)(m38 ? 0xdb + rn(5) : rn(2) ? 0xdf : 0x44);
        else if (rn(6) == 0) /* SHA (0F38 C8-CD, 0F3A CC) */
            b[n - 1] = (uint8_t)(m38 ? 0xc8 + rn(6) : 0xcc);
    }
    uint8_t modrm = (uint8_t)rnd();
    if (rn(2))
        modrm |= 0xc0;
    b[n++] = modrm;
    for (unsigned k = 0; k < 10; k++)
        b[n++] = (uint8_t)rnd();
    ZydisDecodedInstruction zi;
    ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
    if (ZYAN_FAILED(ZydisDecoderDecodeFull(&zdec, b, n, &zi, zo)))
        return -1;
    struct dec d;
    if (decode(b, 15, &d) != DEC_OK)
        return -1; /* not offered: decodecheck lists these */
    if (d.seg == SEG_FS || d.seg == SEG_GS)
        return -1;
    if (d.map == 1 && d.op == 0xae && (d.mod == 3 || (d.reg & 7) > 3))
        return -1;
    if (d.map == 1 && (d.op == 0xc7 || d.op == 0x0f))
        return -1;
    t->len = zi.length;
    memcpy(t->insn, b, zi.length);
    for (int k = 0; k < 16; k++)
        t->r[k] = edge64();
    t->r[4] = STACK_VA + 0x800;
    t->rflags = 0x202 | (rnd() & 0x8d5);
    t->patch_off = rn(DATA_SIZE - 64);
    for (int k = 0; k < 64; k++)
        t->patch[k] = (uint8_t)rnd();
    rand_fx(t->fx);
    unsigned room = (d.map == 1 && d.op == 0xae) ? 512 : 128;
    uint64_t target = DATA_VA + rn(DATA_SIZE - room);
    if (rn(3))
        target &= ~15ull;
    if (rn(30) == 0)
        target = DATA_VA + DATA_SIZE - rn(16) - 1;
    if (d.has_mem && !d.riprel) {
        uint64_t idx = 0;
        if (d.index != NOREG) {
            idx = rn(32);
            t->r[d.index] = idx;
        }
        uint64_t want = target - (uint64_t)d.disp - (idx << d.scale);
        if (d.base != NOREG && d.base != d.index)
            t->r[d.base] = want;
        else if (d.base == NOREG && d.index != d.base) {
            int32_t disp = (int32_t)(target - (idx << d.scale));
            memcpy(t->insn + d.pos_disp, &disp, 4);
        }
    } else if (d.riprel) {
        int32_t disp = (int32_t)(target - (INSN_VA + t->len));
        memcpy(t->insn + d.pos_disp, &disp, 4);
    }
    if (d.map == 1 && d.op == 0xf7) { /* MASKMOV: [rdi] */
        t->r[7] = DATA_VA + rn(DATA_SIZE - 32);
    }
    return 0;
}
