/* The MC146818 real-time clock and CMOS RAM at ports 0x70/0x71 (offsets 0
 * and 1). It reads the host's clock; a guest that sets the time keeps its
 * own offset from it. */
#ifndef EMBER_DEVICES_RTC_CMOS_H
#define EMBER_DEVICES_RTC_CMOS_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "bus/bus.h"
#include "snapshot/record.h"

struct board;

#define RTC_CMOS_SIZE 128
/* Guest time minus host time, either way: more than the 25 600 years a
 * guest can set through its registers. */
#define RTC_MAX_OFFSET_SEC (1ll << 40)

struct rtc_cmos {
    pthread_mutex_t lock;
    uint8_t index;
    uint8_t ram[RTC_CMOS_SIZE];
    int64_t offset_sec; /* guest time minus host time */
    time_t (*now)(void); /* host clock; replaceable by tests */
};

extern const struct bus_ops rtc_cmos_bus_ops;

void rtc_cmos_init(struct rtc_cmos *rtc, time_t (*now)(void));
void rtc_cmos_destroy(struct rtc_cmos *rtc);
/* Snapshots: the CMOS RAM, the index and the guest's offset from host time. */
void rtc_cmos_save(struct rtc_cmos *rtc, struct rec r);
int rtc_cmos_load(struct rtc_cmos *rtc, struct rec r) EMBER_MUST_CHECK;

/* The RTC at ports 0x70/0x71. */
int rtc_cmos_board_setup(struct board *b) EMBER_MUST_CHECK;

#endif
