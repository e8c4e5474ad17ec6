/*
 * steps.c - the player's steps: each event, and between two events that
 * are ticks apart, each tick on the way, so that a wait of ten ticks takes
 * ten steps on screen instead of one jump.
 */
#include "timeline.h"

#include <string.h>

/* The step after s, or s itself at the end. */
static struct tl_step next(const struct tl_run *run, struct tl_step s)
{
    if (s.upto >= run->nevents)
        return s;
    int t = run->events[s.upto].tick; /* the next event's */
    if (t > s.now + 1)
        return (struct tl_step){s.upto, s.now + 1}; /* a tick goes by */
    return (struct tl_step){s.upto + 1, t > s.now ? t : s.now};
}

int tl_steps(const struct tl_run *run)
{
    struct tl_step s = {0, 0};
    int k = 0;
    while (s.upto < run->nevents) {
        s = next(run, s);
        k++;
    }
    return k;
}

struct tl_step tl_step(const struct tl_run *run, int k)
{
    struct tl_step s = {0, 0};
    for (int i = 0; i < k && s.upto < run->nevents; i++)
        s = next(run, s);
    if (s.upto >= run->nevents)
        s.now = run->ticks - 1; /* the end draws the whole picture */
    return s;
}

/* "G1 runs fn; G2, G3 wait": who is in a call at the step's tick. */
static void in_calls(const struct tl_run *run, struct tl_step s, char *buf,
                     size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int pass = 0; pass < 2; pass++) { /* leaders, then followers */
        enum tl_state want = pass == 0 ? TL_LEADER : TL_FOLLOWER;
        int k = 0;
        for (int r = 0; r < run->nrows && n < size; r++) {
            if (tl_cell_at(run, r, s.now, s.upto, s.now).state != want)
                continue;
            char g[TL_LABEL];
            snprintf(g, sizeof g, "%s", run->rows[r].label);
            g[strcspn(g, " ")] = '\0';
            n += (size_t)snprintf(buf + n, size - n, "%s%s",
                                  k == 0 && n > 0 ? "; "
                                  : k > 0         ? ", "
                                                  : "",
                                  g);
            k++;
        }
        if (k > 0 && n < size)
            n += (size_t)snprintf(buf + n, size - n, "%s",
                                  pass == 0 ? (k > 1 ? " run fn" : " runs fn")
                                            : (k > 1 ? " wait" : " waits"));
    }
}

void tl_step_say(const struct tl_run *run, int k, char *buf, size_t size)
{
    struct tl_step s = tl_step(run, k), before = tl_step(run, k - 1);
    if (k <= 0 || s.upto == 0) {
        snprintf(buf, size, "start: nothing has happened yet");
    } else if (s.upto > before.upto) {
        tl_describe(run, s.upto - 1, buf, size);
    } else {
        char who[96];
        in_calls(run, s, who, sizeof who);
        snprintf(buf, size, "t=%-3d the clock moves on: %s", s.now,
                 who[0] != '\0' ? who : "nobody is in a call");
    }
}
