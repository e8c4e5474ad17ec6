/*
 * model.c - what a record shows: each row's state at each tick, the
 * counters, and each event as a sentence. Every drawing uses these, so the
 * plain text, the SVG and the player always agree.
 */
#include "timeline.h"

#include <errno.h>
#include <string.h>

const struct tl_legend tl_legend[TL_NSTATES - 1] = {
    {TL_LOCK, '~', "lock"},         {TL_LEADER, '=', "leader runs fn"},
    {TL_FOLLOWER, '-', "follower"}, {TL_VALUE, 'v', "value"},
    {TL_ERROR, 'x', "error"},       {TL_TIMEOUT, 'T', "timed out"},
    {TL_CANCEL, 'C', "cancelled"},  {TL_STUCK, '!', "stuck"},
};

bool tl_in_picture(enum tl_state s)
{
    return s != TL_LOCK && s != TL_IDLE;
}

bool tl_by_main(const struct tl_run *run, int i)
{
    return i >= 0 && i < run->nevents && run->events[i].row < 0;
}

static char glyph_of(enum tl_state s)
{
    for (int i = 0; i < TL_NSTATES - 1; i++)
        if (tl_legend[i].state == s)
            return tl_legend[i].glyph;
    return ' ';
}

static enum tl_state returned(int code)
{
    if (code == -ETIMEDOUT)
        return TL_TIMEOUT;
    if (code == -ECANCELED)
        return TL_CANCEL;
    return code == 0 ? TL_VALUE : TL_ERROR;
}

int tl_now(const struct tl_run *run, int upto)
{
    if (upto >= run->nevents) /* the whole picture */
        return run->ticks - 1;
    int now = 0;
    for (int i = 0; i < upto && i < run->nevents; i++)
        if (run->events[i].tick > now)
            now = run->events[i].tick;
    return now;
}

struct tl_cell tl_cell(const struct tl_run *run, int row, int tick, int upto)
{
    return tl_cell_at(run, row, tick, upto, tl_now(run, upto));
}

struct tl_cell tl_cell_at(const struct tl_run *run, int row, int tick, int upto,
                          int now)
{
    enum tl_state s = TL_IDLE;
    char mark = 0; /* a role that begins, or an end, at this very tick */
    int ended = -1, stuck = -1;
    if (tick > now)
        return (struct tl_cell){TL_IDLE, ' '};
    for (int i = 0; i < upto && i < run->nevents; i++) {
        const struct tl_event *e = &run->events[i];
        if (e->row != row)
            continue;
        if (e->kind == TL_EV_STUCK && stuck < 0)
            stuck = e->tick; /* told late, but stuck since that tick */
        if (e->tick > tick)
            continue;
        bool here = e->tick == tick;
        switch (e->kind) {
        case SC_EV_ENTER:
            s = TL_LOCK;
            break;
        case SC_EV_LEAD:
            s = TL_LEADER;
            mark = here ? 'L' : 0;
            break;
        case SC_EV_JOIN:
            s = TL_FOLLOWER;
            mark = here ? 'F' : 0;
            break;
        case SC_EV_TIMEOUT:
            s = TL_TIMEOUT;
            break;
        case SC_EV_CANCEL:
            s = TL_CANCEL;
            ended = e->tick;
            break;
        case SC_EV_RETURN:
            s = returned(e->code);
            ended = e->tick;
            break;
        default:
            break;
        }
    }
    if (stuck >= 0 && tick >= stuck)
        return (struct tl_cell){TL_STUCK, glyph_of(TL_STUCK)};
    if (ended >= 0 && tick > ended)
        return (struct tl_cell){TL_IDLE, ' '};
    if (ended == tick || mark == 0)
        return (struct tl_cell){s, glyph_of(s)};
    return (struct tl_cell){s, mark};
}

struct tl_counts tl_count(const struct tl_run *run, int upto)
{
    struct tl_counts n = {0, 0, 0};
    for (int i = 0; i < upto && i < run->nevents; i++) {
        const struct tl_event *e = &run->events[i];
        n.flights += e->kind == SC_EV_LEAD;
        n.callers += e->kind == SC_EV_ENTER;
        n.suppressed += e->kind == SC_EV_RETURN && !e->fresh && e->code >= 0;
    }
    return n;
}

const char *tl_code_name(int code)
{
    switch (code) {
    case 0:
        return "0";
    case EIO:
        return "EIO";
    case ENOENT:
        return "ENOENT";
    case -ETIMEDOUT:
        return "-ETIMEDOUT";
    case -ECANCELED:
        return "-ECANCELED";
    case -EDEADLK:
        return "-EDEADLK";
    case -ENOMEM:
        return "-ENOMEM";
    default:
        return code < 0 ? "-E?" : "E?";
    }
}

