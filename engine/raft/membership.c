/* membership.c - configuration changes, one server at a time (thesis §4.1).
 *
 * Any two configurations that differ by one voter share a majority, so a change needs no
 * joint phase. The configuration in effect is the last one *committed* (it takes effect
 * when this node learns the entry is committed); the leader refuses a second change while
 * one is uncommitted, and refuses any change before it has committed an entry of its own
 * term (the fix for the single-server bug found after the thesis). So at most two adjacent
 * configurations are ever in use at once.
 *
 * Learners receive the log but never vote or count for commit; CONF_PROMOTE makes a caught
 * up learner a voter. A leader that commits its own removal steps down after handing its
 * leadership (TIMEOUT_NOW) to the most caught-up voter.
 *
 * Entry data of a change: type (1 byte), node id (8 bytes little-endian), context bytes. */
#include <stdlib.h>
#include <string.h>

#include "engine/raft/raft_int.h"

#define CC_HEADER 9

int raft_conf_change_decode(const uint8_t *data, size_t len, raft_conf_change_t *cc)
{
    if (!cc || len < CC_HEADER || !data || data[0] > RAFT_CONF_PROMOTE)
        return SHOAL_EINVAL;
    cc->type = (raft_conf_change_type_t)data[0];
    cc->node_id = 0;
    for (int i = 0; i < 8; i++)
        cc->node_id |= (uint64_t)data[1 + i] << (8 * i);
    cc->context = len > CC_HEADER ? data + CC_HEADER : NULL;
    cc->context_len = len - CC_HEADER;
    return cc->node_id == RAFT_NONE ? SHOAL_EINVAL : 0;
}

size_t conf_change_encode(const raft_conf_change_t *cc, uint8_t *buf)
{
    buf[0] = (uint8_t)cc->type;
    for (int i = 0; i < 8; i++)
        buf[1 + i] = (uint8_t)(cc->node_id >> (8 * i));
    if (cc->context_len)
        memcpy(buf + CC_HEADER, cc->context, cc->context_len);
    return CC_HEADER + cc->context_len;
}

