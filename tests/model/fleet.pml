/*
 * fleet.pml - libsharedcalls-redis's protocol (src/redis/protocol.c) as a
 * model for Spin: one key, P processes (2 unless -DP=3), each calling
 * scr__fleet_flight once as the leader thread of its own callers (the
 * coalescing inside a process is sharedcalls.pml's). Redis is the global
 * state below, and each Lua script is one indivisible step (a d_step), as
 * Redis runs a script with nothing in between. Spin tries every
 * interleaving of the processes' steps, the scripts and the times to live.
 *
 * Time is not modelled, only what it allows. A time to live is an event
 * that may happen at any moment while its key exists: a leader may be
 * slower than its lock by any margin, and a waiter slower than the value.
 * A live leader's lock runs out at most EXPIRIES times in a run (2 unless
 * told: else each new leader could be slower than its lock and the fence
 * would grow for ever); a dead leader's lock always runs out in the end.
 * A waiter's timer (it sleeps until lock_until + 1) may go off once the
 * lock it saw is gone from Redis, and not before: lock_until is the PTTL
 * Redis gave, counted from the reply on the waiter's own clock.
 *
 * fn is two steps, its start and its return, so that anything may happen
 * while it runs. It returns "the value of fence f" (in the model a value
 * is the fence of the flight that made it), or fails (unless -DFAILS=0),
 * or the process dies in it and leaves its lock to run out (unless
 * -DCRASH=0).
 *
 * Properties, each asserted where it can first fail (scripts/model.sh
 * names a counterexample from the assertion's text):
 *   - no process returns a stale value as current: every value returned
 *     was stored while its fence was still the newest, before a newer
 *     leader was elected (fresh[]), and none is older than the fence of
 *     the holder the process last saw (f). -DCHECK_RETURNS=0 leaves these
 *     two out, to show what else a mistake breaks;
 *   - the value in Redis never goes back to an older fence (vmax);
 *   - a script deletes only its own leader's lock (the token check);
 *   - a lock in Redis is always the newest election's;
 *   - at the end no live process has left its lock behind.
 * Spin itself checks that no process waits for ever (an invalid end
 * state): every process that does not die returns, a value or its own
 * fn's failure. With -DNP and pan -l it checks that the model has no
 * cycle at all, so that every run ends, with no fairness assumed.
 *
 * Variants: a mistake each, or a property the design does not have:
 *   -DNO_FENCE  publish_script stores the value without comparing the
 *               fence counter with the leader's fence;
 *   -DNO_TOKEN  release_script and publish_script delete the lock without
 *               comparing its "TOKEN f" with the leader's;
 *   -DONE_FN    asserts, once every process has returned, that no two fns
 *               ran at once for the key, which the time to live cannot
 *               promise: a counterexample is expected, and its trail
 *               shows the fence keeping the slower leader's value out.
 *               With -DCRASH=0 -DFAILS=0 (fn never fails) that trail is
 *               the shortest.
 *
 * Each step's comment starts with the script or the function of
 * protocol.c it stands for; scripts/model.sh prints a trail as a timeline
 * of those comments. Steps are cpp macros or single lines, so that each
 * keeps the line of its comment in a trail.
 */
#ifndef P
#define P 2
#endif
#ifndef EXPIRIES
#define EXPIRIES 2
#endif
#ifndef CRASH
#define CRASH 1
#endif
#ifndef FAILS
#define FAILS 1
#endif
#ifndef CHECK_RETURNS
#define CHECK_RETURNS 1
#endif
/* Elections at most: each one's lock ends when its leader returns or
 * dies, each process's one end, or runs out while its leader lives. */
#define MAXF (P + EXPIRIES)
#define DONE 0   /* PUBLISH 'done f' */
#define FAILED 1 /* PUBLISH 'failed f' */

/* Redis: the three keys PREFIX{KEY}:lock, :fence and :value, and the
 * channel PREFIX{KEY}:done. A lock "TOKEN f" is known by its f: each
 * election has an f of its own. */
byte lock;                       /* the holder's f; 0: free */
byte fence;                      /* the fencing counter */
byte vfence;                     /* the value "of fence f"; 0: none */
bool subscribed[P];              /* SUBSCRIBEd to the channel */
chan inbox[P] = [MAXF] of {bit}; /* messages a subscriber has yet to read */
/* What the model keeps to state the properties; Redis keeps none of it. */
byte holder;          /* the process whose lock it is */
byte vmax;            /* the newest fence ever stored as the value */
bool fresh[MAXF + 1]; /* the value of fence f was stored while f was newest */
bool dead[P];
byte crashed, finished; /* processes dead, and returned */
byte expiries;          /* times a live leader's lock ran out */
byte running;           /* leaders inside fn now */
bool overlapped;        /* two ran fn at once (asserted with -DONE_FN) */

/* A script's PUBLISH reaches every process subscribed at that moment. */
#define PUBLISH(what) i = 0; do :: i < P -> if :: subscribed[i] -> assert(len(inbox[i]) < MAXF); inbox[i]!what :: else fi; i++ :: else -> break od; i = 0
/* A script's DEL of the lock: only the leader's own "TOKEN f" with the
 * token check; without it, whatever lock is there. */
#define DEL_LOCK assert(lock == f); lock = 0
#if NO_TOKEN
#define DEL_IF_MINE if :: lock != 0 -> DEL_LOCK :: else fi
#else
#define DEL_IF_MINE if :: lock == f -> DEL_LOCK :: else fi
#endif
/* elect_script, called by elect(): the lock free, INCR the fence and SET
 * the lock "TOKEN f" with its time to live: elected, f->fence = f. Else
 * {0, the holder's "TOKEN f", its PTTL}: f->fence = the holder's f. */