/* Whether row joined a flight before event i: a LEAD then is a take-over. */
static bool joined_before(const struct tl_run *run, int row, int i)
{
    while (i-- > 0)
        if (run->events[i].row == row && run->events[i].kind == SC_EV_JOIN)
            return true;
    return false;
}

/* Whether event i, a wake-up, is for a hand-off rather than an end. */
static bool handed_off(const struct tl_run *run, int i)
{
    const struct tl_event *e = &run->events[i];
    while (i-- > 0) {
        const struct tl_event *c = &run->events[i];
        if (c->flight == e->flight && strcmp(c->key, e->key) == 0 &&
            (c->kind == SC_EV_DONE || c->kind == SC_EV_HANDOFF))
            return c->kind == SC_EV_HANDOFF;
    }
    return false;
}

void tl_describe(const struct tl_run *run, int i, char *buf, size_t size)
{
    const struct tl_event *e = &run->events[i];
    const char *who = e->row >= 0 ? run->rows[e->row].label : "main";
    char g[TL_LABEL]; /* "G12", the label without its key */
    snprintf(g, sizeof g, "%s", who);
    g[strcspn(g, " ")] = '\0';
    const char *code = tl_code_name(e->code);
    int n = snprintf(buf, size, "t=%-3d ", e->tick);
    if (n < 0 || (size_t)n >= size)
        return;
    buf += n;
    size -= (size_t)n;
    unsigned long f = e->flight;
    switch (e->kind) {
    case SC_EV_ENTER:
        snprintf(buf, size, "%s calls for key %s", g, e->key);
        break;
    case SC_EV_LEAD:
        if (joined_before(run, e->row, i)) /* counts as a run of fn too */
            snprintf(buf, size,
                     "%s takes over flight %lu to run fn again: flights %d", g,
                     f, tl_count(run, i + 1).flights);
        else
            snprintf(buf, size,
                     "%s leads flight %lu of %s: nobody was fetching it", g, f,
                     e->key);
        break;
    case SC_EV_JOIN:
        snprintf(buf, size, "%s joins flight %lu of %s and waits", g, f,
                 e->key);
        break;
    case SC_EV_FN_START:
        snprintf(buf, size, "%s runs fn for flight %lu", g, f);
        break;
    case SC_EV_FN_RETURN:
        snprintf(buf, size, "%s's fn returns %s", g,
                 e->code == 0 ? "a value" : code);
        break;
    case SC_EV_DELETE:
        snprintf(buf, size,
                 "flight %lu leaves the map: the next call for %s "
                 "starts anew",
                 f, e->key);
        break;
    case SC_EV_DONE:
        snprintf(buf, size, "%s marks flight %lu done (%s), wakes followers", g,
                 f, code);
        break;
    case SC_EV_HANDOFF:
        snprintf(buf, size,
                 "%s's fn failed (%s): flight %lu passes to a follower", g,
                 code, f);
        break;
    case SC_EV_WAKE:
        snprintf(buf, size,
                 handed_off(run, i) ? "%s wakes: flight %lu is handed on"
                                    : "%s wakes: flight %lu is done",
                 g, f);
        break;
    case SC_EV_TIMEOUT:
        snprintf(buf, size, "%s gives up: its deadline has passed", g);
        break;
    case SC_EV_CANCEL:
        snprintf(buf, size, "%s's thread is cancelled inside the kit", g);
        break;
    case SC_EV_RETURN:
        snprintf(buf, size, "%s returns %s%s", g,
                 e->code == 0 ? run->rows[e->row].value : code,
                 e->code < 0 ? ""
                 : e->fresh  ? " (ran fn)"
                             : " (shared)");
        break;
    case TL_EV_FORGET:
        snprintf(buf, size, "main calls sc_forget(\"%s\")", e->key);
        break;
    case TL_EV_KILL:
        snprintf(buf, size, "main cancels %s's thread",
                 run->rows[e->code].label);
        break;
    case TL_EV_WAIT:
        snprintf(buf, size, "%s locks again and waits, not checking done", g);
        break;
    case TL_EV_STUCK:
        snprintf(buf, size, "%s is stuck: flight %lu was done before it waited",
                 g, f);
        break;
    default:
        snprintf(buf, size, "?");
    }
}

void tl_result_of(const struct tl_run *run, int row, int upto, char *buf,
                  size_t size)
{
    snprintf(buf, size, "%s", "");
    for (int i = 0; i < upto && i < run->nevents; i++) {
        const struct tl_event *e = &run->events[i];
        if (e->row != row)
            continue;
        if (e->kind == SC_EV_RETURN)
            snprintf(buf, size, "%s%s", run->rows[row].value,
                     e->code < 0 ? ""
                     : e->fresh  ? " (ran fn)"
                                 : " (shared)");
        else if (e->kind == SC_EV_CANCEL)
            snprintf(buf, size, "cancelled");
        else if (e->kind == TL_EV_STUCK)
            snprintf(buf, size, "stuck: woken before it waited");
    }
}
