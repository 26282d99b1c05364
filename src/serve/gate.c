/* At most max_running generations at once; up to max_waiting more wait their turn in arrival
 * order (a ticket counter); beyond that a request is refused at once (the caller answers 503). */
#include "serve/server.h"

void srv_gate_init(srv_gate *g, int max_running, int max_waiting) {
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->max_running = max_running;
    g->max_waiting = max_waiting;
}

void srv_gate_destroy(srv_gate *g) {
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

bool srv_gate_enter(srv_gate *g) {
    pthread_mutex_lock(&g->mu);
    if (g->running < g->max_running && g->waiting == 0) {
        g->running++;
        pthread_mutex_unlock(&g->mu);
        return true;
    }
    if (g->waiting >= g->max_waiting) {
        pthread_mutex_unlock(&g->mu);
        return false;
    }
    g->waiting++;
    while (g->running >= g->max_running) pthread_cond_wait(&g->cv, &g->mu);
    g->waiting--;
    g->running++;
    pthread_mutex_unlock(&g->mu);
    return true;
}

void srv_gate_leave(srv_gate *g) {
    pthread_mutex_lock(&g->mu);
    g->running--;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

void srv_gate_counts(srv_gate *g, int *running, int *waiting) {
    pthread_mutex_lock(&g->mu);
    *running = g->running;
    *waiting = g->waiting;
    pthread_mutex_unlock(&g->mu);
}
