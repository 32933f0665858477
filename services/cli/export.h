/* export: `canvass export --out DIR`, the cluster's features, votes and
 * ranked lists as files for spreadsheets and analysis.
 *
 *   DIR/features.csv          feature_id,title,status,release,merged_into,
 *                             author,created_at,tags,up,down,voters
 *                             (feature.h: cv_feature_print_csv)
 *   DIR/votes.csv             feature_id,user_id,value,tier: every non-zero
 *                             vote of every feature that is not merged (a
 *                             merged feature's votes were moved to its
 *                             target, which lists them)
 *   DIR/cycles.json           cv_json_cycles of every cycle
 *   DIR/ranked/cycle-N.json   cv_json_ranked of each closed cycle's stored
 *                             list: the bytes `canvass ranked --cycle N
 *                             --format json` prints
 *
 * DIR and DIR/ranked are created as needed.  Each file is written beside
 * its final name and renamed into place only when complete, so a failed or
 * interrupted export never leaves a truncated file under a real name.  The
 * export reads the live cluster and is not one snapshot: votes cast while it
 * runs may or may not appear, and features.csv is read first.
 */
#ifndef CV_EXPORT_H
#define CV_EXPORT_H

#include <stddef.h>
#include <stdio.h>

/* Creates the directory path and any missing parents (mode 0777 less the
 * umask); an existing directory is fine.  Returns 0, or CV_EIO after writing
 * "cannot create PATH: reason" into err (NUL-terminated, truncated to
 * errlen). */
int cv_export_mkdirs(const char *path, char *err, size_t errlen);

/* Writes dir/name through write(out, arg): into a temporary file in dir,
 * flushed to disk and renamed to dir/name when write returned 0 and every
 * byte was written.  Returns 0; or a negative CV_E* code after writing
 * "cannot write DIR/NAME: reason" into err and removing the temporary file
 * (the write callback's own error, or CV_EIO when the file could not be
 * created, written, synced or renamed). */
typedef int (*cv_export_writer_t)(FILE *out, void *arg);
int cv_export_file(const char *dir, const char *name, cv_export_writer_t write, void *arg,
                   char *err, size_t errlen);

#endif