static int cmp_id(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* A fresh member of a new group writes its initial configuration into the log as entries
 * 1..n of term 1 (voters, then learners, each in id order), committed: every initial member
 * writes the same entries, and nodes that join later learn the configuration by replicating
 * them (or from a snapshot). */
int conf_bootstrap(raft_t *r)
{
    uint64_t ids[2][RAFT_MAX_NODES];
    size_t n[2] = {r->conf.n_voters, r->conf.n_learners};
    memcpy(ids[0], r->conf.voters, n[0] * sizeof(uint64_t));
    memcpy(ids[1], r->conf.learners, n[1] * sizeof(uint64_t));
    for (int l = 0; l < 2; l++) {
        qsort(ids[l], n[l], sizeof(uint64_t), cmp_id);
        for (size_t i = 0; i < n[l]; i++) {
            uint8_t buf[CC_HEADER];
            raft_conf_change_t cc = {l ? RAFT_CONF_ADD_LEARNER : RAFT_CONF_ADD_VOTER, ids[l][i],
                                     NULL, 0};
            raft_entry_t e = {.term = 1,
                              .index = log_last_index(&r->log) + 1,
                              .type = RAFT_ENTRY_CONF_CHANGE,
                              .data = buf,
                              .len = conf_change_encode(&cc, buf)};
            int rc = log_append(&r->log, &e, true);
            if (rc)
                return rc;
        }
    }
    r->term = 1;
    r->log.committed = log_last_index(&r->log);
    r->conf_scanned = r->log.committed; /* the entries restate r->conf */
    return 0;
}

static bool ids_remove(uint64_t *ids, size_t *n, uint64_t id)
{
    for (size_t i = 0; i < *n; i++)
        if (ids[i] == id) {
            ids[i] = ids[--*n];
            return true;
        }
    return false;
}

static void ids_add(uint64_t *ids, size_t *n, uint64_t id)
{
    if (!conf_has(ids, *n, id) && *n < RAFT_MAX_NODES)
        ids[(*n)++] = id;
}

/* The configuration after cc; returns false if cc makes no sense on c. */
static bool conf_after(const raft_conf_state_t *c, const raft_conf_change_t *cc,
                       raft_conf_state_t *out)
{
    *out = *c;
    switch (cc->type) {
    case RAFT_CONF_ADD_VOTER:
        ids_remove(out->learners, &out->n_learners, cc->node_id);
        ids_add(out->voters, &out->n_voters, cc->node_id);
        return true;
    case RAFT_CONF_ADD_LEARNER:
        if (conf_has(c->voters, c->n_voters, cc->node_id))
            return false;
        ids_add(out->learners, &out->n_learners, cc->node_id);
        return true;
    case RAFT_CONF_REMOVE: {
        bool was_voter = ids_remove(out->voters, &out->n_voters, cc->node_id);
        bool was_learner = ids_remove(out->learners, &out->n_learners, cc->node_id);
        return was_voter || was_learner;
    }
    case RAFT_CONF_PROMOTE:
        if (!ids_remove(out->learners, &out->n_learners, cc->node_id))
            return false;
        ids_add(out->voters, &out->n_voters, cc->node_id);
        return true;
    }
    return false;
}

const raft_conf_state_t *conf_at(const raft_t *r, uint64_t index)
{
    for (size_t i = r->n_hist; i-- > 0;)
        if (r->hist[i].index <= index)
            return &r->hist[i].conf;
    return &r->snap_conf;
}

void conf_drop_hist_to(raft_t *r, uint64_t index)
{
    size_t k = 0;
    while (k < r->n_hist && r->hist[k].index <= index)
        k++;
    if (k == 0)
        return;
    memmove(r->hist, r->hist + k, (r->n_hist - k) * sizeof(*r->hist));
    r->n_hist -= k;
}

static void hist_push(raft_t *r, uint64_t index)
{
    if (r->n_hist == r->cap_hist) {
        size_t cap = r->cap_hist ? r->cap_hist * 2 : 8;
        raft_conf_hist_t *v = realloc(r->hist, cap * sizeof(*v));
        if (!v)
            return; /* conf_at falls back to an older configuration: only snapshots see it */
        r->hist = v;
        r->cap_hist = cap;
    }
    r->hist[r->n_hist++] = (raft_conf_hist_t){index, r->conf};
}

/* Leader: one progress per voter and learner of the configuration in effect. */
void conf_sync_progress(raft_t *r)
{
    for (size_t i = 0; i < r->n_prs;) {
        raft_progress_t *pr = &r->prs[i];
        bool voter = raft_is_voter(r, pr->id), learner = raft_is_learner(r, pr->id);
        if (!voter && !learner && pr->id != r->id) {
            progress_free(pr);
            r->prs[i] = r->prs[--r->n_prs];
            continue;
        }
        pr->learner = learner;
        i++;
    }
    const uint64_t *lists[2] = {r->conf.voters, r->conf.learners};
    size_t counts[2] = {r->conf.n_voters, r->conf.n_learners};
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < counts[l]; i++)
            if (!progress_of(r, lists[l][i]) && r->n_prs < RAFT_MAX_NODES) {
                progress_reset(r, &r->prs[r->n_prs], lists[l][i], l == 1);
                send_append(r, &r->prs[r->n_prs++], true);
            }
}

/* The leader's own removal committed: hand over to the most caught-up voter. */
static void leader_removed(raft_t *r)
{
    raft_progress_t *best = NULL;
    for (size_t i = 0; i < r->n_prs; i++) {
        raft_progress_t *pr = &r->prs[i];
        if (pr->id != r->id && raft_is_voter(r, pr->id) && (!best || pr->match > best->match))
            best = pr;
    }
    if (best && best->match == log_last_index(&r->log))
        send_timeout_now(r, best->id);
    r->step_down_pending = true;
}

