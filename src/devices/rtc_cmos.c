#include "devices/rtc_cmos.h"

#include <stdlib.h>
#include <string.h>

#include "arch/x86_64/layout.h"
#include "devices/board.h"

#define REG_SECONDS 0x00
#define REG_MINUTES 0x02
#define REG_HOURS 0x04
#define REG_WEEKDAY 0x06
#define REG_DAY 0x07
#define REG_MONTH 0x08
#define REG_YEAR 0x09
#define REG_A 0x0a
#define REG_B 0x0b
#define REG_C 0x0c
#define REG_D 0x0d
#define REG_CENTURY 0x32

#define REGA_DIVIDER_32K 0x20
#define REGA_RATE_1K 0x06
#define REGA_UIP 0x80
#define REGB_24H 0x02
#define REGB_BINARY 0x04
#define REGB_SET 0x80
#define REGD_VALID 0x80
#define HOUR_PM 0x80

static time_t host_now(void)
{
    return time(NULL);
}

void rtc_cmos_init(struct rtc_cmos *rtc, time_t (*now)(void))
{
    memset(rtc, 0, sizeof(*rtc));
    pthread_mutex_init(&rtc->lock, NULL);
    rtc->now = now ? now : host_now;
    rtc->ram[REG_A] = REGA_DIVIDER_32K | REGA_RATE_1K;
    rtc->ram[REG_B] = REGB_24H;
    rtc->ram[REG_D] = REGD_VALID;
}

void rtc_cmos_destroy(struct rtc_cmos *rtc)
{
    pthread_mutex_destroy(&rtc->lock);
}

static uint8_t to_bcd(unsigned v)
{
    return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static unsigned from_bcd(uint8_t v)
{
    return (v >> 4) * 10 + (v & 0x0f);
}

static uint8_t encode(const struct rtc_cmos *rtc, unsigned v)
{
    return (rtc->ram[REG_B] & REGB_BINARY) ? (uint8_t)v : to_bcd(v);
}

static unsigned decode(const struct rtc_cmos *rtc, uint8_t v)
{
    return (rtc->ram[REG_B] & REGB_BINARY) ? v : from_bcd(v);
}

static struct tm guest_time(const struct rtc_cmos *rtc)
{
    time_t t = rtc->now() + (time_t)rtc->offset_sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    return tm;
}

static uint8_t encode_hour(const struct rtc_cmos *rtc, int hour)
{
    if (rtc->ram[REG_B] & REGB_24H)
        return encode(rtc, (unsigned)hour);
    unsigned h12 = hour % 12 ? (unsigned)hour % 12 : 12;
    return (uint8_t)(encode(rtc, h12) | (hour >= 12 ? HOUR_PM : 0));
}

static int decode_hour(const struct rtc_cmos *rtc, uint8_t v)
{
    if (rtc->ram[REG_B] & REGB_24H)
        return (int)decode(rtc, v);
    int h = (int)decode(rtc, v & (uint8_t)~HOUR_PM) % 12;
    return (v & HOUR_PM) ? h + 12 : h;
}

static uint8_t rtc_read_reg(struct rtc_cmos *rtc, uint8_t reg)
{
    struct tm tm = guest_time(rtc);
    switch (reg) {
    case REG_SECONDS: return encode(rtc, (unsigned)tm.tm_sec);
    case REG_MINUTES: return encode(rtc, (unsigned)tm.tm_min);
    case REG_HOURS: return encode_hour(rtc, tm.tm_hour);
    case REG_WEEKDAY: return encode(rtc, (unsigned)tm.tm_wday + 1);
    case REG_DAY: return encode(rtc, (unsigned)tm.tm_mday);
    case REG_MONTH: return encode(rtc, (unsigned)tm.tm_mon + 1);
    case REG_YEAR: return encode(rtc, (unsigned)(tm.tm_year + 1900) % 100);
    case REG_CENTURY: return encode(rtc, (unsigned)(tm.tm_year + 1900) / 100);
    /* No update cycle is ever in progress: reads are always consistent. */
    case REG_A: return rtc->ram[REG_A] & (uint8_t)~REGA_UIP;
    case REG_C: {
        uint8_t flags = rtc->ram[REG_C];
        rtc->ram[REG_C] = 0;
        return flags;
    }
    default: return rtc->ram[reg];
    }
}

/* A guest setting a time field moves its clock relative to the host's. */
static void rtc_set_field(struct rtc_cmos *rtc, uint8_t reg, uint8_t v)
{
    struct tm tm = guest_time(rtc);
    switch (reg) {
    case REG_SECONDS: tm.tm_sec = (int)decode(rtc, v); break;
    case REG_MINUTES: tm.tm_min = (int)decode(rtc, v); break;
    case REG_HOURS: tm.tm_hour = decode_hour(rtc, v); break;
    case REG_DAY: tm.tm_mday = (int)decode(rtc, v); break;
    case REG_MONTH: tm.tm_mon = (int)decode(rtc, v) - 1; break;
    case REG_YEAR: tm.tm_year = (tm.tm_year + 1900) / 100 * 100 + (int)decode(rtc, v) - 1900; break;
    case REG_CENTURY: tm.tm_year = (int)decode(rtc, v) * 100 + (tm.tm_year + 1900) % 100 - 1900; break;
    default: return;
    }
    time_t t = timegm(&tm);
    if (t != (time_t)-1)
        rtc->offset_sec = (int64_t)t - (int64_t)rtc->now();
}

static void rtc_write_reg(struct rtc_cmos *rtc, uint8_t reg, uint8_t v)
{
    switch (reg) {
    case REG_SECONDS: case REG_MINUTES: case REG_HOURS: case REG_DAY:
    case REG_MONTH: case REG_YEAR: case REG_CENTURY:
        rtc_set_field(rtc, reg, v);
        break;
    case REG_WEEKDAY: /* derived from the date */
    case REG_C:
    case REG_D:
        break; /* read-only */
    case REG_A:
        rtc->ram[REG_A] = v & (uint8_t)~REGA_UIP;
        break;
    default:
        rtc->ram[reg] = v;
        break;
    }
}

static void rtc_bus_read(void *dev, uint64_t offset, void *data, unsigned len)
{
    struct rtc_cmos *rtc = dev;
    uint8_t value = 0xff;
    pthread_mutex_lock(&rtc->lock);
    if (offset == 1)
        value = rtc_read_reg(rtc, rtc->index);
    pthread_mutex_unlock(&rtc->lock);
    memset(data, value, len);
}

static void rtc_bus_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
    struct rtc_cmos *rtc = dev;
    uint8_t v = *(const uint8_t *)data;
    (void)len;
    pthread_mutex_lock(&rtc->lock);
    if (offset == 0)
        rtc->index = v & 0x7f; /* bit 7 masks NMI */
    else
        rtc_write_reg(rtc, rtc->index, v);
    pthread_mutex_unlock(&rtc->lock);
}

