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
    if (dev)
        value = (uint32_t)le_load_n(dev->config + offset, len);
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
