/* cv_config: table-driven settings from defaults, environment and flags. */
#include "cv_config.h"
#include "cv_err.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void env_name(const char *name, char *out, size_t cap)
{
    size_t n = snprintf(out, cap, "CANVASS_");
    for (const char *p = name; *p && n + 1 < cap; p++)
        out[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[n] = '\0';
}

static int set_value(const char *prog, const cv_config_opt_t *o, const char *val,
                     const char *from)
{
    char *end;
    switch (o->type) {
    case CV_CFG_STR:
        *(const char **)o->ptr = val ? val : "";
        return 0;
    case CV_CFG_BOOL:
        if (!val || !strcmp(val, "1") || !strcmp(val, "true") || !strcmp(val, "yes") ||
            !strcmp(val, "on")) {
            *(int *)o->ptr = 1;
            return 0;
        }
        if (!*val || !strcmp(val, "0") || !strcmp(val, "false") || !strcmp(val, "no") ||
            !strcmp(val, "off")) {
            *(int *)o->ptr = 0;
            return 0;
        }
        break;
    case CV_CFG_INT: {
        if (!val)
            val = "0";
        errno = 0;
        long v = strtol(val, &end, 10);
        if (errno || end == val || *end)
            break;
        if ((o->min || o->max) && (v < o->min || v > o->max)) {
            fprintf(stderr, "%s: %s %s=%s is out of range %ld..%ld\n", prog, from, o->name, val,
                    o->min, o->max);
            return CV_EINVAL;
        }
        *(long *)o->ptr = v;
        return 0;
    }
    case CV_CFG_DOUBLE: {
        if (!val)
            val = "0";
        errno = 0;
        double v = strtod(val, &end);
        if (errno || end == val || *end)
            break;
        *(double *)o->ptr = v;
        return 0;
    }
    }
    fprintf(stderr, "%s: %s %s has a bad value '%s'\n", prog, from, o->name, val ? val : "");
    return CV_EINVAL;
}

static int is_bool_word(const char *w)
{
    static const char *words[] = {"on", "off", "true", "false", "yes", "no", "1", "0"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (!strcmp(w, words[i]))
            return 1;
    return 0;
}

void cv_config_help(const char *prog, const char *usage, const cv_config_opt_t *opts)
{
    static const char *types[] = {"TEXT", "N", "", "X"};
    char env[96];
    printf("usage: %s\n\noptions (flag, environment variable, default):\n", usage);
    for (const cv_config_opt_t *o = opts; o->name; o++) {
        char flag[96];
        snprintf(flag, sizeof flag, "--%s %s", o->name, types[o->type]);
        env_name(o->name, env, sizeof env);
        printf("  %-26s %s\n  %-26s   env %s, default %s\n", flag, o->help, "", env,
               o->def && *o->def ? o->def : (o->type == CV_CFG_BOOL ? "off" : "(none)"));
    }
    printf("  %-26s %s\n", "--help", "print this help and exit");
    (void)prog;
}

int cv_config_parse(const char *prog, const char *usage, cv_config_opt_t *opts, int argc,
                    char **argv, int first, int *npos)
{
    char env[96];
    for (cv_config_opt_t *o = opts; o->name; o++) {
        if (set_value(prog, o, o->def ? o->def : "", "default") < 0)
            return CV_EINVAL;
        env_name(o->name, env, sizeof env);
        const char *v = getenv(env);
        if (v && set_value(prog, o, v, "environment") < 0)
            return CV_EINVAL;
    }
    int pos = first, only_pos = 0;
    for (int i = first; i < argc; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] != '-' || !a[2]) {
            if (!only_pos && !strcmp(a, "--")) {
                only_pos = 1;
                continue;
            }
            if (!only_pos && a[0] == '-' && a[1] == 'h' && !a[2]) {
                cv_config_help(prog, usage, opts);
                return 1;
            }
            argv[pos++] = a;
            continue;
        }
        if (!strcmp(a, "--help")) {
            cv_config_help(prog, usage, opts);
            return 1;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        cv_config_opt_t *o = opts;
        while (o->name && (strlen(o->name) != nlen || strncmp(o->name, name, nlen)))
            o++;
        if (!o->name) {
            fprintf(stderr, "%s: unknown option --%.*s (see --help)\n", prog, (int)nlen, name);
            return CV_EINVAL;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val && o->type == CV_CFG_BOOL && i + 1 < argc && is_bool_word(argv[i + 1]))
            val = argv[++i]; /* "--setup off" reads as written */
        if (!val && o->type != CV_CFG_BOOL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: option --%s needs a value\n", prog, o->name);
                return CV_EINVAL;
            }
            val = argv[++i];
        }
        if (set_value(prog, o, val, "option") < 0)
            return CV_EINVAL;
    }
    *npos = pos - first;
    return 0;
}
