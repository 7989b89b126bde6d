#include "bus/pci/pci.h"

#include <string.h>

#include "util/util.h"

#define CONF1_ENABLE 0x80000000u
#define CONF1_ADDRESS_MASK 0x80fffffcu /* bits 30-24 and 1-0 are reserved */

#define HOST_BRIDGE_VENDOR 0x1b36 /* Red Hat's generic host bridge IDs */
#define HOST_BRIDGE_DEVICE 0x0008
#define PCI_CLASS_HOST_BRIDGE 0x060000

void pci_bus_init(struct pci_bus *bus)
{
    memset(bus, 0, sizeof(*bus));
    pthread_mutex_init(&bus->lock, NULL);
}

void pci_bus_destroy(struct pci_bus *bus)
{
    pthread_mutex_destroy(&bus->lock);
}

int pci_bus_add(struct pci_bus *bus, struct pci_device *dev, unsigned slot)
{
    if (slot >= PCI_MAX_SLOTS)
        return err_set(-EINVAL, "PCI slot %u out of range", slot);
    int ret = 0;
    pthread_mutex_lock(&bus->lock);
    if (bus->slots[slot])
        ret = err_set(-EEXIST, "PCI slot %u is taken by %s", slot, bus->slots[slot]->name);
    else {
        dev->slot = slot;
        bus->slots[slot] = dev;
    }
    pthread_mutex_unlock(&bus->lock);
    return ret;
}

int pci_bus_free_slot(const struct pci_bus *bus)
{
    for (unsigned i = 0; i < PCI_MAX_SLOTS; i++)
        if (!bus->slots[i])
            return (int)i;
    return -ENOSPC;
}

void pci_device_init(struct pci_device *dev, const char *name, uint16_t vendor,
                     uint16_t device, uint32_t class_code, uint8_t revision)
{
    memset(dev, 0, sizeof(*dev));
    dev->name = name;
    le16_store(dev->config + PCI_VENDOR_ID, vendor);
    le16_store(dev->config + PCI_DEVICE_ID, device);
    dev->config[PCI_REVISION] = revision;
    dev->config[PCI_CLASS_PROG] = (uint8_t)class_code;
    le16_store(dev->config + PCI_CLASS_DEVICE, (uint16_t)(class_code >> 8));
    le16_store(dev->config + PCI_SUBSYSTEM_VENDOR_ID, vendor);
}

#define PCI_BAR_MEM_TYPE_64 0x4
#define PCI_CAPS_START 0x40

int pci_device_add_bar(struct pci_device *dev, unsigned bar, enum pci_bar_type type,
                       uint64_t size, uint64_t addr)
{
    unsigned slots = type == PCI_BAR_MEM64 ? 2 : 1;
    if (bar + slots > PCI_NUM_BARS || size < 16 || (size & (size - 1)) ||
        !is_aligned(addr, size) || (type == PCI_BAR_MEM32 && addr + size > (1ull << 32)))
        return err_set(-EINVAL, "%s: bad BAR %u (%#llx bytes at %#llx)", dev->name, bar,
                       (unsigned long long)size, (unsigned long long)addr);
    dev->bars[bar] = (struct pci_bar){.type = type, .size = size};
    unsigned off = PCI_BAR0 + bar * 4;
    uint64_t mask = ~(size - 1);
    le32_store(dev->config + off, (uint32_t)addr | (type == PCI_BAR_MEM64 ? PCI_BAR_MEM_TYPE_64 : 0));
    le32_store(dev->wmask + off, (uint32_t)mask & ~0xfu);
    if (type == PCI_BAR_MEM64) {
        le32_store(dev->config + off + 4, (uint32_t)(addr >> 32));
        le32_store(dev->wmask + off + 4, (uint32_t)(mask >> 32));
    }
    /* BARs exist, so the guest may turn memory decoding on and off. */
    dev->wmask[PCI_COMMAND] |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    dev->wmask[PCI_COMMAND + 1] |= PCI_COMMAND_INTX_DISABLE >> 8;
    return 0;
}

uint64_t pci_bar_address(const struct pci_device *dev, unsigned bar)
{
    unsigned off = PCI_BAR0 + bar * 4;
    uint64_t addr = le32_load(dev->config + off) & ~0xfull;
    if (dev->bars[bar].type == PCI_BAR_MEM64)
        addr |= (uint64_t)le32_load(dev->config + off + 4) << 32;
    return addr;
}

