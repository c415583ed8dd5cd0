/*
 * schedule.c: the `schedule` pass: the order in which layers run, shared
 * by every target and by inference and training.
 *
 * Requires: a graph whose same-step edges go forward in the node list.
 * Makes: g->order and g->groups, and each live node's group. The groups
 * are the strongly connected components of the graph with its prev()
 * edges, in an order where each group comes after every group it reads:
 *   - a node on no cycle is a group of its own; it runs layer-major, all
 *     the steps of a chunk in one call (a dense layer is then one matrix
 *     product over steps x batch rows);
 *   - the nodes of a cycle through prev() (a recurrent layer) form one
 *     group that runs time-major: for each step, each member in node order,
 *     which is a topological order of the same-step edges.
 * The components are found with Tarjan's algorithm, written with an
 * explicit stack so that a chain of 100000 layers needs no deep recursion;
 * the pass takes time linear in the size of the graph.
 *
 * pass_stepwise, for the passes after it: the nodes whose every step's
 * value is read as it is (recurrent groups, probes).
 */
#include "passes.h"

#include <string.h>

void pass_schedule(IrGraph *g) {
    Arena *a = g->arena;
    int n = g->nodes.len;
    /* successors in compressed rows: succ[first[v] .. first[v + 1]) */
    int *first = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    int nedges = 0;
    for (int i = 0; i < n; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead)
            continue;
        for (int k = 0; k < x->nin; k++)
            first[x->in[k] + 1]++;
        nedges += x->nin;
    }
    for (int i = 0; i < n; i++)
        first[i + 1] += first[i];
    int *succ = arena_alloc(a, sizeof(int) * (size_t)(nedges + 1));
    int *fill = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    memcpy(fill, first, sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (!x->dead)
            for (int k = 0; k < x->nin; k++)
                succ[fill[x->in[k]]++] = i;
    }

    int *index = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    int *low = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    int *comp = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    unsigned char *on = arena_alloc(a, (size_t)n + 1);
    int *stack = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    int *call = arena_alloc(a, sizeof(int) * (size_t)(n + 1)); /* the DFS path */
    int *edge = arena_alloc(a, sizeof(int) * (size_t)(n + 1)); /* next successor to visit */
    int next = 0, sp = 0, ncomp = 0;
    for (int i = 0; i < n; i++)
        index[i] = -1;
    for (int root = 0; root < n; root++) {
        if (g->nodes.items[root].dead || index[root] >= 0)
            continue;
        int depth = 0;
        call[depth++] = root;
        index[root] = low[root] = next++;
        edge[root] = first[root];
        stack[sp++] = root;
        on[root] = 1;
        while (depth > 0) {
            int v = call[depth - 1];
            if (edge[v] < first[v + 1]) {
                int w = succ[edge[v]++];
                if (index[w] < 0) {
                    index[w] = low[w] = next++;
                    edge[w] = first[w];
                    stack[sp++] = w;
                    on[w] = 1;
                    call[depth++] = w;
                } else if (on[w] && index[w] < low[v])
                    low[v] = index[w];
                continue;
            }
            /* v is finished */
            if (low[v] == index[v]) {
                int w;
                do {
                    w = stack[--sp];
                    on[w] = 0;
                    comp[w] = ncomp;
                } while (w != v);
                ncomp++;
            }
            depth--;
            if (depth > 0 && low[v] < low[call[depth - 1]])
                low[call[depth - 1]] = low[v];
        }
    }
    /* Tarjan numbers the components sinks first: run them in reverse, each
       one's nodes in node order (a counting sort by component) */
    int *cstart = arena_alloc(a, sizeof(int) * (size_t)(ncomp + 1));
    for (int i = 0; i < n; i++)
        if (!g->nodes.items[i].dead)
            cstart[ncomp - 1 - comp[i] + 1]++;
    for (int c = 0; c < ncomp; c++)
        cstart[c + 1] += cstart[c];
    g->order = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    memcpy(fill, cstart, sizeof(int) * (size_t)(ncomp + 1));
    for (int i = 0; i < n; i++) {
        IrNode *x = &g->nodes.items[i];
        x->group = -1;
        if (x->dead)
            continue;
        int c = ncomp - 1 - comp[i];
        g->order[fill[c]++] = i;
        x->group = c;
    }
    g->norder = cstart[ncomp];
    g->groups.len = 0;
    for (int c = 0; c < ncomp; c++) {
        IrGroup gr;
        gr.first = cstart[c];
        gr.count = cstart[c + 1] - cstart[c];
        /* one node is recurrent only when it reads itself, which the
           language cannot write (prev() is a node of its own) */
        gr.recurrent = gr.count > 1;
        vec_push(a, &g->groups, gr);
    }
}

unsigned char *pass_stepwise(IrGraph *g) {
    unsigned char *on = arena_alloc(g->arena, (size_t)g->nodes.len + 1);
    for (int k = 0; k < g->probes.len; k++)
        on[g->probes.items[k].node] = 1;
    for (int gi = 0; gi < g->groups.len; gi++)
        for (int j = 0; g->groups.items[gi].recurrent && j < g->groups.items[gi].count; j++)
            on[g->order[g->groups.items[gi].first + j]] = 1;
    return on;
}
