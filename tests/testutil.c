/* testutil.c - see testutil.h. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <signal.h>
#include <unistd.h>
#include <valgrind/valgrind.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Enough to let through every waiter a test can have. */
enum { ALL = 1 << 20 };

static void hang(const char *what)
{
    fprintf(stderr, "\nHANG: %s (no progress in %d s)\n", what, TU_TIMEOUT_S);
    abort();
}

static struct timespec deadline(int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    return t;
}

static void report_finished(void *arg)
{
    struct tu_thread *t = arg;
    tu_gate_raise(&t->finished, 1);
}

/* A test thread reports its end however it ends: returning, cancelled, or
 * by pthread_exit. */
static void *run_and_report(void *arg)
{
    struct tu_thread *t = arg;
    void *ret;
    pthread_cleanup_push(report_finished, t);
    ret = t->body(t->arg);
    pthread_cleanup_pop(1);
    return ret;
}

void tu_start(struct tu_thread *t, void *(*body)(void *), void *arg)
{
    *t = (struct tu_thread){.body = body, .arg = arg};
    tu_gate_init(&t->finished);
    if (pthread_create(&t->id, NULL, run_and_report, t) != 0) {
        perror("pthread_create");
        abort();
    }
}

bool tu_join_within(struct tu_thread *t, int ms)
{
    if (!tu_gate_wait_ms(&t->finished, 1, ms))
        return false;
    pthread_join(t->id, NULL);
    tu_gate_destroy(&t->finished);
    return true;
}

void tu_join(struct tu_thread *t, const char *what)
{
    if (!tu_join_within(t, TU_TIMEOUT_S * 1000))
        hang(what);
}

void tu_gate_init(struct tu_gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->count = 0;
}

void tu_gate_destroy(struct tu_gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

void tu_gate_raise(struct tu_gate *g, int by)
{
    pthread_mutex_lock(&g->mu);
    g->count += by;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* tu_gate_raise by one, returning the new count: a ticket, or a number. */
static int gate_take(struct tu_gate *g)
{
    pthread_mutex_lock(&g->mu);
    int count = ++g->count;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    return count;
}

bool tu_gate_wait(struct tu_gate *g, int n)
{
    return tu_gate_wait_ms(g, n, TU_TIMEOUT_S * 1000);
}

static void unlock_mutex(void *mu)
{
    pthread_mutex_unlock(mu);
}

static bool wait_locked(struct tu_gate *g, int n, const struct timespec *until)
{
    int rc = 0;
    while (g->count < n && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, until);
    return g->count >= n;
}

/* Cancellation-safe: a thread cancelled in the wait lets go of the gate. */
bool tu_gate_wait_ms(struct tu_gate *g, int n, int ms)
{
    struct timespec until = deadline(ms);
    bool reached;
    pthread_mutex_lock(&g->mu);
    pthread_cleanup_push(unlock_mutex, &g->mu);
    reached = wait_locked(g, n, &until);
    pthread_cleanup_pop(1);
    return reached;
}

void tu_gate_expect(struct tu_gate *g, int n, const char *what)
{
    if (!tu_gate_wait(g, n))
        hang(what);
}

/* The view into the kit's condition wait (see testutil.h). Its state is
 * guarded by parked.mu, which is taken inside the kit's lock, never around it. */
static struct tu_gate parked = {PTHREAD_MUTEX_INITIALIZER,
                                PTHREAD_COND_INITIALIZER, 0};
static unsigned parked_round = 1;
static _Thread_local unsigned parked_in_round;
static int spurious_left;
static bool holding;
static struct tu_gate held = {PTHREAD_MUTEX_INITIALIZER,
                              PTHREAD_COND_INITIALIZER, 0};
static struct tu_gate unheld = {PTHREAD_MUTEX_INITIALIZER,
                                PTHREAD_COND_INITIALIZER, 0};

int __real_pthread_cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu);
int __wrap_pthread_cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu);
int __real_pthread_cond_broadcast(pthread_cond_t *cv);
int __wrap_pthread_cond_broadcast(pthread_cond_t *cv);

/* Set before the threads that broadcast start, read by them after. */
static void (*on_broadcast)(void);

void tu_on_broadcast(void (*fn)(void))
{
    on_broadcast = fn;
}

int __wrap_pthread_cond_broadcast(pthread_cond_t *cv)
{
    if (on_broadcast != NULL)
        on_broadcast();
    return __real_pthread_cond_broadcast(cv);
}

