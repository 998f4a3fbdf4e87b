/* pool.c - background threads shared by engines (see pool.h). */
#include "engine/lsm/pool.h"

#include <pthread.h>
#include <stdlib.h>

#include "engine/error.h"

struct lsm_pool {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a member was queued, or stop */
    pthread_cond_t idle; /* a member's step ended (detach waits for it) */
    lsm_pool_member_t *head, *tail;
    bool stop;
    int nthreads;
    pthread_t threads[];
};

static void push(lsm_pool_t *p, lsm_pool_member_t *m)
{
    m->next = NULL;
    m->queued = true;
    if (p->tail)
        p->tail->next = m;
    else
        p->head = m;
    p->tail = m;
    pthread_cond_signal(&p->work);
}

static lsm_pool_member_t *pop(lsm_pool_t *p)
{
    lsm_pool_member_t *m = p->head;
    p->head = m->next;
    if (!p->head)
        p->tail = NULL;
    m->next = NULL;
    m->queued = false;
    return m;
}

static void unlink_member(lsm_pool_t *p, lsm_pool_member_t *m)
{
    lsm_pool_member_t **pp = &p->head, *prev = NULL;
    while (*pp && *pp != m)
        prev = *pp, pp = &(*pp)->next;
    if (!*pp)
        return;
    *pp = m->next;
    if (p->tail == m)
        p->tail = prev;
    m->next = NULL;
    m->queued = false;
}

static void *worker(void *arg)
{
    lsm_pool_t *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        if (!p->head) {
            pthread_cond_wait(&p->work, &p->mu);
            continue;
        }
        lsm_pool_member_t *m = pop(p);
        m->running = true;
        m->again = false;
        pthread_mutex_unlock(&p->mu);
        bool did = m->step(m->arg);
        pthread_mutex_lock(&p->mu);
        m->running = false;
        /* a step that did something may have left more (another memtable, the compaction
         * its flush made due); one that did nothing ends the member's turn */
        if ((did || m->again) && !m->detached)
            push(p, m);
        pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int lsm_pool_new(int threads, lsm_pool_t **out)
{
    *out = NULL;
    if (threads < 1 || threads > 64)
        return SHOAL_EINVAL;
    lsm_pool_t *p = calloc(1, sizeof *p + sizeof(pthread_t) * (size_t)threads);
    if (!p)
        return SHOAL_ENOMEM;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->idle, NULL);
    for (; p->nthreads < threads; p->nthreads++)
        if (pthread_create(&p->threads[p->nthreads], NULL, worker, p) != 0)
            break;
    if (p->nthreads == 0) {
        lsm_pool_destroy(&p);
        return SHOAL_ENOMEM;
    }
    *out = p;
    return 0;
}

void lsm_pool_destroy(lsm_pool_t **pp)
{
    lsm_pool_t *p = *pp;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    free(p);
    *pp = NULL;
}

void lsm_pool_attach(lsm_pool_t *p, lsm_pool_member_t *m, bool (*step)(void *), void *arg)
{
    pthread_mutex_lock(&p->mu);
    *m = (lsm_pool_member_t){.step = step, .arg = arg};
    pthread_mutex_unlock(&p->mu);
}

void lsm_pool_schedule(lsm_pool_t *p, lsm_pool_member_t *m)
{
    pthread_mutex_lock(&p->mu);
    if (m->running)
        m->again = true;
    else if (!m->detached && !m->queued)
        push(p, m);
    pthread_mutex_unlock(&p->mu);
}

void lsm_pool_detach(lsm_pool_t *p, lsm_pool_member_t *m)
{
    pthread_mutex_lock(&p->mu);
    m->detached = true;
    if (m->queued)
        unlink_member(p, m);
    while (m->running)
        pthread_cond_wait(&p->idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

int lsm_pool_threads(const lsm_pool_t *p)
{
    return p->nthreads;
}
