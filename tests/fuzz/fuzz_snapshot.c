/* libFuzzer target: the snapshot loader's untrusted half — the state file's
 * container (header, sections, CRC-32s), each section's record text (the
 * shape scan, then json-c) and the machine configuration read from the
 * 'machine' record with every range check. The input is a whole state
 * file; the target also feeds it with its CRCs repaired (the fuzzer cannot
 * compute them), so mutations reach the records behind them.
 *
 *   make fuzz && build/fuzz/fuzz_snapshot tests/fuzz/corpus/snapshot */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "config/config.h"
#include "snapshot/format.h"
#include "snapshot/machine.h"
#include "snapshot/record.h"
#include "util/log.h"

static uint32_t crc(const uint8_t *p, size_t n)
{
    return (uint32_t)crc32(0, p, (uInt)n);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Fix every CRC the layout allows finding: sections, header, whole file. */
static void repair(uint8_t *p, size_t size)
{
    if (size < SNAP_HEADER_SIZE)
        return;
    put32(p + 16, (uint32_t)size);
    memset(p + 20, 0, 4);
    for (size_t off = SNAP_HEADER_SIZE; size - off >= SNAP_SECTION_HEADER_SIZE;) {
        uint64_t len = get64(p + off + 24);
        size_t room = size - off - SNAP_SECTION_HEADER_SIZE;
        if (len > room)
            break;
        put32(p + off + 20, crc(p + off + SNAP_SECTION_HEADER_SIZE, (size_t)len));
        off += SNAP_SECTION_HEADER_SIZE + (size_t)((len + 7) & ~7ull);
        if (off > size)
            break;
    }
    put32(p + 24, crc(p, 24));
    put32(p + 28, crc(p + SNAP_HEADER_SIZE, size - SNAP_HEADER_SIZE));
}

static void load(const uint8_t *data, size_t size, bool fix)
{
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    if (fix)
        repair(copy, size);
    struct snap_reader r;
    if (snap_reader_parse(&r, copy, size) == 0) {
        for (unsigned i = 0; i < r.nr_sections; i++) {
            struct rec rec;
            const struct snap_section *s = &r.sections[i];
            if (rec_parse(s->data, (size_t)s->size, &rec))
                continue;
            if (!strcmp(s->name, "machine")) {
                struct vm_config cfg;
                struct cpu_template tmpl;
                vm_config_defaults(&cfg);
                (void)!machine_load(rec, &cfg, &tmpl); /* its strings point into 'rec' */
            }
            rec_free(rec);
        }
    }
    snap_reader_close(&r); /* the reader owns 'copy' either way */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        log_set_level(LOG_ERROR - 1);
        quiet = true;
    }
    if (size > SNAP_STATE_MAX)
        return 0;
    load(data, size, false);
    load(data, size, true);
    return 0;
}
