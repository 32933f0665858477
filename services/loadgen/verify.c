/* verify: one AdminRequest for the live ranked list over a ZeroMQ REQ
 * socket, then a feature-by-feature comparison with the workload's record
 * (see verify.h).  The list's entries are sorted by feature id once so each
 * lookup is a binary search.
 */
#include "verify.h"
#include "cv_bus.h"
#include "cv_codec.h"
#include "cv_err.h"

#include <stdlib.h>
#include <string.h>

/* Asks publish for the live list.  Returns 0 with *reply_out set (an OK
 * reply holding the list; the caller frees it with
 * canvass__v1__admin_reply__free_unpacked), or a CV_E* code after printing
 * why. */
static int fetch_live(const cv_verify_opts_t *o, Canvass__V1__AdminReply **reply_out, FILE *out)
{
    char endpoint[300];
    if (strstr(o->publish, "://"))
        snprintf(endpoint, sizeof endpoint, "%s", o->publish);
    else
        snprintf(endpoint, sizeof endpoint, "tcp://%s", o->publish);

    Canvass__V1__RankedQuery q = CANVASS__V1__RANKED_QUERY__INIT;
    Canvass__V1__AdminRequest req = CANVASS__V1__ADMIN_REQUEST__INIT;
    q.cycle = "live";
    q.limit = 0; /* every entry */
    q.order = "score";
    req.app_key = (char *)(o->app_key ? o->app_key : "");
    req.op_case = CANVASS__V1__ADMIN_REQUEST__OP_RANKED;
    req.ranked = &q;

    int rc = CV_ENOMEM;
    size_t len = 0;
    cv_parts_t parts = {0};
    uint8_t *buf = cv_codec_pack(&req.base, &len);
    char why[300] = "";
    cv_bus_t *bus = buf ? cv_bus_new() : NULL;
    cv_sock_t *sock = NULL;
    if (bus && (rc = cv_bus_curve_setup(bus, o->curve_key, o->curve_server, NULL, why,
                                        sizeof why)) < 0) {
        fprintf(out, "verify: %s\n", why);
        goto done;
    }
    if (!bus || !(sock = cv_sock_new(bus, CV_SOCK_REQ))) {
        rc = CV_ENOMEM;
        fprintf(out, "verify: cannot set up a ZeroMQ socket\n");
        goto done;
    }
    const void *data[1] = {buf};
    if ((rc = cv_sock_connect(sock, endpoint)) < 0 || (rc = cv_sock_send(sock, 1, data, &len, 0)) < 0) {
        fprintf(out, "verify: cannot send to publish at %s: %s\n", endpoint, cv_strerror(rc));
        goto done;
    }
    rc = cv_sock_recv(sock, &parts, o->timeout_ms);
    if (rc == CV_EAGAIN) {
        rc = CV_ETIMEOUT;
        fprintf(out, "verify: publish at %s did not answer within %ld ms\n", endpoint,
                o->timeout_ms);
        goto done;
    }
    if (rc < 0 || parts.n != 1) {
        rc = rc < 0 ? rc : CV_EDECODE;
        fprintf(out, "verify: publish at %s sent a malformed reply\n", endpoint);
        goto done;
    }
    Canvass__V1__AdminReply *rep = canvass__v1__admin_reply__unpack(NULL, parts.size[0],
                                                                     parts.data[0]);
    if (!rep || rep->status != CV_ST_OK ||
        rep->result_case != CANVASS__V1__ADMIN_REPLY__RESULT_RANKED) {
        fprintf(out, "verify: publish at %s did not give the live list: %s: %s\n", endpoint,
                rep ? cv_status_name(rep->status) : "undecodable reply",
                rep && *rep->error ? rep->error : "");
        if (rep)
            canvass__v1__admin_reply__free_unpacked(rep, NULL);
        rc = rep ? CV_EIO : CV_EDECODE;
        goto done;
    }
    *reply_out = rep;
    rc = 0;
done:
    cv_parts_free(&parts);
    cv_sock_destroy(&sock);
    cv_bus_destroy(&bus);
    free(buf);
    return rc;
}