static void apply_one(raft_t *r, const raft_entry_t *e)
{
    raft_conf_change_t cc;
    raft_conf_state_t next;
    if (raft_conf_change_decode(e->data, e->len, &cc) || !conf_after(&r->conf, &cc, &next))
        return; /* a no-op change (validated at propose time; replayed twice is harmless) */
    r->conf = next;
    hist_push(r, e->index);
    if (r->role != RAFT_LEADER)
        return;
    conf_sync_progress(r);
    if (!raft_is_voter(r, r->id))
        leader_removed(r);
}

void conf_apply_committed(raft_t *r)
{
    for (uint64_t i = r->conf_scanned + 1; i <= r->log.committed; i++) {
        const raft_entry_t *e = log_entry(&r->log, i);
        if (e && e->type == RAFT_ENTRY_CONF_CHANGE)
            apply_one(r, e);
    }
    if (r->log.committed > r->conf_scanned)
        r->conf_scanned = r->log.committed;
}

/* Would the new voters still have a majority of nodes we heard from lately? */
static bool keeps_quorum(raft_t *r, const raft_conf_state_t *next)
{
    size_t live = 0;
    for (size_t i = 0; i < next->n_voters; i++) {
        raft_progress_t *pr = progress_of(r, next->voters[i]);
        if (pr && peer_active(r, pr) && (pr->id == r->id || pr->match > 0))
            live++;
    }
    return next->n_voters > 0 && live >= next->n_voters / 2 + 1;
}

static int check_change(raft_t *r, const raft_conf_change_t *cc, raft_conf_state_t *next)
{
    uint64_t id = cc->node_id;
    bool voter = raft_is_voter(r, id), learner = raft_is_learner(r, id);
    if (id == RAFT_NONE || (unsigned)cc->type > RAFT_CONF_PROMOTE)
        return SHOAL_EINVAL;
    if ((cc->type == RAFT_CONF_ADD_VOTER && voter) ||
        (cc->type == RAFT_CONF_ADD_LEARNER && (voter || learner)) ||
        (cc->type == RAFT_CONF_PROMOTE && voter))
        return SHOAL_EEXIST;
    if ((cc->type == RAFT_CONF_REMOVE && !voter && !learner) ||
        (cc->type == RAFT_CONF_PROMOTE && !learner))
        return SHOAL_ENOTFOUND;
    if (!voter && !learner && r->conf.n_voters + r->conf.n_learners >= RAFT_MAX_NODES)
        return SHOAL_EINVAL;
    if (cc->type == RAFT_CONF_PROMOTE || (cc->type == RAFT_CONF_ADD_VOTER && learner)) {
        raft_progress_t *pr = progress_of(r, id);
        if (!pr || pr->match < r->log.committed || !peer_active(r, pr))
            return SHOAL_EBUSY; /* not caught up yet */
    }
    if (!conf_after(&r->conf, cc, next))
        return SHOAL_EINVAL;
    return keeps_quorum(r, next) ? 0 : SHOAL_EUNAVAIL;
}

int64_t raft_propose_conf_change(raft_t *r, const raft_conf_change_t *cc, uint64_t *leader_hint)
{
    if (!r || !cc || (cc->context_len && !cc->context))
        return SHOAL_EINVAL;
    if (r->role != RAFT_LEADER) {
        if (leader_hint)
            *leader_hint = r->lead;
        return SHOAL_ENOTLEADER;
    }
    if (r->lead_transferee != RAFT_NONE || r->pending_conf_index > r->conf_scanned ||
        log_term(&r->log, r->log.committed) != r->term)
        return SHOAL_EBUSY;
    raft_conf_state_t next;
    int rc = check_change(r, cc, &next);
    if (rc)
        return rc;
    size_t len = CC_HEADER + cc->context_len;
    uint8_t *buf = malloc(len);
    if (!buf)
        return SHOAL_ENOMEM;
    conf_change_encode(cc, buf);
    int64_t index = leader_append(r, RAFT_ENTRY_CONF_CHANGE, buf, len);
    free(buf);
    if (index > 0)
        r->pending_conf_index = (uint64_t)index;
    return index;
}
