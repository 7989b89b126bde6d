/* libFuzzer target: a guest driving the legacy port devices — the i8042
 * keyboard controller (0x60/0x64), the 8250 UART (0x3f8-0x3ff), the CMOS
 * RTC (0x70/0x71), pvpanic (0x505), the ACPI PM registers (0x600-0x60b)
 * and the 8254 PIT (0x40-0x43, 0x61) — through the port bus as a vCPU's
 * IN and OUT reach them. Each 6-byte step is a read or write of 1, 2 or 4
 * bytes at one of their ports (or beside them, or straddling two), or a
 * host event: serial input, the serial host taking output again or
 * filling up, Ctrl-Alt-Del, time passing (the PIT's deadline expiring), or
 * a snapshot round trip (every device's state saved and loaded back, which
 * must succeed). After each step no device index may point outside its
 * array (ASan cannot see inside a struct).
 *
 *   make fuzz-targets && build/fuzz/fuzz_legacy_ports tests/fuzz/corpus/legacy_ports */
#include <stdio.h>

#include "util/log.h"
#include "util/util.h"

#include "legacy_machine.h"

#define STEP 6

/* Each device's state through its save and load, as a snapshot and restore
 * take it: a device must always accept what it saved. */
static void round_trip(struct legacy_machine *m)
{
    struct rec r[5] = {rec_new(), rec_new(), rec_new(), rec_new(), rec_new()};
    i8042_save(&m->kbc, r[0]);
    serial_save(&m->com1, r[1]);
    rtc_cmos_save(&m->rtc, r[2]);
    acpi_pm_save(&m->pm, r[3]);
    pit_save(&m->pit, r[4]);
    if (i8042_load(&m->kbc, r[0]) || serial_load(&m->com1, r[1]) ||
        rtc_cmos_load(&m->rtc, r[2]) || acpi_pm_load(&m->pm, r[3]) ||
        pit_load(&m->pit, r[4])) {
        fprintf(stderr, "a device refused its own state: %s\n", err_msg());
        abort();
    }
    for (int i = 0; i < 5; i++)
        rec_free(r[i]);
}

static void host_event(struct legacy_machine *m, const uint8_t *s)
{
    switch (s[1] % 6) {
    case 0: (void)serial_receive(&m->com1, s + 2, (s[1] >> 5) % 5); break; /* 0-4 bytes */
    case 1: { /* the host has room again */
        m->com1_host.room = s[2];
        void (*fn)(void *) = m->com1_host.writable;
        m->com1_host.writable = NULL;
        if (fn)
            fn(m->com1_host.arg);
        break;
    }
    case 2: m->com1_host.room = 0; break;
    case 3: i8042_send_ctrl_alt_del(&m->kbc); break;
    case 4: /* time passes; the PIT's timer fires if its deadline came */
        lm_now += (uint64_t)le32_load(s + 2) << (s[1] >> 3);
        if (lm_pit_deadline && lm_now >= lm_pit_deadline)
            pit_timer_expired(&m->pit, lm_now);
        break;
    case 5: round_trip(m); break;
    }
}

static void run_step(struct legacy_machine *m, const uint8_t *s)
{
    uint16_t port = (uint16_t)(lm_ports[s[1] % LM_NR_PORTS] + (s[1] >= 0xf0 ? 1 : 0));
    unsigned len = 1u << ((s[0] >> 4) % 3);
    uint8_t buf[4];
    switch (s[0] % 4) {
    case 0:
    case 1: bus_write(&m->pio, port, s + 2, len); break;
    case 2: bus_read(&m->pio, port, buf, len); break;
    case 3: host_event(m, s); break;
    }
    lm_check_invariants(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct legacy_machine m;
    static bool quiet;
    if (!quiet) {
        log_set_level(getenv("FUZZ_VERBOSE") ? LOG_DEBUG : LOG_ERROR);
        quiet = true;
    }
    lm_build(&m);
    for (size_t off = 0; off + STEP <= size; off += STEP)
        run_step(&m, data + off);
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "resets %u sleeps %u panics %u, com1 out %llu in %llu\n", lm_resets,
                lm_sleeps, lm_panics, (unsigned long long)m.com1.bytes_out,
                (unsigned long long)m.com1.bytes_in);
    lm_destroy(&m);
    return 0;
}