int pci_device_add_capability(struct pci_device *dev, uint8_t id, const void *body,
                              size_t body_len)
{
    unsigned start = dev->cap_end ? dev->cap_end : PCI_CAPS_START;
    if (start + 2 + body_len > PCI_CONFIG_SIZE)
        return err_set(-ENOSPC, "%s: configuration space is full", dev->name);
    dev->config[start] = id;
    dev->config[start + 1] = 0;
    memcpy(dev->config + start + 2, body, body_len);
    if (!(dev->config[PCI_STATUS] & PCI_STATUS_CAP_LIST)) {
        dev->config[PCI_CAPABILITY_LIST] = (uint8_t)start;
        dev->config[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
    } else {
        unsigned prev = dev->config[PCI_CAPABILITY_LIST];
        while (dev->config[prev + 1])
            prev = dev->config[prev + 1];
        dev->config[prev + 1] = (uint8_t)start;
    }
    dev->cap_end = (uint8_t)align_up(start + 2 + body_len, 4);
    return (int)start;
}

/* A BAR decodes when memory decoding is on and it holds a real address (not
 * zero, not the all-ones pattern a guest writes while sizing it). */
void pci_device_update_bars(struct pci_device *dev)
{
    bool decode = le16_load(dev->config + PCI_COMMAND) & PCI_COMMAND_MEMORY;
    for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
        struct pci_bar *b = &dev->bars[i];
        if (b->type == PCI_BAR_NONE)
            continue;
        uint64_t addr = pci_bar_address(dev, i);
        uint64_t limit = b->type == PCI_BAR_MEM64 ? UINT64_MAX : 0xffffffffull;
        bool mapped = decode && addr != 0 && addr + b->size - 1 < limit &&
                      addr + b->size > addr;
        if (mapped == b->mapped && (!mapped || addr == b->mapped_addr))
            continue;
        b->mapped = mapped;
        b->mapped_addr = mapped ? addr : 0;
        if (dev->ops && dev->ops->bar_remap)
            dev->ops->bar_remap(dev, i, addr, mapped);
    }
}

void pci_host_bridge_init(struct pci_device *dev)
{
    pci_device_init(dev, "host-bridge", HOST_BRIDGE_VENDOR, HOST_BRIDGE_DEVICE,
                    PCI_CLASS_HOST_BRIDGE, 0);
    dev->config[PCI_COMMAND] = PCI_COMMAND_MEMORY | PCI_COMMAND_IO;
}

/* Caller holds the bus lock. Only function 0 of each slot exists. */
static struct pci_device *pci_lookup(struct pci_bus *bus, unsigned slot, unsigned fn)
{
    if (slot >= PCI_MAX_SLOTS || fn != 0)
        return NULL;
    return bus->slots[slot];
}

static bool config_access_ok(unsigned offset, unsigned len)
{
    return (len == 1 || len == 2 || len == 4) && offset + len <= PCI_CONFIG_SIZE &&
           (offset & (len - 1)) == 0;
}

uint32_t pci_config_read(struct pci_bus *bus, unsigned slot, unsigned fn, unsigned offset,
                         unsigned len)
{
    uint32_t value = 0xffffffffu;
    if (!config_access_ok(offset, len))
        return value;
    pthread_mutex_lock(&bus->lock);
    struct pci_device *dev = pci_lookup(bus, slot, fn);
    if (dev) {
        if (dev->ops && dev->ops->config_read)
            dev->ops->config_read(dev, offset, len);
        value = (uint32_t)le_load_n(dev->config + offset, len);
    }
    pthread_mutex_unlock(&bus->lock);
    return len == 4 ? value : value & ((1u << (8 * len)) - 1);
}

