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

static void usage(FILE *to)
{
    fprintf(to,
            "usage: timeline [--scenario N | --all] [--seed S] [--plain]\n"
            "                [--trace FILE.json] [--svg FILE.svg] [--list]\n");
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
    bool plain = false, all = false;
    const char *json = NULL, *svg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--plain") == 0) {
            plain = true;
        } else if (strcmp(a, "--all") == 0) {
            all = true;
        } else if (strcmp(a, "--list") == 0) {
            for (int n = 1; n <= tl_scenarios(); n++)
                printf("%d  %s\n", n, tl_scenario_title(n));
            return 0;
        } else if ((strcmp(a, "--scenario") == 0 &&
                    demo_number(argv[i + 1], 1, tl_scenarios(), &scenario)) ||
                   (strcmp(a, "--seed") == 0 &&
                    demo_number(argv[i + 1], 0, 1000000000L, &seed))) {
            i++; /* the number taken */
        } else if (strcmp(a, "--trace") == 0 && i + 1 < argc) {
            json = argv[++i];
        } else if (strcmp(a, "--svg") == 0 && i + 1 < argc) {
            svg = argv[++i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    bool exports = json != NULL || svg != NULL;
    if (all && exports) { /* one file each: which scenario would it be? */
        fprintf(stderr, "timeline: --trace and --svg take one scenario\n");
        return 2;
    }
    if (!plain && !all && !exports) {
        if (isatty(STDOUT_FILENO))
            return tl_ui((int)scenario, (unsigned)seed);
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
            tl_print_plain(&run, stdout);
        }
    }
    return 0;
}