/* A thread is about to wait in the kit: count it as parked (once a
 * round). Returns whether this wait is to return at once instead. */
static bool parking(void)
{
    pthread_mutex_lock(&parked.mu);
    if (parked_in_round != parked_round) {
        parked_in_round = parked_round;
        parked.count++;
        pthread_cond_broadcast(&parked.cv);
    }
    bool spurious = spurious_left > 0;
    spurious_left -= spurious;
    pthread_mutex_unlock(&parked.mu);
    return spurious;
}

/* Whether a thread that woke in the kit is to be held there. */
static bool to_hold(void)
{
    pthread_mutex_lock(&parked.mu);
    bool hold = holding;
    pthread_mutex_unlock(&parked.mu);
    return hold;
}

/* Held followers go on in the order they came: each waits for its turn. */
static void hold_here(void)
{
    int turn = gate_take(&held);
    tu_gate_expect(&unheld, turn, "the test never released a held follower");
}

static void woken(void)
{
    if (to_hold())
        hold_here();
}

/* The full engine's followers sleep on a futex (src/gate.h), through
 * syscall(2): a wait there counts as parking, and an interrupted wait
 * (EINTR) stands in for the port's spurious wake-up. The kit makes no
 * other system call through syscall(). */
long __real_syscall(long number, ...);
long __wrap_syscall(long number, ...);

long __wrap_syscall(long number, ...)
{
    va_list ap;
    va_start(ap, number);
    long a[6]; /* one statement each: an initializer list has no order */
    a[0] = va_arg(ap, long);
    a[1] = va_arg(ap, long);
    a[2] = va_arg(ap, long);
    a[3] = va_arg(ap, long);
    a[4] = va_arg(ap, long);
    a[5] = va_arg(ap, long);
    va_end(ap);
    if (number != SYS_futex) {
        fprintf(stderr, "testutil: unexpected syscall %ld\n", number);
        abort();
    }
    bool waits = (a[1] & FUTEX_CMD_MASK) == FUTEX_WAIT_BITSET;
    if (waits && parking()) {
        errno = EINTR;
        return -1;
    }
    long rc = __real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
    int err = errno;
    /* EAGAIN: the word changed before the kernel looked, which is a wake-up
     * too; only a deadline (ETIMEDOUT) is not. */
    if (waits && (rc == 0 || err == EAGAIN))
        woken();
    errno = err;
    return rc;
}

int __wrap_pthread_cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu)
{
    bool spurious = parking();
    if (spurious) { /* wake up without a signal, as POSIX allows */
        pthread_mutex_unlock(mu);
        pthread_mutex_lock(mu);
        return 0;
    }
    int rc = __real_pthread_cond_wait(cv, mu);
    if (to_hold()) { /* as if the lock were slow to come back after the wake */
        pthread_mutex_unlock(mu);
        hold_here();
        pthread_mutex_lock(mu);
    }
    return rc;
}

void tu_parked_reset(void)
{
    pthread_mutex_lock(&parked.mu);
    parked.count = 0;
    parked_round++;
    pthread_mutex_unlock(&parked.mu);
}

void tu_parked_expect(int n, const char *what)
{
    tu_gate_expect(&parked, n, what);
}

void tu_spurious(int n)
{
    pthread_mutex_lock(&parked.mu);
    spurious_left = n;
    pthread_mutex_unlock(&parked.mu);
}

static void gate_reset(struct tu_gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->count = 0;
    pthread_mutex_unlock(&g->mu);
}

void tu_hold_wakers(void)
{
    gate_reset(&held);
    gate_reset(&unheld);
    pthread_mutex_lock(&parked.mu);
    holding = true;
    pthread_mutex_unlock(&parked.mu);
}

void tu_wakers_expect(int n, const char *what)
{
    tu_gate_expect(&held, n, what);
}

void tu_release_first_waker(void)
{
    tu_gate_raise(&unheld, 1);
}

void tu_release_wakers(void)
{
    pthread_mutex_lock(&parked.mu);
    holding = false;
    pthread_mutex_unlock(&parked.mu);
    tu_gate_raise(&unheld, ALL);
}

void tu_held_init(struct tu_held *h, sc_group *g, const char *key)
{
    *h = (struct tu_held){.g = g, .key = key};
    tu_gate_init(&h->runs);
    tu_gate_init(&h->release);
    tu_gate_init(&h->returned);
}

void tu_held_destroy(struct tu_held *h)
{
    tu_gate_destroy(&h->runs);
    tu_gate_destroy(&h->release);
    tu_gate_destroy(&h->returned);
}

