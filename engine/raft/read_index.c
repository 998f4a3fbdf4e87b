/* read_index.c - linearizable reads without writing to the log (thesis §6.4).
 *
 * ReadIndex: the leader records its commit index as the read index, then proves it is
 * still the leader by a heartbeat round acknowledged by a majority; the read is safe once
 * the state machine has applied up to the read index. Reads that arrive together share one
 * round: a read gets a round number when the next ready is built (reads_flush), and every
 * heartbeat carries its round number in its context, so one acknowledgement of round k
 * confirms every read of round <= k. A new leader first commits an entry of its own term
 * (its no-op), because before that its commit index may lag the true one.
 *
 * Lease (config.lease_read): a majority that acknowledged round k, sent at tick t, will not
 * elect another leader before t + election_tick (followers ignore votes for that long after
 * hearing from a leader: raft.c term_rules, and need at least election_tick to time out).
 * Until t + election_tick - lease_margin the leader answers reads at once. The margin is the
 * clock drift the deployment tolerates. A leader that sent TIMEOUT_NOW gives up its lease
 * for the rest of the term, because a transfer forces votes through the stickiness rule.
 *
 * Followers forward reads to the leader (MSG_READ_INDEX) and get the index back
 * (MSG_READ_INDEX_RESP). Lost requests are not retried here: the caller times out. */
#include <stdlib.h>
#include <string.h>

#include "engine/raft/raft_int.h"

#define MAX_CTX 256

int read_state_push(raft_t *r, uint64_t index, const uint8_t *ctx, size_t len)
{
    if (r->n_rstates == r->cap_rstates) {
        size_t cap = r->cap_rstates ? r->cap_rstates * 2 : 8;
        raft_read_state_t *v = realloc(r->rstates, cap * sizeof(*v));
        if (!v)
            return SHOAL_ENOMEM;
        r->rstates = v;
        r->cap_rstates = cap;
    }
    raft_read_state_t *s = &r->rstates[r->n_rstates];
    s->index = index;
    s->ctx_len = len;
    s->ctx = len ? malloc(len) : NULL;
    if (len && !s->ctx)
        return SHOAL_ENOMEM;
    if (len)
        memcpy(s->ctx, ctx, len);
    r->n_rstates++;
    return 0;
}

static bool committed_in_term(const raft_t *r)
{
    return log_term(&r->log, r->log.committed) == r->term;
}

static bool lease_valid(const raft_t *r)
{
    return r->cfg.lease_read && !r->lease_disabled && r->lead_transferee == RAFT_NONE &&
           r->now < r->lease_until;
}

/* A confirmed read goes to the local caller or back to the follower that asked. */
static int release(raft_t *r, raft_read_t *rd, uint64_t index)
{
    if (rd->from == r->id)
        return read_state_push(r, index, rd->ctx, rd->len);
    raft_msg_t m = {.type = RAFT_MSG_READ_INDEX_RESP,
                    .to = rd->from,
                    .index = index,
                    .context = rd->ctx,
                    .context_len = rd->len};
    rd->ctx = NULL; /* the message takes it */
    rd->len = 0;
    return raft_send(r, &m);
}

int leader_read(raft_t *r, uint64_t from, const uint8_t *ctx, size_t len)
{
    if (r->n_reads == r->cap_reads) {
        size_t cap = r->cap_reads ? r->cap_reads * 2 : 8;
        raft_read_t *v = realloc(r->reads, cap * sizeof(*v));
        if (!v)
            return SHOAL_ENOMEM;
        r->reads = v;
        r->cap_reads = cap;
    }
    raft_read_t *rd = &r->reads[r->n_reads];
    memset(rd, 0, sizeof(*rd));
    rd->from = from;
    rd->len = len;
    rd->ctx = len ? malloc(len) : NULL;
    if (len && !rd->ctx)
        return SHOAL_ENOMEM;
    if (len)
        memcpy(rd->ctx, ctx, len);
    r->n_reads++;
    return 0;
}

