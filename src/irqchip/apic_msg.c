#include "irqchip/apic_msg.h"

#include <string.h>

#define MSI_ADDR_MASK (~0xfffffull)
#define MSI_ADDR_BASE 0xfee00000ull

bool apic_msg_from_msi(uint64_t address, uint32_t data, struct apic_msg *msg)
{
    memset(msg, 0, sizeof(*msg));
    msg->source = -1;
    if ((address & MSI_ADDR_MASK) != MSI_ADDR_BASE)
        return false;
    msg->dest = (uint8_t)(address >> 12);
    msg->redir_hint = (address >> 3) & 1;
    msg->dest_logical = (address >> 2) & 1;
    msg->vector = (uint8_t)data;
    msg->delivery_mode = (data >> 8) & 7;
    msg->trigger_level = (data >> 15) & 1;
    /* An MSI is always an assertion; a level-triggered MSI with the level bit
     * clear is meaningless except for INIT, where it is the de-assert. */
    msg->deassert = msg->trigger_level && !((data >> 14) & 1) &&
                    msg->delivery_mode == APIC_DM_INIT;
    return true;
}
