#include "irqchip/ioapic.h"

#include <string.h>

#include "util/log.h"
#include "util/util.h"

#define REG_IOREGSEL 0x00
#define REG_IOWIN 0x10
#define REG_EOI 0x40

#define IND_ID 0x00
#define IND_VER 0x01
#define IND_ARB 0x02
#define IND_RTE 0x10

#define RTE_LOW_WRITABLE                                                                    \
    (IOAPIC_RTE_VECTOR | IOAPIC_RTE_DELMODE | IOAPIC_RTE_DESTMODE | IOAPIC_RTE_POLARITY | \
     IOAPIC_RTE_LEVEL | IOAPIC_RTE_MASKED)
#define RTE_DEST_MASK (0xffull << IOAPIC_RTE_DEST_SHIFT)
#define RTE_WRITABLE (RTE_LOW_WRITABLE | RTE_DEST_MASK)

/* ember's lines are logical (true: asserted), as with KVM's IOAPIC: the
 * polarity bit is kept for the guest but not applied. */
static bool pin_asserted(const struct ioapic *io, unsigned pin)
{
    return (io->lines >> pin) & 1;
}

static struct apic_msg rte_msg(uint64_t rte)
{
    return (struct apic_msg){
        .dest = (uint8_t)(rte >> IOAPIC_RTE_DEST_SHIFT),
        .dest_logical = rte & IOAPIC_RTE_DESTMODE,
        .delivery_mode = (uint8_t)((rte & IOAPIC_RTE_DELMODE) >> 8),
        .vector = (uint8_t)(rte & IOAPIC_RTE_VECTOR),
        .trigger_level = rte & IOAPIC_RTE_LEVEL,
        .source = -1,
    };
}

/* Send pin's interrupt if it is due. */
static void service(struct ioapic *io, unsigned pin)
{
    uint64_t *rte = &io->rte[pin];
    if (*rte & IOAPIC_RTE_MASKED)
        return;
    bool level = *rte & IOAPIC_RTE_LEVEL;
    if (level && ((*rte & IOAPIC_RTE_REMOTE_IRR) || (io->deferred >> pin & 1)))
        return;
    struct apic_msg msg = rte_msg(*rte);
    int accepted = io->ops && io->ops->deliver ? io->ops->deliver(io->ctx, &msg) : 0;
    io->deliveries++;
    if (level && accepted > 0)
        *rte |= IOAPIC_RTE_REMOTE_IRR;
}

static void reset_locked(struct ioapic *io)
{
    io->id = 0;
    io->regsel = 0;
    for (unsigned i = 0; i < IOAPIC_NR_PINS; i++) {
        io->rte[i] = IOAPIC_RTE_MASKED;
        io->eoi_count[i] = 0;
    }
    io->deferred = 0;
    vtimer_disarm(&io->timer);
}

void ioapic_init(struct ioapic *io, const struct ioapic_ops *ops, void *ctx, struct vclock clock,
                 struct vtimer timer)
{
    memset(io, 0, sizeof(*io));
    pthread_mutex_init(&io->lock, NULL);
    io->ops = ops;
    io->ctx = ctx;
    io->clock = clock;
    io->timer = timer;
    reset_locked(io);
}

void ioapic_destroy(struct ioapic *io)
{
    pthread_mutex_destroy(&io->lock);
}

void ioapic_reset(struct ioapic *io)
{
    pthread_mutex_lock(&io->lock);
    reset_locked(io);
    pthread_mutex_unlock(&io->lock);
}

void ioapic_set_irq(struct ioapic *io, unsigned pin, bool level)
{
    if (pin >= IOAPIC_NR_PINS)
        return;
    pthread_mutex_lock(&io->lock);
    bool was = pin_asserted(io, pin);
    if (level)
        io->lines |= 1u << pin;
    else
        io->lines &= ~(1u << pin);
    bool now = pin_asserted(io, pin);
    if (io->rte[pin] & IOAPIC_RTE_LEVEL) {
        if (now)
            service(io, pin);
        else
            io->eoi_count[pin] = 0;
    } else if (now && !was) {
        service(io, pin);
    }
    pthread_mutex_unlock(&io->lock);
}

