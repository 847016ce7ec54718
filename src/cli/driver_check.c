/* driver_check.c - `vgpu driver-check`: the driver entry points that allocate, map or free GPU
 * memory, or submit work, and that the limiter does not intercept.
 *
 * Why this exists: a new CUDA release can add an allocation or launch entry point, and an
 * application that calls it bypasses every limit without anything saying so. This reads the
 * exported functions of the installed libcuda.so.1 and libnvidia-ml.so.1 from their ELF dynamic
 * symbol tables (nothing of the driver runs), classifies them by name, and compares them with
 * the limiter's own hook list: hook_table.h is compiled in here, so the check can never drift
 * from what the limiter hooks. Names reviewed as needing no hook are listed there too
 * (VGPU_DRIVER_REVIEWED), with the reason.
 *
 * Exit status: 0 every allocation and launch entry point is hooked or reviewed (gaps in the
 * memory view, class "view": NVML's memory-use and process queries, are listed but do not
 * fail); 1 at least one is not; 2 a library cannot be found or read; 64 a bad command line.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../limiter/hook_table.h"
#include "cli.h"

enum { DC_OK = 0, DC_UNCOVERED = 1, DC_UNREADABLE = 2 };

enum sym_class { CLASS_NONE = 0, CLASS_ALLOC, CLASS_LAUNCH, CLASS_VIEW };
static const char *const class_names[] = {"-", "alloc", "launch", "view"};

#define HOOK_NAME(sym, impl, params, args, since, flags) #sym,
static const char *const hooked[] = {VGPU_CUDA_HOOKS(HOOK_NAME) VGPU_NVML_HOOKS(HOOK_NAME)};
#undef HOOK_NAME

struct reviewed {
    const char *pattern, *reason;
};
#define REVIEWED(pattern, reason) {pattern, reason},
static const struct reviewed reviewed[] = {VGPU_DRIVER_REVIEWED(REVIEWED)};
#undef REVIEWED

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n > k && memcmp(s + n - k, suffix, k) == 0;
}

/* name without its ABI suffixes: cuStreamBeginCapture_v2_ptsz -> cuStreamBeginCapture */
static void base_name(const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s", name);
    size_t n = strlen(out);
    for (int again = 1; again;) {
        again = 0;
        if (ends_with(out, n, "_ptsz") || ends_with(out, n, "_ptds")) {
            n -= 5;
            out[n] = 0;
            again = 1;
        }
        char *v = strrchr(out, '_');
        if (v && v[1] == 'v' && v[2] >= '0' && v[2] <= '9' &&
            strspn(v + 2, "0123456789") == strlen(v + 2)) {
            *v = 0;
            n = (size_t)(v - out);
            again = 1;
        }
    }
}

static enum sym_class classify(const char *base)
{
    if (starts(base, "cuLaunch") || starts(base, "cuGraphInstantiate") ||
        !strcmp(base, "cuGraphLaunch") || !strcmp(base, "cuGraphUpload") ||
        starts(base, "cuStreamBegin") || starts(base, "cuStreamEnd"))
        return CLASS_LAUNCH;
    if (starts(base, "cuMem") || starts(base, "cuArray") || starts(base, "cuMipmapped") ||
        starts(base, "cuExternal") || starts(base, "cuIpc") ||
        !strcmp(base, "cuImportExternalMemory") || !strcmp(base, "cuDestroyExternalMemory") ||
        strstr(base, "GraphMem") || (starts(base, "cuGraph") && strstr(base + 7, "Mem")))
        return CLASS_ALLOC;
    /* memory-use views only: clocks, bus width, error counters, affinity are not what a
     * capped pod must see virtualised */
    if (starts(base, "nvmlDevice") && (strstr(base, "MemoryInfo") || strstr(base, "MemoryUsage") ||
                                       strstr(base, "RunningProcesses")))
        return CLASS_VIEW;
    return CLASS_NONE;
}

static const char *dropped_hook; /* test-only: pretend the table lacks this name */