int tu_held_fn(void *arg, void **val)
{
    struct tu_held *h = arg;
    int run = gate_take(&h->runs);
    tu_gate_expect(&h->release, run, "the test never released fn");
    if (run == h->exit_run)
        pthread_exit(NULL);
    *val = h->make != NULL ? h->make(h, run) : (void *)(intptr_t)run;
    return h->err_runs == 0 || run <= h->err_runs ? h->err : 0;
}

void tu_held_release(struct tu_held *h, int n)
{
    tu_gate_raise(&h->release, n);
}

void tu_held_open(struct tu_held *h)
{
    tu_gate_raise(&h->release, ALL);
}

void tu_call(struct tu_caller *c)
{
    struct tu_held *h = c->h;
    sc_fn fn = c->fn != NULL ? c->fn : tu_held_fn;
    if (h->via == TU_VIA_DO_EX) {
        c->r = (sc_result){0};
        c->rc = sc_do_ex(h->g, h->key, fn, h, &c->r.val, &c->r.fresh);
    } else {
        c->rc = sc_do_until(h->g, h->key, fn, h, c->deadline, &c->r);
    }
    tu_gate_raise(&h->returned, 1);
}

static void *call_on_own_thread(void *arg)
{
    tu_call(arg);
    return NULL;
}

void tu_caller_start(struct tu_caller *c)
{
    tu_start(&c->thread, call_on_own_thread, c);
}

void tu_callers_join(struct tu_caller *c, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        tu_join(&c[i].thread, what);
}

void tu_caller_lead(struct tu_caller *lead)
{
    struct tu_held *h = lead->h;
    pthread_mutex_lock(&h->runs.mu);
    int next = h->runs.count + 1;
    pthread_mutex_unlock(&h->runs.mu);
    tu_caller_start(lead);
    tu_gate_expect(&h->runs, next, "no leader");
}

void tu_callers_park(struct tu_caller *c, int n)
{
    tu_parked_reset();
    for (int i = 0; i < n; i++)
        tu_caller_start(&c[i]);
    tu_parked_expect(n, "followers never parked");
}

void tu_held_start(struct tu_held *h, struct tu_caller *c, int n)
{
    for (int i = 0; i <= n; i++)
        c[i] = (struct tu_caller){.h = h};
    tu_caller_lead(&c[0]);
    tu_callers_park(&c[1], n);
}

struct timespec tu_in_ms(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    } else if (t.tv_nsec < 0) {
        t.tv_sec--;
        t.tv_nsec += 1000000000L;
    }
    return t;
}

void *tu_copy_string(void *val, void *ctx)
{
    (void)ctx;
    size_t size = strlen(val) + 1;
    char *copy = malloc(size);
    if (copy != NULL)
        memcpy(copy, val, size);
    return copy;
}

void tu_free_string(void *val, void *ctx)
{
    (void)ctx;
    free(val);
}

void *tu_run_string(struct tu_held *h, intptr_t run)
{
    (void)h;
    char *s = malloc(16);
    if (s != NULL)
        snprintf(s, 16, "run %d", (int)run);
    return s;
}

void tu_free_group(sc_group *g)
{
    CU_ASSERT_EQUAL_FATAL(sc_free(g), 0);
}

/* The per-test watchdog: a test that deadlocks its own thread, where no
 * bounded wait can see it, is stopped by SIGALRM. */
static void test_ran_too_long(int sig)
{
    static const char msg[] = "\nHANG: the test ran past its time limit\n";
    (void)sig;
    (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
    abort();
}

static void arm_watchdog(void)
{
    signal(SIGALRM, test_ran_too_long);
    alarm(TU_TEST_LIMIT_S);
}

static void disarm_watchdog(void)
{
    alarm(0);
}

int tu_run_suite(const char *suite, const struct tu_test *tests)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite_with_setup_and_teardown(
        suite, NULL, NULL, arm_watchdog, disarm_watchdog);
    for (const struct tu_test *t = tests; s != NULL && t->name != NULL; t++)
        if (CU_add_test(s, t->name, t->fn) == NULL)
            s = NULL;
    if (s == NULL) {
        fprintf(stderr, "%s: %s\n", suite, CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failed = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TU_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TU_SANITIZED 1
#endif
#endif
#ifndef TU_SANITIZED
#define TU_SANITIZED 0
#endif

bool tu_under_a_tool(void)
{
    return TU_SANITIZED || RUNNING_ON_VALGRIND;
}