#define ELECT d_step { assert(lock == 0 || lock == fence); if :: lock == 0 -> fence++; assert(fence <= MAXF); f = fence; lock = f; holder = me; elected = true :: else -> f = lock; elected = false fi }
/* release_script: the lock goes if it is still "TOKEN f", and the waiters
 * are told 'failed'. Without the token check: DEL and PUBLISH anyway. */
#if NO_TOKEN
#define RELEASE d_step { DEL_IF_MINE; PUBLISH(FAILED) }
#else
#define RELEASE d_step { if :: lock == f -> DEL_LOCK; PUBLISH(FAILED) :: else fi }
#endif
/* publish_script: if the fence counter is still f, SET the value (with f)
 * and its time to live, DEL the lock if it is still "TOKEN f", PUBLISH
 * 'done f'; else return {0, the counter}, and lead() makes it f->fence
 * (got = 0: the leader no longer holds a value to return). */
#if NO_FENCE
#define PUBLISH_VALUE d_step { fresh[f] = (fence == f); assert(f >= vmax); vfence = f; vmax = f; DEL_IF_MINE; PUBLISH(DONE) }
#else
#define PUBLISH_VALUE d_step { if :: fence != f -> f = fence; got = 0 :: else -> fresh[f] = true; assert(f >= vmax); vfence = f; vmax = f; DEL_IF_MINE; PUBLISH(DONE) fi }
#endif
/* scr__fleet_flight returns, and frees the subscription (redisFree). */
#define UNSUBSCRIBE subscribed[me] = false; do :: nempty(inbox[me]) -> inbox[me]?_ :: empty(inbox[me]) -> break od
#if CHECK_RETURNS
#define RETURN(v) atomic { assert(fresh[v]); assert(v >= f); UNSUBSCRIBE; got = 0; f = 0; finished++ }; goto out
#else
#define RETURN(v) atomic { UNSUBSCRIBE; got = 0; f = 0; finished++ }; goto out
#endif

proctype Process(byte me)
{
    byte f;   /* f->fence: its own fence once elected, else the holder's */
    byte got; /* the value it holds, by its fence; 0: none */
    byte i;
    bool elected;

    /* scr__fleet_flight() calls elect() once: elected, it leads; else it
     * waits, knowing the holder's f. */
    ELECT; /* elect_script: first try */
    if
    :: elected -> goto lead
    :: else -> goto waiting
    fi;
lead: /* lead() runs fn, then publishes or releases */
#if ONE_FN
    atomic { overlapped = overlapped || running > 0; running++ }; /* run_fn(): fn starts */
#else
    running++; /* run_fn(): fn starts */
#endif
    if
    :: atomic { running--; got = f }; /* run_fn(): fn returns a value */
#if FAILS
    :: running--; /* run_fn(): fn fails */
       RELEASE; /* release_script: fn failed */
       atomic { UNSUBSCRIBE; f = 0; elected = false; finished++ }; /* lead(): returns fn's failure */
       goto out
#endif
#if CRASH
    /* Not in protocol.c: the process is killed, or its host is lost. */
    :: atomic { running--; dead[me] = true; crashed++; UNSUBSCRIBE; f = 0; elected = false }; /* run_fn(): the process dies */
       goto out
#endif
    fi;
    PUBLISH_VALUE; /* publish_script: fn's value */
    /* Stored: lead() returns its own value to its callers. Stale: it
     * counts it, drops it, takes the counter as f->fence and waits for
     * that flight's value (its lock_until a whole lock_ttl_ms away). */
    if
    :: got != 0 -> RETURN(got) /* lead(): returns its own value */
    :: else -> elected = false /* lead(): stale: waits */
    fi;
waiting: /* wait_for_value() */
    /* It subscribes (if it is not yet) before it reads, so that a value
     * published after the read wakes it. */
    subscribed[me] = true; /* subscribe(): before reading */
reading:
    /* read_value(): GET the value; one with fence >= f->fence is the
     * answer, an older one is ignored. */
    atomic { if :: vfence != 0 && vfence >= f -> got = vfence :: else -> got = 0 fi }; /* read_value(): GET */
    if
    :: got != 0 -> RETURN(got) /* wait_for_value(): returns value */
    :: else
    fi;
    /* scr__next_message() until lock_until + 1: 'done' sends it back to
     * read; 'failed', or the time passing, to elect() (a takeover). */
    if /* scr__next_message(): sleeps */
    :: inbox[me]?DONE -> goto reading /* scr__next_message(): 'done' */
    :: inbox[me]?FAILED /* scr__next_message(): 'failed' */
    :: lock != f /* scr__next_message(): times out */
    fi;
    /* Elected, it leads (f->takeover); else it knows the new holder's f
     * and its PTTL, and reads again. */
    ELECT; /* elect_script: takeover */
    if
    :: elected -> goto lead
    :: else -> goto reading
    fi;
out:
    skip
}

/* The times to live: SET ... PX in elect_script (the lock) and in
 * publish_script (the value). */
proctype Ttl()
{
end:
    do
    :: atomic { lock != 0 && (dead[holder] || expiries < EXPIRIES) -> if :: !dead[holder] -> expiries++ :: else fi; lock = 0 } /* PX: the lock expires */
    :: atomic { vfence != 0 -> vfence = 0 } /* PX: the value expires */
    od
}

init
{
    byte i;
    atomic {
        i = 0;
        do
        :: i < P -> run Process(i); i++
        :: else -> break
        od;
        run Ttl()
    }
    finished + crashed == P; /* blocks for good if a process never returns */
    assert(lock == 0 || dead[holder]); /* no live leader left its lock */
#if ONE_FN
    assert(!overlapped) /* at the end: the whole run, in a trail */
#endif
}