static void eoi_locked(struct ioapic *io, uint8_t vector)
{
    for (unsigned pin = 0; pin < IOAPIC_NR_PINS; pin++) {
        uint64_t *rte = &io->rte[pin];
        if ((*rte & IOAPIC_RTE_VECTOR) != vector || !(*rte & IOAPIC_RTE_LEVEL) ||
            !(*rte & IOAPIC_RTE_REMOTE_IRR))
            continue;
        *rte &= ~IOAPIC_RTE_REMOTE_IRR;
        if ((*rte & IOAPIC_RTE_MASKED) || !pin_asserted(io, pin)) {
            io->eoi_count[pin] = 0;
            continue;
        }
        if (++io->eoi_count[pin] >= IOAPIC_STORM_EOIS && io->timer.ops) {
            io->eoi_count[pin] = 0;
            io->storms++;
            if (!io->deferred) {
                io->deferred_until = vclock_now_ns(&io->clock) + IOAPIC_STORM_DELAY_NS;
                vtimer_arm(&io->timer, io->deferred_until);
            }
            io->deferred |= 1u << pin;
            log_guest("ioapic: pin %u re-asserted at %u successive EOIs, delaying it", pin,
                      IOAPIC_STORM_EOIS);
            continue;
        }
        service(io, pin);
    }
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
    pthread_mutex_lock(&io->lock);
    eoi_locked(io, vector);
    pthread_mutex_unlock(&io->lock);
}

void ioapic_timer_expired(struct ioapic *io, uint64_t now_ns)
{
    pthread_mutex_lock(&io->lock);
    if (io->deferred) {
        if (now_ns < io->deferred_until) {
            vtimer_arm(&io->timer, io->deferred_until);
        } else {
            uint32_t pins = io->deferred;
            io->deferred = 0;
            for (unsigned pin = 0; pin < IOAPIC_NR_PINS; pin++)
                if ((pins >> pin & 1) && (io->rte[pin] & IOAPIC_RTE_LEVEL) &&
                    pin_asserted(io, pin))
                    service(io, pin);
        }
    }
    pthread_mutex_unlock(&io->lock);
}

static uint32_t read_indirect(const struct ioapic *io)
{
    unsigned sel = io->regsel;
    switch (sel) {
    case IND_ID:
    case IND_ARB:
        return (uint32_t)io->id << 24;
    case IND_VER:
        return (uint32_t)(IOAPIC_NR_PINS - 1) << 16 | IOAPIC_VERSION;
    default:
        if (sel >= IND_RTE && sel < IND_RTE + 2 * IOAPIC_NR_PINS) {
            uint64_t rte = io->rte[(sel - IND_RTE) / 2];
            return (sel & 1) ? (uint32_t)(rte >> 32) : (uint32_t)rte;
        }
        return 0xffffffff;
    }
}

static void write_rte(struct ioapic *io, unsigned pin, bool high, uint32_t value)
{
    uint64_t *rte = &io->rte[pin];
    if (high) {
        *rte = (*rte & 0xffffffffull) | (((uint64_t)value << 32) & RTE_DEST_MASK);
    } else {
        *rte = (*rte & ~RTE_LOW_WRITABLE & ~0xffffffffull) | (*rte & IOAPIC_RTE_REMOTE_IRR) |
               (value & RTE_LOW_WRITABLE);
        if (!(*rte & IOAPIC_RTE_LEVEL)) {
            *rte &= ~IOAPIC_RTE_REMOTE_IRR;
            io->deferred &= ~(1u << pin);
            io->eoi_count[pin] = 0;
        }
    }
    /* An asserted level line not yet accepted is delivered on unmask, and
     * tried again at each write (nobody took it before; the guest may have
     * changed the destination). */
    if ((*rte & IOAPIC_RTE_LEVEL) && pin_asserted(io, pin))
        service(io, pin);
}

static void write_indirect(struct ioapic *io, uint32_t value)
{
    unsigned sel = io->regsel;
    if (sel == IND_ID) {
        io->id = (value >> 24) & 0x0f;
    } else if (sel >= IND_RTE && sel < IND_RTE + 2 * IOAPIC_NR_PINS) {
        write_rte(io, (sel - IND_RTE) / 2, sel & 1, value);
    }
    /* version, arbitration and undefined registers are read-only */
}

static uint32_t reg_value(struct ioapic *io, uint64_t reg)
{
    switch (reg) {
    case REG_IOREGSEL:
        return io->regsel;
    case REG_IOWIN:
        return read_indirect(io);
    default:
        return 0; /* EOI is write-only; the rest is reserved */
    }
}

static void ioapic_bus_read(void *dev, uint64_t offset, void *data, unsigned len)
{
    struct ioapic *io = dev;
    uint8_t *out = data;
    pthread_mutex_lock(&io->lock);
    uint64_t cached_reg = UINT64_MAX;
    uint32_t value = 0;
    for (unsigned i = 0; i < len; i++) {
        uint64_t off = offset + i;
        if (off >= IOAPIC_MMIO_LEN) {
            out[i] = 0;
            continue;
        }
        uint64_t reg = off & ~3ull;
        if (reg != cached_reg) {
            cached_reg = reg;
            value = reg_value(io, reg);
        }
        out[i] = (uint8_t)(value >> (8 * (off & 3)));
    }
    pthread_mutex_unlock(&io->lock);
}

