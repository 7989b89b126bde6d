/* The Firecracker release whose API ember implements: GET /version, and
 * --version when ember runs under Firecracker's name. */
#ifndef EMBER_API_VERSION_H
#define EMBER_API_VERSION_H

#define API_FIRECRACKER_VERSION "1.16.1"

#endif