void pci_config_write(struct pci_bus *bus, unsigned slot, unsigned fn, unsigned offset,
                      unsigned len, uint32_t value)
{
    if (!config_access_ok(offset, len))
        return;
    pthread_mutex_lock(&bus->lock);
    struct pci_device *dev = pci_lookup(bus, slot, fn);
    if (dev) {
        for (unsigned i = 0; i < len; i++) {
            uint8_t byte = (uint8_t)(value >> (8 * i));
            uint8_t mask = dev->wmask[offset + i];
            dev->config[offset + i] = (uint8_t)((dev->config[offset + i] & ~mask) | (byte & mask));
        }
        if (dev->ops && dev->ops->config_written)
            dev->ops->config_written(dev, offset, len);
        bool touches_bars = offset < PCI_BAR0 + 4 * PCI_NUM_BARS && offset + len > PCI_BAR0;
        bool touches_command = offset < PCI_COMMAND + 2 && offset + len > PCI_COMMAND;
        if (touches_bars || touches_command)
            pci_device_update_bars(dev);
    }
    pthread_mutex_unlock(&bus->lock);
}

/* Offsets 0-3: CONFIG_ADDRESS (dword access only, as on PC chipsets: byte
 * accesses there belong to other ports); offsets 4-7: CONFIG_DATA. */
static void conf1_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
    struct pci_bus *bus = opaque;
    uint32_t value = 0xffffffffu;
    if (offset == 0 && len == 4) {
        pthread_mutex_lock(&bus->lock);
        value = bus->config_address;
        pthread_mutex_unlock(&bus->lock);
    } else if (offset >= 4) {
        pthread_mutex_lock(&bus->lock);
        uint32_t addr = bus->config_address;
        pthread_mutex_unlock(&bus->lock);
        unsigned reg = (addr & 0xfc) + (unsigned)(offset - 4);
        if ((addr & CONF1_ENABLE) && ((addr >> 16) & 0xff) == 0)
            value = pci_config_read(bus, (addr >> 11) & 0x1f, (addr >> 8) & 7, reg, len);
    }
    le_store_n(data, len, value);
}

static void conf1_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
    struct pci_bus *bus = opaque;
    uint32_t value = (uint32_t)le_load_n(data, len);
    if (offset == 0 && len == 4) {
        pthread_mutex_lock(&bus->lock);
        bus->config_address = value & CONF1_ADDRESS_MASK;
        pthread_mutex_unlock(&bus->lock);
    } else if (offset >= 4) {
        pthread_mutex_lock(&bus->lock);
        uint32_t addr = bus->config_address;
        pthread_mutex_unlock(&bus->lock);
        unsigned reg = (addr & 0xfc) + (unsigned)(offset - 4);
        if ((addr & CONF1_ENABLE) && ((addr >> 16) & 0xff) == 0)
            pci_config_write(bus, (addr >> 11) & 0x1f, (addr >> 8) & 7, reg, len, value);
    }
}

const struct bus_ops pci_conf1_bus_ops = {
    .read = conf1_read,
    .write = conf1_write,
};

void pci_device_save(const struct pci_device *dev, struct rec r)
{
    rec_put_bytes(r, "config", dev->config, sizeof(dev->config));
}

int pci_device_load(struct pci_device *dev, struct rec r)
{
    uint8_t config[PCI_CONFIG_SIZE];
    int ret = rec_get_bytes(r, "config", config, sizeof(config));
    if (ret)
        return err_prefix(ret, "%s", dev->name);
    /* Identity: IDs, revision and class, header type, subsystem. */
    static const struct { unsigned off, len; } identity[] = {
        {PCI_VENDOR_ID, 4}, {PCI_REVISION, 4}, {PCI_HEADER_TYPE, 1},
        {PCI_SUBSYSTEM_VENDOR_ID, 4}, {PCI_CAPABILITY_LIST, 1}};
    for (size_t i = 0; i < sizeof(identity) / sizeof(identity[0]); i++)
        if (memcmp(config + identity[i].off, dev->config + identity[i].off, identity[i].len))
            return err_set(-EINVAL, "%s: the snapshot has a different device in slot %u",
                           dev->name, dev->slot);
    /* Only what the guest can write changes; the rest stays this device's. */
    for (unsigned i = 0; i < PCI_CONFIG_SIZE; i++)
        dev->config[i] = (uint8_t)((dev->config[i] & ~dev->wmask[i]) |
                                   (config[i] & dev->wmask[i]));
    dev->config[PCI_STATUS] = config[PCI_STATUS];
    pci_device_update_bars(dev);
    return 0;
}
