/* Which of a guest's frames belong to the metadata service, and making
 * them plain frames libslirp can take (it checks every checksum and knows
 * nothing of virtio-net offloads). */
#include "virtio/backends/net_backend.h"

#include <arpa/inet.h>
#include <string.h>

#include "util/util.h"

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ARP_TPA 24 /* the target protocol address in an IPv4-over-Ethernet ARP body */
#define ARP_LEN 28
#define IP_DST 16

uint32_t net_mmds_stack_addr(uint32_t ip)
{
    uint32_t host = ntohl(ip);
    return htonl((host & ~0xffu) | ((host & 0xff) == 1 ? 2 : 1));
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

bool net_mmds_wants(uint32_t ip, const uint8_t *frame, size_t len)
{
    if (len < NET_HDR_SIZE + ETH_HLEN)
        return false;
    const uint8_t *eth = frame + NET_HDR_SIZE;
    size_t rest = len - NET_HDR_SIZE - ETH_HLEN;
    uint32_t addr;
    switch (be16(eth + 12)) {
    case ETH_P_ARP:
        if (rest < ARP_LEN)
            return false;
        memcpy(&addr, eth + ETH_HLEN + ARP_TPA, 4);
        /* Requests for the service, and answers to the stack's own. */
        return addr == ip || addr == net_mmds_stack_addr(ip);
    case ETH_P_IP:
        if (rest < 20 || (eth[ETH_HLEN] >> 4) != 4)
            return false;
        memcpy(&addr, eth + ETH_HLEN + IP_DST, 4);
        return addr == ip;
    default:
        return false;
    }
}

/* The Internet checksum of [p, p + len), folded, not inverted. */
static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
    for (; len > 1; p += 2, len -= 2)
        sum += (uint32_t)(p[0] << 8 | p[1]);
    if (len)
        sum += (uint32_t)(p[0] << 8);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return sum;
}

int net_mmds_complete_frame(uint8_t *frame, size_t len)
{
    uint8_t *hdr = frame;
    if (hdr[1] != NET_HDR_GSO_NONE)
        return -EMSGSIZE; /* a segmentation offload: never needed for a small request */
    if (hdr[0] & NET_HDR_F_NEEDS_CSUM) {
        /* The guest summed the pseudo-header into the field; the rest is ours. */
        size_t start = (size_t)(hdr[6] | hdr[7] << 8), off = (size_t)(hdr[8] | hdr[9] << 8);
        size_t payload = len - NET_HDR_SIZE;
        if (start > payload || off > payload - start || payload - start - off < 2)
            return -EINVAL;
        uint8_t *p = frame + NET_HDR_SIZE + start;
        uint16_t csum = (uint16_t)~sum16(p, payload - start, 0);
        p[off] = (uint8_t)(csum >> 8);
        p[off + 1] = (uint8_t)csum;
    }
    memset(hdr, 0, NET_HDR_SIZE);
    return 0;
}

size_t net_mmds_gratuitous_arp(const uint8_t *frame, size_t len, uint8_t *out)
{
    if (len < NET_HDR_SIZE + ETH_HLEN + 20 || be16(frame + NET_HDR_SIZE + 12) != ETH_P_IP)
        return 0;
    const uint8_t *eth = frame + NET_HDR_SIZE;
    uint8_t *o = out + NET_HDR_SIZE;
    memset(out, 0, NET_MMDS_ARP_FRAME);
    memset(o, 0xff, 6);                              /* broadcast */
    memcpy(o + 6, eth + 6, 6);                       /* from the guest's MAC */
    o[12] = 0x08, o[13] = 0x06;
    static const uint8_t arp_head[8] = {0, 1, 8, 0, 6, 4, 0, 1}; /* Ethernet, IPv4, request */
    memcpy(o + ETH_HLEN, arp_head, 8);
    memcpy(o + ETH_HLEN + 8, eth + 6, 6);            /* sender MAC */
    memcpy(o + ETH_HLEN + 14, eth + ETH_HLEN + 12, 4); /* sender IP: the packet's source */
    memcpy(o + ETH_HLEN + ARP_TPA, eth + ETH_HLEN + 12, 4); /* target: the same (gratuitous) */
    return NET_MMDS_ARP_FRAME;
}
