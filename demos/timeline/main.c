/*
 * timeline - watch leaders and followers, one row per thread.
 *
 *   build/demos/timeline                 the player (on a terminal)
 *   build/demos/timeline --plain         the text timeline of scenario 1
 *   build/demos/timeline --scenario 3 --seed 7 --plain
 *   build/demos/timeline --all --plain   every scenario, one after another
 *   build/demos/timeline --scenario 2 --trace t.json --svg t.svg
 *   build/demos/timeline --list
 *
 * Without a terminal on stdout it prints the plain timeline. Exits 1 if a
 * scenario could not be run, 2 on a bad argument.
 */
#define _POSIX_C_SOURCE 200809L

#include "timeline.h"

#include "../number.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { SEED_MAX = 1000000000 };

static void usage(FILE *to)
{
    fprintf(to,
            "usage: timeline [--scenario N | --all] [--seed S] [--plain]\n"
            "                [--quiz [-c]] [--steps] [--trace FILE.json]\n"
            "                [--svg FILE.svg] [--list] [--help]\n"
            "  --scenario N  which scenario, 1-%d (default 1)\n"
            "  --seed S      0-%d: picks leaders, and scenario 2's fns\n"
            "  --plain       the text timeline, not the player\n"
            "  --quiz        the setup and questions, not the outcome\n"
            "  -c            with --quiz: the answers and the picture too\n"
            "  --steps       with --plain: the narration, one event a line\n"
            "  --trace FILE  Chrome trace-event JSON (Perfetto)\n"
            "  --svg FILE    an SVG picture\n",
            tl_scenarios(), SEED_MAX);
}

/* An option's value: the next argument, unless there is none or it is
 * another option. NULL (and an error said) then. */
static const char *value_of(int argc, char **argv, int i, const char *what)
{
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v != NULL && strncmp(v, "--", 2) != 0)
        return v;
    fprintf(stderr, "timeline: %s needs %s%s%s\n", argv[i], what,
            v != NULL ? ", not " : "", v != NULL ? v : "");
    return NULL;
}

/* Reads option i's number in [lo, hi]; false (and an error said) if the
 * value is missing or not such a number. */
static bool number_of(int argc, char **argv, int i, long lo, long hi, long *out)
{
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (demo_number(v, lo, hi, out))
        return true;
    fprintf(stderr, "timeline: %s must be %ld-%ld%s%s\n", argv[i], lo, hi,
            v != NULL ? ", not " : "", v != NULL ? v : "");
    return false;
}

/* The player's narration, one step a line. */
static void print_steps(const struct tl_run *run)
{
    int n = tl_steps(run);
    for (int k = 1; k <= n; k++) {
        char s[160];
        tl_step_say(run, k, s, sizeof s);
        printf("[%d/%d] %s\n", k, n, s);
    }
}

static int export(const char *path, const struct tl_run *run,
                  int (*write)(const struct tl_run *, FILE *))
{
    FILE *f = fopen(path, "w");
    int rc = f != NULL ? write(run, f) : -errno;
    if (f != NULL && fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc != 0)
        fprintf(stderr, "timeline: %s: %s\n", path, strerror(-rc));
    return rc;
}

int main(int argc, char **argv)
{
    long scenario = 1, seed = 1;
    bool plain = false, all = false, steps = false, quiz = false,
         answers = false;
    const char *json = NULL, *svg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--plain") == 0) {
            plain = true;
        } else if (strcmp(a, "--steps") == 0) {
            steps = true;
        } else if (strcmp(a, "--quiz") == 0) {
            quiz = true;
        } else if (strcmp(a, "-c") == 0) {
            answers = true;
        } else if (strcmp(a, "--all") == 0) {
            all = true;
        } else if (strcmp(a, "--list") == 0) {
            for (int n = 1; n <= tl_scenarios(); n++)
                printf("%d  %s\n", n, tl_scenario_title(n));
            return 0;
        } else if (strcmp(a, "--scenario") == 0) {
            if (!number_of(argc, argv, i++, 1, tl_scenarios(), &scenario))
                return 2;
        } else if (strcmp(a, "--seed") == 0) {
            if (!number_of(argc, argv, i++, 0, SEED_MAX, &seed))
                return 2;
        } else if (strcmp(a, "--trace") == 0 || strcmp(a, "--svg") == 0) {
            const char *file = value_of(argc, argv, i++, "a file name");
            if (file == NULL)
                return 2;
            *(a[2] == 't' ? &json : &svg) = file;
        } else {
            fprintf(stderr,
                    "timeline: unknown argument %s (--help lists them)\n", a);
            return 2;
        }
    }
    if (answers && !quiz) {
        fprintf(stderr, "timeline: -c shows a quiz's answers: add --quiz\n");
        return 2;
    }
    bool exports = json != NULL || svg != NULL;
    if (all && exports) { /* one file each: which scenario would it be? */
        fprintf(stderr, "timeline: --trace and --svg take one scenario\n");
        return 2;
    }
    if (!plain && !all && !exports) {
        if (isatty(STDOUT_FILENO))
            return tl_ui((int)scenario, (unsigned)seed, quiz);
        plain = true;
    }

    static struct tl_run run; /* large: not on the stack */
    int first = all ? 1 : (int)scenario, last = all ? tl_scenarios() : first;
    for (int n = first; n <= last; n++) {
        int rc = tl_run(n, (unsigned)seed, &run);
        if (rc != 0) {
            fprintf(stderr, "timeline: scenario %d: %s\n", n, strerror(-rc));
            return 1;
        }
        if (json != NULL && export(json, &run, tl_write_json) != 0)
            return 1;
        if (svg != NULL && export(svg, &run, tl_write_svg) != 0)
            return 1;
        if (plain || !exports) {
            if (n > first)
                putchar('\n');
            if (quiz)
                tl_print_quiz(&run, answers, stdout);
            else
                tl_print_plain(&run, stdout);
        }
        if (steps)
            print_steps(&run);
    }
    return 0;
}