const struct bus_ops rtc_cmos_bus_ops = {
    .read = rtc_bus_read,
    .write = rtc_bus_write,
};

void rtc_cmos_save(struct rtc_cmos *rtc, struct rec r)
{
    pthread_mutex_lock(&rtc->lock);
    rec_put_u64(r, "index", rtc->index);
    rec_put_bytes(r, "ram", rtc->ram, sizeof(rtc->ram));
    rec_put_u64(r, "offset_sec", (uint64_t)rtc->offset_sec);
    pthread_mutex_unlock(&rtc->lock);
}

int rtc_cmos_load(struct rtc_cmos *rtc, struct rec r)
{
    uint8_t index;
    uint64_t offset;
    int ret = rec_get_u8(r, "index", &index);
    /* The index selects a byte of the RAM: one beyond it would let the
     * guest's next port 0x71 access reach past the array. */
    if (!ret && index >= RTC_CMOS_SIZE)
        ret = err_set(-EINVAL, "'index' %u is beyond the %d bytes of CMOS RAM", index,
                      RTC_CMOS_SIZE);
    if (!ret)
        ret = rec_get_bytes(r, "ram", rtc->ram, sizeof(rtc->ram));
    if (!ret)
        ret = rec_get_u64(r, "offset_sec", UINT64_MAX, &offset);
    /* The guest's clock is the host's plus this: a guest can move it to
     * any year its registers hold (0 to 25599), never near the ends of
     * time_t, where the sum overflows and gmtime_r leaves the date unset. */
    if (!ret && ((int64_t)offset > RTC_MAX_OFFSET_SEC || (int64_t)offset < -RTC_MAX_OFFSET_SEC))
        ret = err_set(-EINVAL, "'offset_sec' %lld is beyond the %lld seconds a guest can set",
                      (long long)(int64_t)offset, (long long)RTC_MAX_OFFSET_SEC);
    if (ret)
        return err_prefix(ret, "rtc");
    rtc->index = index;
    rtc->offset_sec = (int64_t)offset;
    return 0;
}

/* --- on the board --------------------------------------------------------- */

static void rtc_device_destroy(void *dev)
{
    rtc_cmos_destroy(dev);
    free(dev);
}

static void rtc_device_save(void *dev, struct rec r)
{
    rtc_cmos_save(dev, r);
}

static int rtc_device_load(void *dev, struct rec r)
{
    return rtc_cmos_load(dev, r);
}

static const struct device_ops rtc_device_ops = {
    .destroy = rtc_device_destroy,
    .save = rtc_device_save,
    .load = rtc_device_load,
};

int rtc_cmos_board_setup(struct board *b)
{
    struct rtc_cmos *rtc = calloc(1, sizeof(*rtc));
    if (!rtc)
        return err_set(-ENOMEM, "out of memory");
    rtc_cmos_init(rtc, NULL);
    if (!board_add(b, &rtc_device_ops, rtc, "rtc"))
        return -ENOSPC;
    const struct acpi_device acpi = {
        .name = "RTC_", .hid = "PNP0B00", .uid = 0,
        .io = {{PORT_RTC, 2}}, .nr_io = 1, .irq = IRQ_RTC};
    int ret = bus_register(b->pio, PORT_RTC, 2, &rtc_cmos_bus_ops, rtc, "rtc");
    /* The index only matters to the data port's next access. */
    board_post_writes(b, PORT_RTC, 1);
    return ret ? ret : board_describe(b, &acpi);
}