static void ioapic_bus_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
    struct ioapic *io = dev;
    const uint8_t *in = data;
    if (len == 0 || len > 8)
        return;
    pthread_mutex_lock(&io->lock);
    switch (offset) {
    case REG_IOREGSEL:
        io->regsel = in[0];
        break;
    case REG_IOWIN:
        if (len >= 4)
            write_indirect(io, le32_load(in));
        else
            log_guest("ioapic: %u-byte write to IOWIN ignored", len);
        break;
    case REG_EOI:
        eoi_locked(io, in[0]);
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&io->lock);
}

const struct bus_ops ioapic_bus_ops = {.read = ioapic_bus_read, .write = ioapic_bus_write};

/* --- snapshots ------------------------------------------------------------ */

void ioapic_save(struct ioapic *io, struct rec r)
{
    pthread_mutex_lock(&io->lock);
    rec_put_u64(r, "id", io->id);
    rec_put_u64(r, "regsel", io->regsel);
    rec_put_u64(r, "lines", io->lines);
    rec_put_u64(r, "deferred", io->deferred);
    for (unsigned i = 0; i < IOAPIC_NR_PINS; i++)
        rec_put_u64(rec_put_item(r, "rte"), "value", io->rte[i]);
    pthread_mutex_unlock(&io->lock);
}

int ioapic_load(struct ioapic *io, struct rec r)
{
    uint8_t id, regsel;
    uint32_t lines, deferred;
    uint64_t rte[IOAPIC_NR_PINS];
    size_t n;
    int ret;
    if ((ret = rec_get_u8(r, "id", &id)) || (ret = rec_get_u8(r, "regsel", &regsel)) ||
        (ret = rec_get_u32(r, "lines", (1u << IOAPIC_NR_PINS) - 1, &lines)) ||
        (ret = rec_get_u32(r, "deferred", (1u << IOAPIC_NR_PINS) - 1, &deferred)) ||
        (ret = rec_get_count(r, "rte", IOAPIC_NR_PINS, &n)))
        return err_prefix(ret, "ioapic");
    if (id > 0x0f)
        return err_set(-EINVAL, "ioapic: 'id' %u is wider than 4 bits", id);
    if (n != IOAPIC_NR_PINS)
        return err_set(-EINVAL, "ioapic: %zu redirection entries, expected %u", n,
                       IOAPIC_NR_PINS);
    for (unsigned i = 0; i < IOAPIC_NR_PINS; i++) {
        struct rec item;
        if ((ret = rec_get_item(r, "rte", i, &item)) ||
            (ret = rec_get_u64(item, "value", UINT64_MAX, &rte[i])))
            return err_prefix(ret, "ioapic");
        if (rte[i] & ~(RTE_WRITABLE | IOAPIC_RTE_REMOTE_IRR))
            return err_set(-EINVAL, "ioapic: entry %u (0x%016llx) has reserved bits set", i,
                           (unsigned long long)rte[i]);
        if ((rte[i] & IOAPIC_RTE_REMOTE_IRR) && !(rte[i] & IOAPIC_RTE_LEVEL))
            return err_set(-EINVAL, "ioapic: entry %u is edge with remote IRR set", i);
        if ((deferred >> i & 1) && !(rte[i] & IOAPIC_RTE_LEVEL))
            return err_set(-EINVAL, "ioapic: entry %u is edge but deferred", i);
    }
    pthread_mutex_lock(&io->lock);
    io->id = id;
    io->regsel = regsel;
    io->lines = lines;
    memcpy(io->rte, rte, sizeof(rte));
    memset(io->eoi_count, 0, sizeof(io->eoi_count));
    io->deferred = io->timer.ops ? deferred : 0;
    if (io->deferred) {
        io->deferred_until = vclock_now_ns(&io->clock) + IOAPIC_STORM_DELAY_NS;
        vtimer_arm(&io->timer, io->deferred_until);
    } else {
        vtimer_disarm(&io->timer);
    }
    for (unsigned pin = 0; pin < IOAPIC_NR_PINS; pin++)
        if ((io->rte[pin] & IOAPIC_RTE_LEVEL) && pin_asserted(io, pin))
            service(io, pin);
    pthread_mutex_unlock(&io->lock);
    return 0;
}
