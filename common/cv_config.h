/* cv_config: one table of settings per program.
 *
 * A program describes every setting once: name, type, default, bounds and
 * help text.  cv_config_parse() then fills the variables from, in rising
 * order of precedence, the defaults, the environment (CANVASS_<NAME>, the
 * name upper-cased with '-' as '_') and the command line (--name value or
 * --name=value; a BOOL flag alone means true, and may be followed by one of
 * on/off/true/false/yes/no/1/0).  --help prints the table.
 *
 *   static long port; static char *data_dir;
 *   static cv_config_opt_t opts[] = {
 *       {"port", CV_CFG_INT, "7700", 1, 65535, &port, "TCP port for clients"},
 *       {"data", CV_CFG_STR, "./var", 0, 0, &data_dir, "data directory"},
 *       {0}};
 */
#ifndef CV_CONFIG_H
#define CV_CONFIG_H

typedef enum { CV_CFG_STR, CV_CFG_INT, CV_CFG_BOOL, CV_CFG_DOUBLE } cv_cfg_type_t;

typedef struct {
    const char *name;   /* flag name without "--"; NULL ends the table */
    cv_cfg_type_t type;
    const char *def;    /* default, as text; NULL = empty string / 0 */
    long min, max;      /* bounds for CV_CFG_INT (ignored when min == max == 0) */
    void *ptr;          /* char ** (borrowed from argv/env/def), long *, int *, double * */
    const char *help;
} cv_config_opt_t;

/* Parses argv[first..argc) and the environment into the table's variables.
 * Arguments that are not options (and everything after "--") are collected,
 * in order, into argv[first..first+*npos) so the caller can read them as
 * positionals.  `usage` is the one-line synopsis printed by --help.
 *
 * Returns 0 when the program should go on, 1 when --help was printed (exit
 * 0), or CV_EINVAL after printing a one-line reason to stderr (exit 2). */
int cv_config_parse(const char *prog, const char *usage, cv_config_opt_t *opts, int argc,
                    char **argv, int first, int *npos);

/* Prints the table (flags, env names, defaults, help) to stdout. */
void cv_config_help(const char *prog, const char *usage, const cv_config_opt_t *opts);

#endif