/* Drops the first k reads (already released). */
static void reads_shift(raft_t *r, size_t k)
{
    if (k == 0)
        return;
    for (size_t i = 0; i < k; i++)
        free(r->reads[i].ctx);
    memmove(r->reads, r->reads + k, (r->n_reads - k) * sizeof(*r->reads));
    r->n_reads -= k;
}

void reads_drop(raft_t *r)
{
    reads_shift(r, r->n_reads);
}

/* The highest round a majority of voters acknowledged. */
static uint64_t quorum_round(const raft_t *r)
{
    uint64_t acks[RAFT_MAX_NODES];
    size_t n = 0;
    for (size_t i = 0; i < r->n_prs; i++)
        if (!r->prs[i].learner && raft_is_voter(r, r->prs[i].id))
            acks[n++] = r->prs[i].read_ack;
    if (n == 0)
        return 0;
    /* partial selection sort: the quorum-th largest */
    size_t q = raft_quorum(r);
    for (size_t i = 0; i < q; i++)
        for (size_t j = i + 1; j < n; j++)
            if (acks[j] > acks[i]) {
                uint64_t t = acks[i];
                acks[i] = acks[j];
                acks[j] = t;
            }
    return acks[q - 1];
}

void reads_on_ack(raft_t *r)
{
    uint64_t q = quorum_round(r);
    if (q == 0)
        return;
    uint64_t lease =
        r->round_tick[q % RAFT_ROUND_RING] + r->cfg.election_tick - r->cfg.lease_margin;
    if (r->read_round - q < RAFT_ROUND_RING && q >= r->lease_min_round && lease > r->lease_until)
        r->lease_until = lease;
    size_t k = 0;
    while (k < r->n_reads && r->reads[k].round != 0 && r->reads[k].round <= q) {
        release(r, &r->reads[k], r->reads[k].index);
        k++;
    }
    reads_shift(r, k);
}

/* Called when a ready is built: start a round for reads that have none yet. */
void reads_flush(raft_t *r)
{
    if (r->role != RAFT_LEADER || !r->n_reads || !committed_in_term(r) ||
        r->reads[r->n_reads - 1].round != 0)
        return;
    bool at_once = lease_valid(r) || RAFT_BUG(RAFT_BUG_STALE_READ);
    if (at_once) {
        size_t k = 0;
        while (k < r->n_reads && r->reads[k].round == 0) {
            release(r, &r->reads[k], r->log.committed);
            k++;
        }
        reads_shift(r, k);
        if (k || r->n_reads == 0)
            return;
    }
    bcast_heartbeat(r); /* opens round read_round */
    for (size_t i = 0; i < r->n_reads; i++)
        if (r->reads[i].round == 0) {
            r->reads[i].round = r->read_round;
            r->reads[i].index = r->log.committed;
        }
    reads_on_ack(r); /* a single voter confirms itself */
}

void raft_lease_drop(raft_t *r)
{
    if (!r)
        return;
    r->lease_until = 0;
    r->lease_min_round = r->read_round + 1;
}

int raft_read_index(raft_t *r, const void *ctx, size_t ctx_len)
{
    if (!r || ctx_len > MAX_CTX || (ctx_len && !ctx))
        return SHOAL_EINVAL;
    if (r->role == RAFT_LEADER)
        return leader_read(r, r->id, ctx, ctx_len);
    if (r->lead == RAFT_NONE)
        return SHOAL_ENOTLEADER;
    raft_msg_t m = {.type = RAFT_MSG_READ_INDEX, .to = r->lead};
    if (ctx_len) {
        m.context = malloc(ctx_len);
        if (!m.context)
            return SHOAL_ENOMEM;
        memcpy(m.context, ctx, ctx_len);
        m.context_len = ctx_len;
    }
    return raft_send(r, &m);
}

void handle_read_index(raft_t *r, const raft_msg_t *m)
{
    if (m->context_len <= MAX_CTX && (raft_is_voter(r, m->from) || raft_is_learner(r, m->from)))
        leader_read(r, m->from, m->context, m->context_len);
}