int cv_verify_curve_check(const cv_verify_opts_t *o, char *err, size_t errlen)
{
    if (!o->curve_key || !*o->curve_key)
        return 0;
    cv_bus_t *bus = cv_bus_new();
    if (!bus) {
        snprintf(err, errlen, "cannot create a ZeroMQ context");
        return CV_ENOMEM;
    }
    int rc = cv_bus_curve_setup(bus, o->curve_key, o->curve_server, NULL, err, errlen);
    cv_bus_destroy(&bus);
    return rc;
}

static int by_feature_id(const void *a, const void *b)
{
    const Canvass__V1__RankedEntry *x = *(Canvass__V1__RankedEntry *const *)a;
    const Canvass__V1__RankedEntry *y = *(Canvass__V1__RankedEntry *const *)b;
    return strcmp(x->feature_id, y->feature_id);
}

static int id_vs_entry(const void *key, const void *elem)
{
    const Canvass__V1__RankedEntry *e = *(Canvass__V1__RankedEntry *const *)elem;
    return strcmp(key, e->feature_id);
}

int cv_verify(const cv_verify_opts_t *opts, const cv_workload_t *w, cv_report_t *rep, FILE *out)
{
    Canvass__V1__AdminReply *reply = NULL;
    rep->verify = CV_VERIFY_ERROR;
    int rc = fetch_live(opts, &reply, out);
    if (rc < 0)
        return rc;
    const Canvass__V1__RankedList *list = reply->ranked;
    Canvass__V1__RankedEntry **sorted = malloc((list->n_entries + 1) * sizeof *sorted);
    if (!sorted) {
        canvass__v1__admin_reply__free_unpacked(reply, NULL);
        fprintf(out, "verify: out of memory\n");
        return CV_ENOMEM;
    }
    memcpy(sorted, list->entries, list->n_entries * sizeof *sorted);
    qsort(sorted, list->n_entries, sizeof *sorted, by_feature_id);

    uint64_t checked = 0, bad = 0;
    for (size_t i = 0; i < cv_workload_features(w); i++) {
        const char *id = cv_workload_feature_id(w, i);
        if (!id)
            continue;
        checked++;
        cv_expect_t want;
        cv_workload_expect(w, i, &want);
        Canvass__V1__RankedEntry **hit =
            bsearch(id, sorted, list->n_entries, sizeof *sorted, id_vs_entry);
        if (want.unknown) {
            fprintf(out, "verify: %s: %llu votes had no definite answer; cannot compare\n", id,
                    (unsigned long long)want.unknown);
            bad++;
        } else if (!hit) {
            fprintf(out, "verify: %s: not in the live list; want up %llu down %llu voters %llu\n",
                    id, (unsigned long long)want.up, (unsigned long long)want.down,
                    (unsigned long long)want.voters);
            bad++;
        } else if ((*hit)->up != want.up || (*hit)->down != want.down ||
                   (*hit)->voters != want.voters) {
            fprintf(out, "verify: %s: cluster has up %llu down %llu voters %llu; "
                         "want up %llu down %llu voters %llu\n",
                    id, (unsigned long long)(*hit)->up, (unsigned long long)(*hit)->down,
                    (unsigned long long)(*hit)->voters, (unsigned long long)want.up,
                    (unsigned long long)want.down, (unsigned long long)want.voters);
            bad++;
        }
    }
    free(sorted);
    canvass__v1__admin_reply__free_unpacked(reply, NULL);
    rep->verify_features = checked;
    rep->verify_mismatches = bad;
    rep->verify = bad ? CV_VERIFY_MISMATCH : CV_VERIFY_OK;
    return bad ? CV_EMISMATCH : 0;
}
