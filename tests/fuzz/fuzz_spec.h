/* fuzz_spec.h — the job-spec parser (spec_job_parse_text), native and CLI forms.
 *
 * Properties: no crash or leak; a verdict is OK, INVALID or NOMEM; INVALID lists at
 * least one problem, OK none; a spec that parses renders (spec_job_to_json) and
 * re-parses to the same rendering (the documented round trip). */
#ifndef FITD_FUZZ_SPEC_H
#define FITD_FUZZ_SPEC_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "spec.h"

/* Parse `text` with `flags` and check the properties. */
static int spec_check(const char *text, size_t len, int flags)
{
    spec_job job, again;
    spec_problems probs;
    json_t *doc = NULL, *doc2 = NULL;
    char *dumped = NULL;
    int bad = 0;
    memset(&job, 0, sizeof job);
    memset(&again, 0, sizeof again);
    int rc = spec_job_parse_text(text, len, NULL, flags, &job, &probs);
    if (rc == SPEC_INVALID && probs.n < 1) {
        fprintf(stderr, "fuzz_spec: INVALID without a problem\n");
        bad = 1;
    }
    if (rc != SPEC_OK) goto out;
    if (probs.n != 0) {
        fprintf(stderr, "fuzz_spec: OK with %d problems\n", probs.n);
        bad = 1;
        goto out;
    }
    doc = spec_job_to_json(&job);
    if (!doc) goto out; /* out of memory */
    dumped = json_dumps(doc, JSON_COMPACT);
    if (!dumped) goto out;
    spec_problems p2;
    if (spec_job_parse_text(dumped, strlen(dumped), NULL, flags, &again, &p2) != SPEC_OK) {
        fprintf(stderr, "fuzz_spec: the rendering does not parse: %s: %s\n%s\n",
                p2.n ? p2.items[0].pointer : "", p2.n ? p2.items[0].message : "", dumped);
        bad = 1;
        goto out;
    }
    doc2 = spec_job_to_json(&again);
    if (doc2 && !json_equal(doc, doc2)) {
        char *d2 = json_dumps(doc2, JSON_COMPACT);
        fprintf(stderr, "fuzz_spec: round trip differs:\n%s\n%s\n", dumped, d2 ? d2 : "?");
        free(d2);
        bad = 1;
    }
out:
    free(dumped);
    json_decref(doc);
    json_decref(doc2);
    spec_job_free(&job);
    spec_job_free(&again);
    return bad ? -1 : 0;
}

int fuzz_spec(const uint8_t *data, size_t size)
{
    if (spec_check((const char *)data, size, 0) != 0) return -1;
    return spec_check((const char *)data, size, SPEC_DATA_OPTIONAL);
}

FUZZ_ENTRY(fuzz_spec)

#endif
