/* unit_case.h - one registered case per behaviour in a unit test program, and the runner.
 *
 * Why this exists: a unit test that is one main() fails as one test named after its file, which
 * says which file broke but not what. Each behaviour is a UNIT_CASE(name) { ... } here; CTest
 * registers every case as its own test "unit.<group>.<name>" (vgpu_unit_cases in
 * tests/unit/CMakeLists.txt finds the names in the source at configure time), so a failure names
 * the behaviour that broke.
 *
 * The runner: no argument runs every case in this process; "--case NAME" runs one (NAME with or
 * without the "<group>." prefix); "--list" prints the names. A case must not depend on another
 * having run: CTest runs each alone, in its own process. UNIT_GROUP comes from the build
 * (vgpu_unit_cases defines it); a file may define UNIT_SETUP before including this header to
 * name a function run once before any case (a scratch directory, say), returning 0 on success,
 * and UNIT_TEARDOWN for one run once after them (removing it), returning 0 on success.
 */
#ifndef VGPU_UNIT_CASE_H
#define VGPU_UNIT_CASE_H

#include "../test_util.h"

#ifndef UNIT_GROUP
#error "UNIT_GROUP is defined by vgpu_unit_cases() in tests/unit/CMakeLists.txt"
#endif

#define UNIT_MAX_CASES 128

struct unit_case {
    const char *name;
    void (*fn)(void);
};

static struct unit_case unit_cases[UNIT_MAX_CASES];
static int unit_n_cases;

/* Called by each case's constructor, before main; a full table is reported by main, never
 * silently dropped. */
static void unit_register(const char *name, void (*fn)(void))
{
    if (unit_n_cases < UNIT_MAX_CASES) unit_cases[unit_n_cases] = (struct unit_case){name, fn};
    unit_n_cases++;
}

/* The name must stay a plain identifier on the line of the macro: CMake reads it from there. */
#define UNIT_CASE(name)                                                                            \
    static void unit_case_##name(void);                                                            \
    __attribute__((constructor)) static void unit_register_##name(void)                            \
    {                                                                                              \
        unit_register(#name, unit_case_##name);                                                    \
    }                                                                                              \
    static void unit_case_##name(void)

static int unit_run(const struct unit_case *c)
{
    int before = vgpu_test_failures;
    c->fn();
    int failed = vgpu_test_failures - before;
    if (failed)
        fprintf(stderr, "FAIL %s.%s (%d check(s))\n", UNIT_GROUP, c->name, failed);
    else
        printf("ok   %s.%s\n", UNIT_GROUP, c->name);
    return failed;
}

/* NAME or GROUP.NAME */
static const struct unit_case *unit_find(const char *name)
{
    size_t g = strlen(UNIT_GROUP);
    if (strncmp(name, UNIT_GROUP, g) == 0 && name[g] == '.') name += g + 1;
    for (int i = 0; i < unit_n_cases; i++)
        if (strcmp(unit_cases[i].name, name) == 0) return &unit_cases[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (unit_n_cases > UNIT_MAX_CASES) {
        fprintf(stderr, "%d cases registered, UNIT_MAX_CASES is %d\n", unit_n_cases,
                UNIT_MAX_CASES);
        return 1;
    }
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < unit_n_cases; i++)
            printf("%s.%s\n", UNIT_GROUP, unit_cases[i].name);
        return 0;
    }
    const struct unit_case *only = NULL;
    if (argc == 3 && strcmp(argv[1], "--case") == 0) {
        only = unit_find(argv[2]);
        if (!only) {
            fprintf(stderr, "no case %s in group %s (--list names them)\n", argv[2], UNIT_GROUP);
            return 2;
        }
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [--list | --case NAME]\n", argv[0]);
        return 2;
    }
#ifdef UNIT_SETUP
    if (UNIT_SETUP() != 0) {
        fprintf(stderr, "%s: setup failed\n", UNIT_GROUP);
        return 1;
    }
#endif
    if (only) {
        unit_run(only);
    } else {
        if (unit_n_cases == 0) {
            fprintf(stderr, "%s: no cases registered\n", UNIT_GROUP);
            return 1;
        }
        for (int i = 0; i < unit_n_cases; i++)
            unit_run(&unit_cases[i]);
    }
#ifdef UNIT_TEARDOWN
    CHECK(UNIT_TEARDOWN() == 0);
#endif
    TEST_MAIN_END();
}

#endif