static int is_hooked(const char *name)
{
    if (dropped_hook && !strcmp(name, dropped_hook)) return 0;
    for (size_t i = 0; i < NELEM(hooked); i++)
        if (!strcmp(hooked[i], name)) return 1;
    return 0;
}

static const struct reviewed *find_reviewed(const char *base)
{
    for (size_t i = 0; i < NELEM(reviewed); i++) {
        const char *p = reviewed[i].pattern;
        size_t n = strlen(p);
        if (n && p[n - 1] == '*' ? strncmp(base, p, n - 1) == 0 : strcmp(base, p) == 0)
            return &reviewed[i];
    }
    return NULL;
}

/* ---- the exported functions of an ELF shared object ----------------------------------------- */

struct image {
    const unsigned char *data;
    size_t size;
};

static int in_bounds(const struct image *im, uint64_t off, uint64_t len)
{
    return off <= im->size && len <= im->size - off;
}

/* Calls fn for each defined, exported function in the .dynsym of `path`. 0, or -1 with err. */
static int each_export(const char *path, void (*fn)(const char *name, void *ctx), void *ctx,
                       char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %m", path);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
        snprintf(err, errlen, "%s: not an ELF file (too small)", path);
        close(fd);
        return -1;
    }
    struct image im = {mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0),
                       (size_t)st.st_size};
    close(fd);
    if (im.data == MAP_FAILED) {
        snprintf(err, errlen, "cannot map %s: %m", path);
        return -1;
    }
    int rc = -1;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)im.data;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) {
        snprintf(err, errlen, "%s: not an ELF file", path);
        goto out;
    }
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB) {
        snprintf(err, errlen, "%s: not a 64-bit little-endian ELF file", path);
        goto out;
    }
    if (eh->e_shentsize != sizeof(Elf64_Shdr) ||
        !in_bounds(&im, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr))) {
        snprintf(err, errlen, "%s: no readable section headers", path);
        goto out;
    }
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(im.data + eh->e_shoff);
    const Elf64_Shdr *dynsym = NULL;
    for (unsigned i = 0; i < eh->e_shnum; i++)
        if (sh[i].sh_type == SHT_DYNSYM) dynsym = &sh[i];
    if (!dynsym || dynsym->sh_link >= eh->e_shnum || dynsym->sh_entsize != sizeof(Elf64_Sym) ||
        !in_bounds(&im, dynsym->sh_offset, dynsym->sh_size)) {
        snprintf(err, errlen, "%s: no dynamic symbol table", path);
        goto out;
    }
    const Elf64_Shdr *strtab = &sh[dynsym->sh_link];
    if (!in_bounds(&im, strtab->sh_offset, strtab->sh_size) || strtab->sh_size == 0 ||
        im.data[strtab->sh_offset + strtab->sh_size - 1] != 0) {
        snprintf(err, errlen, "%s: bad dynamic string table", path);
        goto out;
    }
    const Elf64_Sym *syms = (const Elf64_Sym *)(im.data + dynsym->sh_offset);
    const char *names = (const char *)im.data + strtab->sh_offset;
    size_t nsyms = dynsym->sh_size / sizeof(Elf64_Sym);
    for (size_t i = 1; i < nsyms; i++) {
        const Elf64_Sym *s = &syms[i];
        int type = ELF64_ST_TYPE(s->st_info), bind = ELF64_ST_BIND(s->st_info);
        if (s->st_shndx == SHN_UNDEF || (type != STT_FUNC && type != STT_GNU_IFUNC) ||
            (bind != STB_GLOBAL && bind != STB_WEAK) ||
            ELF64_ST_VISIBILITY(s->st_other) != STV_DEFAULT || s->st_name >= strtab->sh_size)
            continue;
        fn(names + s->st_name, ctx);
    }
    rc = 0;
out:
    munmap((void *)im.data, im.size);
    return rc;
}

/* The file the loader would use for `soname` (it is loaded, not called: its path is all we
 * take). NULL with err if it is not installed. */
