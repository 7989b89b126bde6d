/* virtio-balloon (device ID 5), as Firecracker's balloon: the host sets a
 * target and the guest's driver gives that much memory to the balloon
 * (inflate: ember discards those pages, they stop costing the host memory)
 * or takes it back (deflate). With deflate_on_oom the guest may deflate on
 * its own under memory pressure. Optional queues: statistics (the guest's
 * memory figures, requested every stats_interval_s) and free page reporting
 * (the guest reports ranges of memory it freed; ember discards them).
 *
 * Queue indices follow the negotiated features, as drivers number them:
 * inflate, deflate, then statistics and reporting only if negotiated.
 * Every page frame number and range the guest names goes through the
 * guest-memory accessor; one that is not guest RAM is skipped and counted. */
#ifndef EMBER_VIRTIO_BALLOON_H
#define EMBER_VIRTIO_BALLOON_H

#include "util/evloop.h"
#include "virtio/virtio.h"

#define VIRTIO_ID_BALLOON 5
#define VIRTIO_BALLOON_F_STATS_VQ 1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT 3
#define VIRTIO_BALLOON_F_REPORTING 5

/* free_page_hint_cmd_id: a run's id is 2 or more. */
#define BALLOON_HINT_CMD_STOP 0 /* host: no run; driver: its hints for the run are all sent */
#define BALLOON_HINT_CMD_DONE 1 /* host: the run is over, the guest may use the pages again */

#define BALLOON_PAGE_SIZE 4096u
#define BALLOON_NR_STATS 16 /* tags 0..15 (virtio 1.2) */

enum balloon_queue_role { BQ_INFLATE, BQ_DEFLATE, BQ_STATS, BQ_HINTING, BQ_REPORTING, BQ_NONE };

/* Free page hinting (Firecracker's /balloon/hinting/ requests): the host asks with
 * a new command id; the driver sends that id, then its free page blocks —
 * which it holds back from use until the host says DONE — then STOP. */
struct balloon_hinting {
    uint32_t host_cmd;      /* what the config space says now */
    uint32_t last_run;      /* the last run's id */
    uint32_t guest_cmd;     /* the last id the driver sent (if has_guest_cmd) */
    bool has_guest_cmd;
    bool ack_on_stop;       /* say DONE as soon as the driver sends STOP */
    uint64_t hints, hinted_bytes;
};

struct balloon_stats {
    uint32_t target_pages, actual_pages;
    uint16_t present;                  /* bit per tag the guest reported */
    uint64_t value[BALLOON_NR_STATS];  /* by tag */
};

struct virtio_balloon {
    struct virtio_dev vdev;
    uint32_t target_pages;      /* config num_pages */
    uint32_t actual_pages;      /* config actual, as the driver writes it */
    bool deflate_on_oom, reporting, hinting_enabled;
    struct balloon_hinting hinting;
    uint32_t stats_interval_s;  /* 0: no statistics queue */
    enum balloon_queue_role roles[VIRTIO_MAX_QUEUES];
    /* The statistics buffer the driver lent us: returned (used) when we want
     * new figures, and the driver adds it back filled in. */
    bool stats_held;
    uint16_t stats_head;
    uint16_t stats_present;
    uint64_t stats[BALLOON_NR_STATS];
    struct evloop *loop;
    int stats_timer; /* timerfd, or -1 */
    uint64_t inflated, deflated, discard_fails, reports, reported_bytes, stats_updates;
};

int virtio_balloon_init(struct virtio_balloon *b, const struct guest_mem *gm,
                        const struct balloon_config *cfg, struct evloop *loop)
    EMBER_MUST_CHECK;
void virtio_balloon_cleanup(struct virtio_balloon *b);
/* Ask for new statistics now (what the timer does). */
void virtio_balloon_request_stats(struct virtio_balloon *b);

/* Runtime control (PATCH /balloon, /balloon/statistics; GET). */
int virtio_balloon_set_target(struct virtio_balloon *b, uint32_t mib) EMBER_MUST_CHECK;
int virtio_balloon_set_stats_interval(struct virtio_balloon *b, uint32_t seconds)
    EMBER_MUST_CHECK;
void virtio_balloon_get_stats(struct virtio_balloon *b, struct balloon_stats *out);
/* Start a hinting run (a new command id), end it (DONE: the guest takes its
 * pages back), read where it is. */
void virtio_balloon_start_hinting(struct virtio_balloon *b, bool ack_on_stop);
void virtio_balloon_stop_hinting(struct virtio_balloon *b);
void virtio_balloon_hinting_status(struct virtio_balloon *b, struct balloon_hinting *out);

struct virtio_balloon *virtio_balloon_on_board(const struct board *b);
int virtio_balloon_board_setup(struct board *b) EMBER_MUST_CHECK;

#endif
