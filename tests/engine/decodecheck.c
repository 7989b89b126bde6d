/* decodecheck: the engine's decoder against Zydis 4 on random byte strings.
 * For every string: both valid with the same length, or both invalid
 * (#UD, or too long). "Zydis valid, engine #UD" is allowed only for what the
 * engine does not offer; those are tallied by ISA set and mnemonic (the list
 * of what decodes but is not implemented). "Engine valid, Zydis invalid" is
 * an error unless it is one of the measured host behaviours below.
 *
 *   decodecheck [--count N] [--seed N] [-v]
 */
#include <Zydis/Zydis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cpu/internal.h"

static uint64_t rs[2];
static uint64_t rnd(void)
{
    uint64_t s1 = rs[0], s0 = rs[1];
    rs[0] = s0;
    s1 ^= s1 << 23;
    rs[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return rs[1] + s0;
}

/* A VEX prefix (maybe after other prefixes), mostly in maps 0F38/0F3A
 * with L0 and the opcodes BMI1/BMI2 use, the rest of the bytes random. */
static void gen_vex(uint8_t *b)
{
    static const uint8_t pfx[] = {0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x64, 0x41, 0x48};
    static const uint8_t ops[] = {0xf0, 0xf2, 0xf3, 0xf5, 0xf6, 0xf7};
    unsigned n = 0;
    if (rnd() % 6 == 0)
        b[n++] = pfx[rnd() % sizeof(pfx)];
    bool three = rnd() % 4 != 0;
    b[n++] = three ? 0xc4 : 0xc5;
    uint8_t last = (uint8_t)rnd();
    if (rnd() % 4)
        last &= (uint8_t)~4; /* L0 */
    if (three) {
        unsigned map = rnd() % 8 ? 2 + (unsigned)(rnd() % 2) : (unsigned)(rnd() % 32);
        b[n++] = (uint8_t)((rnd() & 0xe0) | map);
    }
    b[n++] = last;
    if (rnd() % 4)
        b[n++] = ops[rnd() % sizeof(ops)];
}

static void gen(uint8_t *b)
{
    for (int k = 0; k < 16; k++)
        b[k] = (uint8_t)rnd();
    if (rnd() % 10 < 3)
        return;
    if (rnd() % 8 == 0) {
        gen_vex(b);
        return;
    }
    static const uint8_t pfx[] = {0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65};
    unsigned n = 0, np = (unsigned)(rnd() % 4);
    for (unsigned k = 0; k < np; k++)
        b[n++] = pfx[rnd() % sizeof(pfx)];
    if (rnd() % 2)
        b[n++] = 0x40 | (uint8_t)(rnd() & 15);
    switch (rnd() % 6) {
    case 0: case 1: b[n++] = 0x0f; break;
    case 2: b[n++] = 0x0f; b[n++] = 0x38; break;
    case 3: b[n++] = 0x0f; b[n++] = 0x3a; break;
    default: break;
    }
    (void)n;
}

/* Measured on the host (difftest), where Zydis says invalid. */
static bool host_valid_exception(const struct dec *d)
{
    if (d->lock && d->map == 1 && (d->op == 0x20 || d->op == 0x22) && (d->reg & 7) == 0)
        return true; /* AMD AltMovCr8 */
    if (d->lock && d->map == 1 && d->op == 0x00 && (d->reg & 7) == 5 && d->mod != 3)
        return true; /* LOCK VERW m16 */
    if (d->map == 1 && d->op >= 0x18 && d->op <= 0x1f)
        return true; /* hint NOPs (MPX/CET encodings Zydis constrains): NOP on the host */
    return false;
}

struct tally {
    char key[64];
    uint64_t n;
    uint8_t sample[15];
    unsigned slen;
};

static struct tally unimpl[4096];
static unsigned nunimpl;

static void note_unimpl(const char *isa, const char *mn, const uint8_t *b, unsigned len)
{
    char key[64];
    snprintf(key, sizeof(key), "%s %s", isa, mn);
    for (unsigned k = 0; k < nunimpl; k++)
        if (!strcmp(unimpl[k].key, key)) {
            unimpl[k].n++;
            return;
        }
    if (nunimpl < 4096) {
        struct tally *t = &unimpl[nunimpl++];
        snprintf(t->key, sizeof(t->key), "%s", key);
        t->n = 1;
        memcpy(t->sample, b, len > 15 ? 15 : len);
        t->slen = len > 15 ? 15 : len;
    }
}

static int cmp_tally(const void *a, const void *b)
{
    return strcmp(((const struct tally *)a)->key, ((const struct tally *)b)->key);
}

static void hex(const uint8_t *b, unsigned n)
{
    for (unsigned k = 0; k < n; k++)
        printf("%02x ", b[k]);
}

/* Integer instructions every 32-bit program uses: never "not run" in
 * 32-bit code, unless 16-bit addressing (0x67) is what the engine lacks. */
static bool must_run32(const ZydisDecodedInstruction *zi)
{
    static const ZydisMnemonic m[] = {
        ZYDIS_MNEMONIC_ADD, ZYDIS_MNEMONIC_OR, ZYDIS_MNEMONIC_ADC, ZYDIS_MNEMONIC_SBB,
        ZYDIS_MNEMONIC_AND, ZYDIS_MNEMONIC_SUB, ZYDIS_MNEMONIC_XOR, ZYDIS_MNEMONIC_CMP,
        ZYDIS_MNEMONIC_MOV, ZYDIS_MNEMONIC_LEA, ZYDIS_MNEMONIC_TEST, ZYDIS_MNEMONIC_INC,
        ZYDIS_MNEMONIC_DEC, ZYDIS_MNEMONIC_PUSH, ZYDIS_MNEMONIC_POP, ZYDIS_MNEMONIC_CALL,
        ZYDIS_MNEMONIC_RET, ZYDIS_MNEMONIC_JMP, ZYDIS_MNEMONIC_JZ, ZYDIS_MNEMONIC_JNZ,
        ZYDIS_MNEMONIC_SHL, ZYDIS_MNEMONIC_SHR, ZYDIS_MNEMONIC_SAR, ZYDIS_MNEMONIC_IMUL,
        ZYDIS_MNEMONIC_MOVZX, ZYDIS_MNEMONIC_MOVSX, ZYDIS_MNEMONIC_XCHG, ZYDIS_MNEMONIC_NOT,
        ZYDIS_MNEMONIC_NEG, ZYDIS_MNEMONIC_DAA, ZYDIS_MNEMONIC_AAM, ZYDIS_MNEMONIC_PUSHAD,
        ZYDIS_MNEMONIC_POPAD, ZYDIS_MNEMONIC_ENTER, ZYDIS_MNEMONIC_LEAVE, ZYDIS_MNEMONIC_INTO,
    };
    if ((zi->attributes & ZYDIS_ATTRIB_HAS_ADDRESSSIZE) ||
        zi->meta.branch_type == ZYDIS_BRANCH_TYPE_FAR)
        return false; /* 16-bit addressing, far transfers: not run yet */
    if (zi->mnemonic == ZYDIS_MNEMONIC_MOV && zi->opcode_map != ZYDIS_OPCODE_MAP_DEFAULT)
        return false; /* MOV to and from debug registers: the kernel's */
    for (unsigned k = 0; k < sizeof(m) / sizeof(m[0]); k++)
        if (zi->mnemonic == m[k])
            return !zi->raw.prefix_count || zi->mnemonic != ZYDIS_MNEMONIC_MOV ||
                   !(zi->attributes & ZYDIS_ATTRIB_HAS_SEGMENT);
    return false;
}

/* 32-bit code (compatibility mode): what the engine decodes there must be
 * what Zydis decodes, with the same length; what it does not run there is
 * counted, and must not be one of must_run32's. Returns the number of
 * disagreements. */
static uint64_t check_mode32(uint64_t count, ZydisFormatter *fmt, struct cpu *cpu)
{
    ZydisDecoder z;
    ZydisDecoderInit(&z, ZYDIS_MACHINE_MODE_LONG_COMPAT_32, ZYDIS_STACK_WIDTH_32);
    uint64_t same = 0, noimpl = 0, both_invalid = 0, errors = 0;
    for (uint64_t it = 0; it < count; it++) {
        uint8_t b[16];
        gen(b);
        struct dec d;
        int r = decode_mode(b, 15, &d, true);
        ZydisDecodedInstruction zi;
        ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
        bool zok = ZYAN_SUCCESS(ZydisDecoderDecodeFull(&z, b, 15, &zi, zo));
        if (r == DEC_NOIMPL) {
            noimpl++;
            if (zok && must_run32(&zi) && errors++ < 20) {
                char txt[128];
                ZydisFormatterFormatInstruction(fmt, &zi, zo, zi.operand_count_visible, txt,
                                                sizeof(txt), 0, NULL);
                printf("32-BIT: not run, but every program needs it: ");
                hex(b, zi.length);
                printf(" %s\n", txt);
            }
        } else if (r != DEC_OK) {
            both_invalid += !zok;
            noimpl += zok;
        } else if (!zok || d.len != zi.length) {
            if (errors++ < 20) {
                char txt[128] = "(invalid)";
                if (zok)
                    ZydisFormatterFormatInstruction(fmt, &zi, zo, zi.operand_count_visible,
                                                    txt, sizeof(txt), 0, NULL);
                printf("32-BIT: engine %s len %u, zydis len %u: ", op_name(d.id), d.len,
                       zok ? zi.length : 0);
                hex(b, 15);
                printf(" %s\n", txt);
            }
        } else {
            struct insn rec;
            bool ok;
            if (hx_need_flush(cpu))
                hx_flush(cpu); /* the host-exec stub arena fills with variety */
            build_insn(cpu, &d, 0x1000, &rec, &ok);
            if (!ok && errors++ < 20) {
                printf("32-BIT: no handler for %s: ", op_name(d.id));
                hex(b, d.len);
                printf("\n");
            }
            same += ok;
        }
    }
    printf("decodecheck 32-bit: %" PRIu64 " strings: %" PRIu64 " agree (valid, same length), %"
           PRIu64 " agree invalid, %" PRIu64 " not run in 32-bit code; ERRORS: %" PRIu64 "\n",
           count, same, both_invalid, noimpl, errors);
    return errors;
}

int main(int argc, char **argv)
{
    uint64_t count = 10000000, seed = 1;
    bool verbose = false;
    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "--count") && k + 1 < argc) count = strtoull(argv[++k], 0, 0);
        else if (!strcmp(argv[k], "--seed") && k + 1 < argc) seed = strtoull(argv[++k], 0, 0);
        else if (!strcmp(argv[k], "-v")) verbose = true;
        else {
            fprintf(stderr, "usage: %s [--count N] [--seed N] [-v]\n", argv[0]);
            return 2;
        }
    }
    rs[0] = seed * 0x9e3779b97f4a7c15ull + 7;
    rs[1] = seed ^ 0x1234567890abcdefull;
    ZydisDecoder z;
    ZydisDecoderInit(&z, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    ZydisDecoderEnableMode(&z, ZYDIS_DECODER_MODE_AMD_BRANCHES, ZYAN_TRUE);
    ZydisFormatter fmt;
    ZydisFormatterInit(&fmt, ZYDIS_FORMATTER_STYLE_INTEL);
    /* a vCPU for the builder (handler selection depends on CPUID) */
    static uint8_t ram[1 << 16] __attribute__((aligned(4096)));
    struct guest_mem gm = {0};
    if (gm_add_region(&gm, 0, sizeof(ram), ram))
        return 1;
    struct cpu_config cfg = {.mem = &gm};
    struct cpu *cpu = cpu_create(&cfg);
    if (!cpu)
        return 1;
    uint64_t same = 0, both_invalid = 0, len_mismatch = 0, eng_only = 0, zyd_only = 0,
             no_handler = 0, host_exc = 0, errors_shown = 0;
    for (uint64_t it = 0; it < count; it++) {
        uint8_t b[16];
        gen(b);
        struct dec d;
        int r = decode(b, 15, &d);
        ZydisDecodedInstruction zi;
        ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
        bool zok = ZYAN_SUCCESS(ZydisDecoderDecodeFull(&z, b, 15, &zi, zo));
        bool eok = r == DEC_OK;
        if (eok && zok) {
            if (d.len != zi.length) {
                len_mismatch++;
                if (errors_shown++ < 20) {
                    char txt[128];
                    ZydisFormatterFormatInstruction(&fmt, &zi, zo, zi.operand_count_visible, txt,
                                                    sizeof(txt), 0, NULL);
                    printf("LENGTH: engine %u zydis %u: ", d.len, zi.length);
                    hex(b, 15);
                    printf(" %s\n", txt);
                }
                continue;
            }
            struct insn rec;
            bool ok;
            if (hx_need_flush(cpu))
                hx_flush(cpu); /* the host-exec stub arena fills with variety */
            build_insn(cpu, &d, 0x1000, &rec, &ok);
            if (!ok) {
                /* decodes, but the builder refuses (a feature not offered) */
                no_handler++;
                note_unimpl(ZydisISASetGetString(zi.meta.isa_set),
                            ZydisMnemonicGetString(zi.mnemonic), b, zi.length);
                continue;
            }
            same++;
        } else if (!eok && !zok) {
            both_invalid++;
        } else if (eok) {
            if (host_valid_exception(&d)) {
                host_exc++;
                continue;
            }
            eng_only++;
            if (errors_shown++ < 20) {
                printf("ENGINE-ONLY (engine valid len %u, zydis invalid): ", d.len);
                hex(b, 15);
                printf(" op %s\n", op_name(d.id));
            }
        } else {
            zyd_only++;
            note_unimpl(ZydisISASetGetString(zi.meta.isa_set),
                        ZydisMnemonicGetString(zi.mnemonic), b, zi.length);
            if (verbose && zyd_only < 50) {
                char txt[128];
                ZydisFormatterFormatInstruction(&fmt, &zi, zo, zi.operand_count_visible, txt,
                                                sizeof(txt), 0, NULL);
                printf("zydis-only: ");
                hex(b, zi.length);
                printf(" %s\n", txt);
            }
        }
    }
    uint64_t errors32 = check_mode32(count / 5, &fmt, cpu);
    qsort(unimpl, nunimpl, sizeof(unimpl[0]), cmp_tally);
    printf("Decoded by Zydis, #UD on the engine (not offered/implemented), by ISA set:\n");
    char last_isa[64] = "";
    for (unsigned k = 0; k < nunimpl; k++) {
        char isa[64];
        sscanf(unimpl[k].key, "%63s", isa);
        if (strcmp(isa, last_isa)) {
            printf("\n  %-18s", isa);
            snprintf(last_isa, sizeof(last_isa), "%s", isa);
        }
        printf(" %s", strchr(unimpl[k].key, ' ') + 1);
    }
    printf("\n\ndecodecheck: %" PRIu64 " strings: %" PRIu64 " agree (valid, same length), %" PRIu64
           " agree invalid, %" PRIu64 " Zydis-only (not implemented), %" PRIu64
           " builder-refused (feature not offered), %" PRIu64 " host-measured exceptions; "
           "ERRORS: %" PRIu64 " length mismatches, %" PRIu64 " engine-only valid\n",
           count, same, both_invalid, zyd_only, no_handler, host_exc, len_mismatch, eng_only);
    if (getenv("CMOCKA_MESSAGE_OUTPUT"))
        printf("1..1\n%s 1 - decodecheck: %" PRIu64 " random strings against Zydis, %" PRIu64
               " errors (32-bit code: %" PRIu64 ")\n",
               len_mismatch || eng_only || errors32 ? "not ok" : "ok", count,
               len_mismatch + eng_only, errors32);
    cpu_destroy(cpu);
    return len_mismatch || eng_only || errors32 ? 1 : 0;
}