static char *installed_path(const char *soname, char *err, size_t errlen)
{
    void *h = dlopen(soname, RTLD_LAZY | RTLD_LOCAL);
    if (!h) {
        snprintf(err, errlen, "%s is not installed (%s); name a file with --%s PATH", soname,
                 dlerror(), strstr(soname, "cuda") ? "cuda" : "nvml");
        return NULL;
    }
    struct link_map *lm = NULL;
    char *path = NULL;
    if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name && *lm->l_name)
        path = strdup(lm->l_name);
    if (!path) snprintf(err, errlen, "cannot tell where %s was loaded from", soname);
    dlclose(h);
    return path;
}

/* ---- the check --------------------------------------------------------------------------------
 */

struct tally {
    const char *lib;
    int verbose;
    unsigned exports, hooked, reviewed, fatal, view;
};

static void check_one(const char *name, void *ctx)
{
    struct tally *t = ctx;
    char base[128];
    t->exports++;
    base_name(name, base, sizeof(base));
    enum sym_class c = classify(base);
    if (c == CLASS_NONE) return;
    if (is_hooked(name)) {
        t->hooked++;
        return;
    }
    const struct reviewed *r = find_reviewed(base);
    if (r) {
        t->reviewed++;
        if (t->verbose) printf("reviewed   %-6s %s: %s\n", class_names[c], name, r->reason);
        return;
    }
    printf("uncovered  %-6s %s\n", class_names[c], name);
    if (c == CLASS_VIEW)
        t->view++;
    else
        t->fatal++;
}

static int check_library(const char *label, const char *given, const char *soname, int verbose,
                         unsigned *fatal)
{
    char err[512];
    char *path = given ? strdup(given) : installed_path(soname, err, sizeof(err));
    if (!path) {
        fprintf(stderr, "vgpu driver-check: %s\n", given ? "out of memory" : err);
        return DC_UNREADABLE;
    }
    struct tally t = {.lib = label, .verbose = verbose};
    if (each_export(path, check_one, &t, err, sizeof(err)) != 0) {
        fprintf(stderr, "vgpu driver-check: %s\n", err);
        free(path);
        return DC_UNREADABLE;
    }
    printf("%s: %s: %u exported functions, %u hooked, %u reviewed, %u uncovered "
           "allocation/launch, %u uncovered view\n",
           label, path, t.exports, t.hooked, t.reviewed, t.fatal, t.view);
    *fatal += t.fatal;
    free(path);
    return DC_OK;
}

int cli_driver_check(int argc, char **argv)
{
    const char *cuda = NULL, *nvml = NULL;
    int verbose = 0;
    dropped_hook = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = !strcmp(a, "--cuda")        ? &cuda
                           : !strcmp(a, "--nvml")      ? &nvml
                           : !strcmp(a, "--drop-hook") ? &dropped_hook
                                                       : NULL;
        if (dst) {
            if (i + 1 >= argc || !*argv[i + 1]) {
                fprintf(stderr, "vgpu: driver-check: %s needs a value (see vgpu --help)\n", a);
                return EXIT_USAGE;
            }
            *dst = argv[++i];
        } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            verbose = 1;
        } else {
            fprintf(stderr, "vgpu: driver-check: unknown argument '%s' (see vgpu --help)\n", a);
            return EXIT_USAGE;
        }
    }
    if (dropped_hook) {
        int known = 0;
        for (size_t i = 0; i < NELEM(hooked); i++)
            known |= !strcmp(hooked[i], dropped_hook);
        if (!known) {
            fprintf(stderr, "vgpu: driver-check: --drop-hook: '%s' is not in the hook table\n",
                    dropped_hook);
            return EXIT_USAGE;
        }
    }
    unsigned fatal = 0;
    int rc = check_library("libcuda", cuda, "libcuda.so.1", verbose, &fatal);
    if (rc == DC_OK) rc = check_library("libnvidia-ml", nvml, "libnvidia-ml.so.1", verbose, &fatal);
    if (rc != DC_OK) return rc;
    if (fatal) {
        printf("%u allocation or launch entry point%s not covered by the limiter's hooks\n", fatal,
               fatal == 1 ? " is" : "s are");
        return DC_UNCOVERED;
    }
    return DC_OK;
}
