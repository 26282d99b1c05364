/* Op-test registry: every op's backward against central finite differences.
 * Each case sets up small random inputs (seeded tk_rng), runs forward, takes the scalar
 * loss L = sum(out * R) for fixed random R (accumulated in double), runs backward with
 * dout = R, and compares each analytic input/parameter gradient with
 * (L(x + eps) - L(x - eps)) / 2eps for every element (or a random sample of 200 of a
 * larger tensor). Error = max |analytic - numeric| / max |numeric| per tensor; any case
 * above its threshold fails. Parameter gradients (+= convention) are also checked to
 * accumulate: a second backward must double them. Forward results are checked against
 * independent naive references where the op has one (attention masks, xent loss). */
#include "test.h"
#include "test_backends.h"
#include "core/core.h"
#include "core/quant.h"
#include "ops/ops.h"
#include "takumi/model.h"

#define MAX_T 8
typedef struct fd_tensor {
    const char *name;
    float *data, *grad; /* grad: analytic gradient (inputs) or dout = R (outputs) */
    int64_t n;
    bool param;         /* gradient accumulates (+=) */
} fd_tensor;

typedef struct fd_case fd_case;
struct fd_case {
    const char *name;
    fd_tensor in[MAX_T], out[MAX_T];
    int nin, nout;
    tk_status (*fwd)(fd_case *);
    tk_status (*bwd)(fd_case *);
    double eps, tol;
    /* case parameters */
    int64_t T, C, V, H, KH, D, S, N, K;
    int32_t *ids, *pos, *pos_k, *seg_q, *seg_k, *target;
    float *wts, *aux, *aux2, fl;
    float cap;          /* LM head soft-cap (lmhead cases) */
    int flag;
    tk_rope rope;
    tk_attn_args args;
    tk_tensor_ref wref;
    void *wq;
};

static tk_rng rng;

static float *randv(int64_t n, float scale) {
    float *v = malloc((size_t)(n ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) v[i] = scale * tk_rng_normal(&rng);
    return v;
}
static float *zerov(int64_t n) { return calloc((size_t)(n ? n : 1), sizeof(float)); }
static int32_t *ivec(int64_t n) { return calloc((size_t)(n ? n : 1), sizeof(int32_t)); }

static fd_tensor *add_in(fd_case *c, const char *name, int64_t n, float scale, bool param) {
    fd_tensor *t = &c->in[c->nin++];
    *t = (fd_tensor){name, randv(n, scale), zerov(n), n, param};
    return t;
}
static fd_tensor *add_out(fd_case *c, const char *name, int64_t n) {
    fd_tensor *t = &c->out[c->nout++];
    *t = (fd_tensor){name, zerov(n), randv(n, 1.0f), n, false};
    return t;
}

static double loss_of(fd_case *c) {
    double L = 0;
    for (int o = 0; o < c->nout; o++)
        for (int64_t i = 0; i < c->out[o].n; i++) L += (double)c->out[o].data[i] * c->out[o].grad[i];
    return L;
}

/* Runs one case; returns the worst error ratio (error / tolerance). */
static void run_case(fd_case *c) {
    CHECK_OK(c->fwd(c));
    for (int i = 0; i < c->nin; i++) memset(c->in[i].grad, 0, (size_t)c->in[i].n * sizeof(float));
    CHECK_OK(c->bwd(c));
    double worst = 0;
    char worst_name[64] = "";
    for (int i = 0; i < c->nin; i++) {
        fd_tensor *t = &c->in[i];
        int64_t n = t->n, m = n <= 200 ? n : 200;
        double max_num = 0, max_err = 0;
        for (int64_t j = 0; j < m; j++) {
            int64_t e = n <= 200 ? j : (int64_t)(tk_rng_u64(&rng) % (uint64_t)n);
            float x0 = t->data[e];
            t->data[e] = x0 + (float)c->eps;
            double h1 = (double)t->data[e] - x0;
            CHECK_OK(c->fwd(c));
            double lp = loss_of(c);
            t->data[e] = x0 - (float)c->eps;
            double h2 = x0 - (double)t->data[e];
            CHECK_OK(c->fwd(c));
            double lm = loss_of(c);
            t->data[e] = x0;
            double num = (lp - lm) / (h1 + h2);
            max_num = fmax(max_num, fabs(num));
            max_err = fmax(max_err, fabs(num - t->grad[e]));
        }
        double rel = max_err / fmax(max_num, 1e-6);
        printf("  %-28s %-6s max|g| %.3e  max rel err %.2e\n", c->name, t->name, max_num, rel);
        CHECK(rel <= c->tol, "%s: gradient of %s disagrees with finite differences: rel err %.3g > %.3g", c->name, t->name,
              rel, c->tol);
        if (rel / c->tol > worst) { worst = rel / c->tol; snprintf(worst_name, sizeof worst_name, "%s", t->name); }
        CHECK(max_num > 0 || !strcmp(t->name, "-"), "%s: gradient of %s is identically zero (vacuous test)", c->name, t->name);
    }
    /* parameter gradients accumulate: run backward again without zeroing */
    bool any_param = false;
    for (int i = 0; i < c->nin; i++) any_param |= c->in[i].param;
    if (any_param) {
        CHECK_OK(c->fwd(c));
        float **first = calloc((size_t)c->nin, sizeof(float *));
        for (int i = 0; i < c->nin; i++) {
            first[i] = malloc((size_t)c->in[i].n * sizeof(float));
            memset(c->in[i].grad, 0, (size_t)c->in[i].n * sizeof(float));
        }
        CHECK_OK(c->bwd(c));
        for (int i = 0; i < c->nin; i++) memcpy(first[i], c->in[i].grad, (size_t)c->in[i].n * sizeof(float));
        CHECK_OK(c->bwd(c));
        for (int i = 0; i < c->nin; i++) {
            double e = 0, s = 0;
            for (int64_t j = 0; j < c->in[i].n; j++) {
                double want = c->in[i].param ? 2.0 * first[i][j] : first[i][j];
                e = fmax(e, fabs(c->in[i].grad[j] - want));
                s = fmax(s, fabs(want));
            }
            CHECK(e <= 1e-5 * s + 1e-7, "%s: %s gradient should %s on a second backward (err %g)", c->name, c->in[i].name,
                  c->in[i].param ? "accumulate" : "be overwritten", e);
            free(first[i]);
        }
        free(first);
    }
}

static void free_case(fd_case *c) {
    for (int i = 0; i < c->nin; i++) { free(c->in[i].data); free(c->in[i].grad); }
    for (int i = 0; i < c->nout; i++) { free(c->out[i].data); free(c->out[i].grad); }
    free(c->ids); free(c->pos); free(c->pos_k); free(c->seg_q); free(c->seg_k); free(c->target);
    free(c->wts); free(c->aux); free(c->aux2); free(c->wq);
    tk_rope_free(&c->rope);
}

/* ------------------------------------------------------------------ embedding */
static tk_status emb_fwd(fd_case *c) {
    tk_tensor_ref t = {.name = "table", .dtype = TK_F32, .n_dims = 2, .ne = {c->C, c->V, 1, 1}, .data = c->in[0].data,
                       .nbytes = (size_t)(c->V * c->C) * 4};
    return tk_embedding_forward(c->out[0].data, c->ids, c->T, &t);
}
static tk_status emb_bwd(fd_case *c) {
    tk_embedding_backward(c->in[0].grad, c->out[0].grad, c->ids, c->T, c->C);
    return TK_OK;
}
static void case_embedding(fd_case *c) {
    c->T = 7; c->C = 5; c->V = 11;
    c->ids = ivec(c->T);
    int32_t ids[] = {3, 0, 10, 3, 7, 3, 1}; /* repeats: gradients must add */
    memcpy(c->ids, ids, sizeof ids);
    add_in(c, "table", c->V * c->C, 1, true);
    add_out(c, "out", c->T * c->C);
    c->fwd = emb_fwd; c->bwd = emb_bwd;
}

/* ------------------------------------------------------------------ rmsnorm */
static tk_status rms_fwd(fd_case *c) {
    tk_rmsnorm_forward(c->out[0].data, c->aux, c->in[0].data, c->in[1].data, c->T, c->C, 1e-5f);
    return TK_OK;
}
static tk_status rms_bwd(fd_case *c) {
    tk_rmsnorm_backward(c->in[0].grad, c->in[1].grad, c->out[0].grad, c->in[0].data, c->in[1].data, c->aux, c->T, c->C);
    return TK_OK;
}
static void case_rmsnorm(fd_case *c) {
    c->T = 6; c->C = 24;
    add_in(c, "x", c->T * c->C, 1, false);
    add_in(c, "w", c->C, 1, true);
    add_out(c, "out", c->T * c->C);
    c->aux = zerov(c->T);
    c->fwd = rms_fwd; c->bwd = rms_bwd;
}

/* ------------------------------------------------------------------ rope */
static tk_status rope_fwd(fd_case *c) {
    memcpy(c->out[0].data, c->in[0].data, (size_t)c->in[0].n * 4);
    tk_rope_forward(c->out[0].data, c->pos, c->T, c->H, c->D, &c->rope);
    return TK_OK;
}
static tk_status rope_bwd(fd_case *c) {
    memcpy(c->in[0].grad, c->out[0].grad, (size_t)c->in[0].n * 4);
    tk_rope_backward(c->in[0].grad, c->pos, c->T, c->H, c->D, &c->rope);
    return TK_OK;
}
static void case_rope(fd_case *c, int interleaved, tk_rope_scaling sc) {
    c->T = 5; c->H = 3; c->D = 8;
    tk_model_config cfg = {.head_dim = (int32_t)c->D, .rope_theta = 10000.0f, .rope_interleaved = interleaved,
                           .rope_scaling = sc, .rope_factor = 8.0f, .rope_low_freq_factor = 1.0f,
                           .rope_high_freq_factor = 4.0f, .rope_orig_max_seq = 64};
    CHECK_OK(tk_rope_init(&c->rope, &cfg, 32));
    c->pos = ivec(c->T);
    int32_t pos[] = {0, 1, 17, 31, 40}; /* 40: past the table, computed on the fly */
    memcpy(c->pos, pos, sizeof pos);
    add_in(c, "x", c->T * c->H * c->D, 1, false);
    add_out(c, "out", c->T * c->H * c->D);
    c->fwd = rope_fwd; c->bwd = rope_bwd;
}
static void case_rope_il(fd_case *c) { case_rope(c, 1, TK_ROPE_SCALING_NONE); }
static void case_rope_halves(fd_case *c) { case_rope(c, 0, TK_ROPE_SCALING_NONE); }
static void case_rope_llama3(fd_case *c) { case_rope(c, 0, TK_ROPE_SCALING_LLAMA3); }
static void case_rope_linear(fd_case *c) { case_rope(c, 1, TK_ROPE_SCALING_LINEAR); }

/* ------------------------------------------------------------------ attention */
static tk_status att_fwd(fd_case *c) {
    return tk_attention_forward(c->out[0].data, c->aux, c->in[0].data, c->in[1].data, c->in[2].data, &c->args);
}
static tk_status att_bwd(fd_case *c) {
    return tk_attention_backward(c->in[0].grad, c->in[1].grad, c->in[2].grad, c->out[0].grad, c->flag ? NULL : c->aux,
                                 c->in[0].data, c->in[1].data, c->in[2].data, &c->args);
}
/* kind: 0 causal GQA, 1 packed segments, 2 padding, 3 Tq < S with default positions, 4 = 1 with recompute in backward,
 * 5 long packed row (several query blocks) of random-length examples and a padded tail, MQA (KH = 1),
 * 6 and 7 = 3 with 1 and 2 query rows (the direct decode loops instead of sgemm) */
static void case_attention(fd_case *c, int kind) {
    c->H = 4; c->KH = kind == 5 ? 1 : 2; c->D = 8;
    c->S = kind == 5 ? 150 : 9; c->T = kind == 3 ? 3 : kind == 6 ? 1 : kind == 7 ? 2 : c->S;
    c->pos = ivec(c->T); c->pos_k = ivec(c->S);
    c->seg_q = ivec(c->T); c->seg_k = ivec(c->S);
    for (int64_t s = 0; s < c->S; s++) c->pos_k[s] = (int32_t)s;
    if (kind == 1 || kind == 4) { /* three examples packed in one row, positions restart */
        int32_t seg[] = {0, 0, 0, 0, 1, 1, 2, 2, 2}, pos[] = {0, 1, 2, 3, 0, 1, 0, 1, 2};
        memcpy(c->seg_k, seg, sizeof seg); memcpy(c->pos_k, pos, sizeof pos);
    }
    if (kind == 5) {
        int32_t seg = 0, p = 0;
        for (int64_t s = 0; s < c->S; s++) {
            if (s > 0 && tk_rng_uniform(&rng) < 0.03f) { seg++; p = 0; }
            c->seg_k[s] = s >= 140 ? -1 : seg;
            c->pos_k[s] = p++;
        }
    }
    if (kind == 2) { /* right padding */
        int32_t seg[] = {0, 0, 0, 0, 0, 0, -1, -1, -1};
        memcpy(c->seg_k, seg, sizeof seg);
    }
    if (kind == 3 || kind >= 6) {
        c->args = (tk_attn_args){.Tq = c->T, .S = c->S, .H = c->H, .KH = c->KH, .D = c->D, .scale = 1.0f / sqrtf((float)c->D)};
    } else {
        memcpy(c->pos, c->pos_k, (size_t)c->S * 4);
        memcpy(c->seg_q, c->seg_k, (size_t)c->S * 4);
        c->args = (tk_attn_args){.Tq = c->T, .S = c->S, .H = c->H, .KH = c->KH, .D = c->D, .pos_q = c->pos,
                                 .pos_k = c->pos_k, .seg_q = kind ? c->seg_q : NULL, .seg_k = kind ? c->seg_k : NULL,
                                 .scale = 1.0f / sqrtf((float)c->D)};
    }
    c->flag = kind == 4;
    add_in(c, "q", c->T * c->H * c->D, 1, false);
    add_in(c, "k", c->S * c->KH * c->D, 1, false);
    add_in(c, "v", c->S * c->KH * c->D, 1, false);
    add_out(c, "out", c->T * c->H * c->D);
    if (kind == 2 || kind == 5) for (int64_t t = kind == 2 ? 6 : 140; t < c->T; t++) /* padded rows carry no loss */
        for (int64_t i = 0; i < c->H * c->D; i++) c->out[0].grad[t * c->H * c->D + i] = 0;
    c->aux = zerov(c->H * c->T * c->S);
    c->fwd = att_fwd; c->bwd = att_bwd;
}
/* Attention with a prefix (tk_attn_args.P = 3 extra keys/values, inputs 3 and 4, whose gradients accumulate).
 * kind: 0 packed segments + right padding + a sliding window (probabilities kept), 1 = 0 recomputed in the
 * backward, 2 / 3 one / two query rows over default positions (the decode loops), 4 a long packed row (several
 * query blocks, sgemm) with MQA, a window and a padded tail. */
static tk_status attp_fwd(fd_case *c) {
    c->args.pk = c->in[3].data;
    c->args.pv = c->in[4].data;
    return att_fwd(c);
}
static tk_status attp_bwd(fd_case *c) {
    c->args.pk = c->in[3].data;
    c->args.pv = c->in[4].data;
    c->args.dpk = c->in[3].grad;
    c->args.dpv = c->in[4].grad;
    return att_bwd(c);
}
static void case_attention_prefix(fd_case *c, int kind) {
    int64_t NP = 3;
    c->H = 4; c->KH = kind == 4 ? 1 : 2; c->D = 8;
    c->S = kind == 4 ? 150 : 10; c->T = kind == 2 ? 1 : kind == 3 ? 2 : c->S;
    c->pos = ivec(c->T); c->pos_k = ivec(c->S);
    c->seg_q = ivec(c->T); c->seg_k = ivec(c->S);
    float scale = 1.0f / sqrtf((float)c->D);
    if (kind == 2 || kind == 3) {
        c->args = (tk_attn_args){.Tq = c->T, .S = c->S, .H = c->H, .KH = c->KH, .D = c->D, .scale = scale, .P = NP};
    } else {
        if (kind == 4) {
            int32_t seg = 0, p = 0;
            for (int64_t s = 0; s < c->S; s++) {
                if (s > 0 && tk_rng_uniform(&rng) < 0.03f) { seg++; p = 0; }
                c->seg_k[s] = s >= 140 ? -1 : seg;
                c->pos_k[s] = p++;
            }
        } else { /* two packed examples, then padding */
            int32_t seg[] = {0, 0, 0, 0, 0, 1, 1, 1, -1, -1}, pos[] = {0, 1, 2, 3, 4, 0, 1, 2, 0, 0};
            memcpy(c->seg_k, seg, sizeof seg); memcpy(c->pos_k, pos, sizeof pos);
        }
        memcpy(c->pos, c->pos_k, (size_t)c->S * 4);
        memcpy(c->seg_q, c->seg_k, (size_t)c->S * 4);
        c->args = (tk_attn_args){.Tq = c->T, .S = c->S, .H = c->H, .KH = c->KH, .D = c->D, .pos_q = c->pos,
                                 .pos_k = c->pos_k, .seg_q = c->seg_q, .seg_k = c->seg_k, .scale = scale,
                                 .window = kind == 4 ? 20 : 3, .P = NP};
    }
    c->flag = kind == 1;
    add_in(c, "q", c->T * c->H * c->D, 1, false);
    add_in(c, "k", c->S * c->KH * c->D, 1, false);
    add_in(c, "v", c->S * c->KH * c->D, 1, false);
    add_in(c, "pk", NP * c->KH * c->D, 1, true);
    add_in(c, "pv", NP * c->KH * c->D, 1, true);
    add_out(c, "out", c->T * c->H * c->D);
    for (int64_t t = 0; t < c->T; t++) /* padded rows carry no loss */
        if (c->args.seg_q && c->seg_q[t] < 0)
            for (int64_t i = 0; i < c->H * c->D; i++) c->out[0].grad[t * c->H * c->D + i] = 0;
    c->aux = zerov(c->H * c->T * (c->S + NP));
    c->fwd = attp_fwd; c->bwd = attp_bwd;
}
static void case_attp_packed(fd_case *c) { case_attention_prefix(c, 0); }
static void case_attp_recompute(fd_case *c) { case_attention_prefix(c, 1); }
static void case_attp_decode1(fd_case *c) { case_attention_prefix(c, 2); }
static void case_attp_decode2(fd_case *c) { case_attention_prefix(c, 3); }
static void case_attp_long(fd_case *c) { case_attention_prefix(c, 4); }

static void case_att_gqa(fd_case *c) { case_attention(c, 0); }
static void case_att_packed(fd_case *c) { case_attention(c, 1); }
static void case_att_padding(fd_case *c) { case_attention(c, 2); }
static void case_att_decode(fd_case *c) { case_attention(c, 3); }
static void case_att_decode1(fd_case *c) { case_attention(c, 6); }
static void case_att_recompute(fd_case *c) { case_attention(c, 4); }
static void case_att_long(fd_case *c) { case_attention(c, 5); }

/* ------------------------------------------------------------------ swiglu, geglu (flag) */
static tk_status glu_fwd(fd_case *c) {
    (c->flag ? tk_geglu_forward : tk_swiglu_forward)(c->out[0].data, c->in[0].data, c->in[1].data, c->in[0].n);
    return TK_OK;
}
static tk_status glu_bwd(fd_case *c) {
    (c->flag ? tk_geglu_backward : tk_swiglu_backward)(c->in[0].grad, c->in[1].grad, c->out[0].grad, c->in[0].data,
                                                       c->in[1].data, c->in[0].n);
    return TK_OK;
}
static void case_glu(fd_case *c, int geglu) {
    add_in(c, "gate", 60, 2, false);
    add_in(c, "up", 60, 1, false);
    add_out(c, "out", 60);
    c->flag = geglu;
    c->fwd = glu_fwd; c->bwd = glu_bwd;
}
static void case_swiglu(fd_case *c) { case_glu(c, 0); }
static void case_geglu(fd_case *c) { case_glu(c, 1); }

/* ------------------------------------------------------------------ linear */
static tk_status lin_fwd(fd_case *c) {
    if (!c->wq) c->wref.data = c->in[1].data;
    return tk_linear_forward(c->out[0].data, c->in[0].data, &c->wref, c->nin > 2 ? c->in[2].data : NULL, c->T);
}
static tk_status lin_bwd(fd_case *c) {
    return tk_linear_backward(c->in[0].grad, c->nin > 1 ? c->in[1].grad : NULL, c->nin > 2 ? c->in[2].grad : NULL,
                              c->out[0].grad, c->in[0].data, &c->wref, c->T);
}
static void case_linear_f32(fd_case *c) {
    c->T = 5; c->K = 12; c->N = 7;
    add_in(c, "x", c->T * c->K, 1, false);
    add_in(c, "W", c->N * c->K, 1, true);
    add_in(c, "b", c->N, 1, true);
    add_out(c, "y", c->T * c->N);
    c->wref = (tk_tensor_ref){.name = "W", .dtype = TK_F32, .n_dims = 2, .ne = {c->K, c->N, 1, 1}, .nbytes = (size_t)(c->N * c->K) * 4};
    c->fwd = lin_fwd; c->bwd = lin_bwd;
}
/* Frozen quantized weight: only dx (the QLoRA base path). T >= 8 and T < 8 both. */
static void case_linear_quant(fd_case *c, tk_dtype t, int64_t T) {
    c->T = T; c->K = 64; c->N = 9;
    add_in(c, "x", c->T * c->K, 1, false);
    add_out(c, "y", c->T * c->N);
    float *wf = randv(c->N * c->K, 0.5f);
    size_t nb;
    tk_dtype_nbytes(t, c->N * c->K, &nb);
    c->wq = malloc(nb);
    CHECK_OK(tk_quantize(t, wf, c->wq, c->N * c->K));
    free(wf);
    c->wref = (tk_tensor_ref){.name = "Wq", .dtype = t, .n_dims = 2, .ne = {c->K, c->N, 1, 1}, .data = c->wq, .nbytes = nb};
    c->fwd = lin_fwd; c->bwd = lin_bwd;
}
static tk_status linq_fwd_exact(fd_case *c) {
    return tk_matmul_ex(c->out[0].data, c->in[0].data, &c->wref, c->T, false, TK_MATMUL_EXACT);
}
static void case_linear_q4_1(fd_case *c) { case_linear_quant(c, TK_Q4_1, 9); }
static void case_linear_q8_0(fd_case *c) { case_linear_quant(c, TK_Q8_0, 10); }
static void case_linear_q4_0_small(fd_case *c) { case_linear_quant(c, TK_Q4_0, 3); c->fwd = linq_fwd_exact; }

/* ------------------------------------------------------------------ lm head + cross-entropy */
static tk_status xent_fwd(fd_case *c) {
    double ls, ws;
    if (!c->wq) c->wref.data = c->in[1].data;
    tk_lm_head head = {&c->wref, c->cap};
    tk_status st = tk_lmhead_xent(c->in[0].data, &head, c->target, c->wts, c->T, 1.0f, &ls, &ws, NULL, NULL);
    c->out[0].data[0] = (float)ls;
    c->fl = (float)ws;
    return st;
}
static tk_status xent_bwd(fd_case *c) {
    double ls, ws;
    tk_lm_head head = {&c->wref, c->cap};
    return tk_lmhead_xent(c->in[0].data, &head, c->target, c->wts, c->T, c->out[0].grad[0], &ls, &ws, c->in[0].grad,
                          c->nin > 1 ? c->in[1].grad : NULL);
}
static void case_xent(fd_case *c, tk_dtype t) {
    c->T = 11; c->C = 32; c->V = 23;
    c->target = ivec(c->T);
    c->wts = zerov(c->T);
    for (int64_t i = 0; i < c->T; i++) {
        c->target[i] = (int32_t)(tk_rng_u64(&rng) % (uint64_t)c->V);
        c->wts[i] = 0.5f + tk_rng_uniform(&rng);
    }
    c->target[2] = -1; c->target[7] = -1; /* ignored */
    c->wts[4] = 0;                         /* weight 0 */
    add_in(c, "h", c->T * c->C, 1, false);
    if (t == TK_F32) add_in(c, "W", c->V * c->C, 0.5f, true);
    else {
        float *wf = randv(c->V * c->C, 0.5f);
        size_t nb;
        tk_dtype_nbytes(t, c->V * c->C, &nb);
        c->wq = malloc(nb);
        CHECK_OK(tk_quantize(t, wf, c->wq, c->V * c->C));
        free(wf);
    }
    add_out(c, "loss", 1);
    c->wref = (tk_tensor_ref){.name = "Wout", .dtype = t, .n_dims = 2, .ne = {c->C, c->V, 1, 1}, .data = c->wq,
                              .nbytes = t == TK_F32 ? (size_t)(c->V * c->C) * 4 : 0};
    if (c->wq) tk_dtype_nbytes(t, c->V * c->C, &c->wref.nbytes);
    c->fwd = xent_fwd; c->bwd = xent_bwd;
}
static void case_xent_f32(fd_case *c) { case_xent(c, TK_F32); }
static void case_xent_q8_0(fd_case *c) { case_xent(c, TK_Q8_0); }
/* a soft-capped head (Gemma 2's final_logit_softcapping): logits of about 3 against a cap of 2 */
static void case_xent_softcap(fd_case *c) { case_xent(c, TK_F32); c->cap = 2.0f; }
/* Soft-capped scores (tk_attn_args.softcap = 1.5: scores of about unit size bend visibly) on each path:
 * sgemm, decode loops, prefix with a window, probabilities recomputed in the backward. */
static void case_attc_gqa(fd_case *c) { case_att_gqa(c); c->args.softcap = 1.5f; }
static void case_attc_decode1(fd_case *c) { case_att_decode1(c); c->args.softcap = 1.5f; }
static void case_attc_prefix(fd_case *c) { case_attention_prefix(c, 0); c->args.softcap = 1.5f; }
static void case_attc_prefix_recompute(fd_case *c) { case_attention_prefix(c, 1); c->args.softcap = 1.5f; }

/* ------------------------------------------------------------------ forward references */

/* RoPE tables against Hugging Face (tools/make_rope_fixture.py). */
static void check_rope_hf(void) {
    FILE *f = fopen("tests/fixtures/ops/rope_hf.txt", "r");
    CHECK(f != NULL, "tests/fixtures/ops/rope_hf.txt missing");
    if (!f) return;
    char line[65536], name[32];
    int ncases = 0;
    while (fgets(line, sizeof line, f)) {
        double theta, factor, lo, hi;
        int D, orig, npos;
        if (sscanf(line, "case %31s %lf %d %lf %lf %lf %d %d", name, &theta, &D, &factor, &lo, &hi, &orig, &npos) != 8) continue;
        tk_model_config cfg = {.head_dim = D, .rope_theta = (float)theta, .rope_interleaved = 0,
                               .rope_scaling = !strcmp(name, "llama3") ? TK_ROPE_SCALING_LLAMA3
                                               : !strcmp(name, "linear") ? TK_ROPE_SCALING_LINEAR : TK_ROPE_SCALING_NONE,
                               .rope_factor = (float)factor, .rope_low_freq_factor = (float)lo,
                               .rope_high_freq_factor = (float)hi, .rope_orig_max_seq = orig};
        tk_rope r;
        CHECK_OK(tk_rope_init(&r, &cfg, 8192));
        int half = D / 2;
        double worst = 0;
        float *x = malloc((size_t)D * half * sizeof(float));
        for (int k = 0; k < npos; k++) {
            if (!fgets(line, sizeof line, f)) break;
            char *p = line;
            int32_t pos = (int32_t)strtol(p, &p, 10);
            double ref[256];
            for (int i = 0; i < 2 * half && i < 256; i++) ref[i] = strtod(p, &p);
            /* rotate unit vectors e_i: out[i] = cos, out[i + half] = sin */
            memset(x, 0, (size_t)D * half * sizeof(float));
            for (int i = 0; i < half; i++) x[i * D + i] = 1.0f;
            int32_t *pv = malloc((size_t)half * sizeof(int32_t));
            for (int i = 0; i < half; i++) pv[i] = pos;
            tk_rope_forward(x, pv, half, 1, D, &r);
            free(pv);
            for (int i = 0; i < half; i++) {
                double angle = (double)pos * r.inv_freq[i];
                double tol = 2e-6 + 3e-7 * angle; /* one float ulp of the angle either way */
                worst = fmax(worst, fabs(x[i * D + i] - ref[i]) / tol);
                worst = fmax(worst, fabs(x[i * D + i + half] - ref[half + i]) / tol);
            }
        }
        free(x);
        printf("  rope vs HF %-8s worst error %.3g x tolerance\n", name, worst);
        CHECK(worst <= 1.0, "rope %s differs from transformers: %.3g x tolerance", name, worst);
        tk_rope_free(&r);
        ncases++;
    }
    fclose(f);
    CHECK(ncases == 3, "rope fixture has %d cases, expected 3", ncases);
}

/* Attention forward against a naive double-precision masked softmax (prefix: case_attention_prefix's kinds,
 * else case_attention's), scores soft-capped to cap * tanh(score / cap) when cap > 0. */
static double capped(double score, float cap) { return cap > 0 ? cap * tanh(score / cap) : score; }
static void check_attention_ref(int kind, bool prefix, float cap) {
    fd_case c = {0};
    if (prefix) case_attention_prefix(&c, kind);
    else case_attention(&c, kind);
    c.args.softcap = cap;
    CHECK_OK(c.fwd(&c));
    const tk_attn_args *a = &c.args;
    int64_t NP = a->P;
    int64_t G = a->H / a->KH;
    double worst = 0;
    for (int64_t t = 0; t < a->Tq; t++)
        for (int64_t h = 0; h < a->H; h++) {
            int32_t pq = a->pos_q ? a->pos_q[t] : (int32_t)(a->S - a->Tq + t), sq = a->seg_q ? a->seg_q[t] : 0;
            double sc[256], psc[8], mx = -1e300, sum = 0;
            for (int64_t j = 0; j < NP; j++) { /* prefix keys: seen by every non-padding query */
                double d = 0;
                for (int64_t i = 0; i < a->D; i++)
                    d += (double)c.in[0].data[(t * a->H + h) * a->D + i] * c.in[3].data[(j * a->KH + h / G) * a->D + i];
                psc[j] = sq >= 0 ? capped(d * a->scale, cap) : -1e300;
                if (sq >= 0 && psc[j] > mx) mx = psc[j];
            }
            for (int64_t s = 0; s < a->S; s++) {
                int32_t pk = a->pos_k ? a->pos_k[s] : (int32_t)s, sk = a->seg_k ? a->seg_k[s] : 0;
                bool ok = sq >= 0 && sk == sq && pk <= pq && (a->window <= 0 || pq - pk < a->window);
                double d = 0;
                for (int64_t i = 0; i < a->D; i++)
                    d += (double)c.in[0].data[(t * a->H + h) * a->D + i] * c.in[1].data[(s * a->KH + h / G) * a->D + i];
                sc[s] = ok ? capped(d * a->scale, cap) : -1e300;
                if (ok && sc[s] > mx) mx = sc[s];
            }
            for (int64_t s = 0; s < a->S; s++) { sc[s] = sc[s] <= -1e299 ? 0 : exp(sc[s] - mx); sum += sc[s]; }
            for (int64_t j = 0; j < NP; j++) { psc[j] = psc[j] <= -1e299 ? 0 : exp(psc[j] - mx); sum += psc[j]; }
            for (int64_t i = 0; i < a->D; i++) {
                double o = 0;
                for (int64_t s = 0; s < a->S; s++) o += sum > 0 ? sc[s] / sum * c.in[2].data[(s * a->KH + h / G) * a->D + i] : 0;
                for (int64_t j = 0; j < NP; j++) o += sum > 0 ? psc[j] / sum * c.in[4].data[(j * a->KH + h / G) * a->D + i] : 0;
                worst = fmax(worst, fabs(o - c.out[0].data[(t * a->H + h) * a->D + i]));
            }
        }
    CHECK(worst < 1e-5, "attention%s kind %d softcap %g forward differs from the naive reference by %g",
          prefix ? " with a prefix" : "", kind, (double)cap, worst);
    free_case(&c);
}

/* Loss of the chunked LM head against a naive double logsumexp. */
static void check_xent_ref(void) {
    fd_case c = {0};
    case_xent(&c, TK_F32);
    tk_lmhead_xent_chunk_rows(4);
    CHECK_OK(xent_fwd(&c));
    tk_lmhead_xent_chunk_rows(0);
    double ls = 0, ws = 0;
    for (int64_t t = 0; t < c.T; t++) {
        if (c.target[t] < 0 || c.wts[t] == 0) continue;
        double l[64], mx = -1e300, se = 0;
        for (int64_t v = 0; v < c.V; v++) {
            l[v] = 0;
            for (int64_t i = 0; i < c.C; i++) l[v] += (double)c.in[0].data[t * c.C + i] * c.in[1].data[v * c.C + i];
            mx = fmax(mx, l[v]);
        }
        for (int64_t v = 0; v < c.V; v++) se += exp(l[v] - mx);
        ls += c.wts[t] * (mx + log(se) - l[c.target[t]]);
        ws += c.wts[t];
    }
    CHECK_NEAR(c.out[0].data[0], ls, 1e-4 * fabs(ls) + 1e-5);
    CHECK_NEAR(c.fl, ws, 1e-6);
    int32_t bad = (int32_t)c.V;
    c.target[0] = bad;
    CHECK(xent_fwd(&c) == TK_ERR_RANGE, "target >= V must fail");
    free_case(&c);
}

/* rmsnorm forward vs double; embedding of a quantized table vs its dequantized rows. */
static void check_misc_forward(void) {
    int64_t T = 3, C = 64;
    float *x = randv(T * C, 2), *w = randv(C, 1), *y = zerov(T * C), *rstd = zerov(T);
    tk_rmsnorm_forward(y, rstd, x, w, T, C, 1e-5f);
    double worst = 0;
    for (int64_t t = 0; t < T; t++) {
        double ss = 0;
        for (int64_t i = 0; i < C; i++) ss += (double)x[t * C + i] * x[t * C + i];
        double r = 1 / sqrt(ss / C + 1e-5);
        for (int64_t i = 0; i < C; i++) worst = fmax(worst, fabs(x[t * C + i] * r * w[i] - y[t * C + i]));
    }
    CHECK(worst < 1e-5, "rmsnorm forward error %g", worst);
    tk_rmsnorm_forward(x, NULL, x, w, T, C, 1e-5f); /* in place */
    CHECK(!memcmp(x, y, (size_t)(T * C) * 4), "rmsnorm in place differs");
    free(x); free(w); free(y); free(rstd);

    tk_dtype types[] = {TK_Q8_0, TK_Q4_1, TK_F16, TK_BF16};
    for (int k = 0; k < 4; k++) {
        int64_t V = 10;
        float *tab = randv(V * C, 1);
        size_t nb;
        tk_dtype_nbytes(types[k], V * C, &nb);
        void *q = malloc(nb);
        CHECK_OK(tk_quantize(types[k], tab, q, V * C));
        float *deq = zerov(V * C), *out = zerov(4 * C);
        CHECK_OK(tk_dequantize(types[k], q, deq, V * C));
        tk_tensor_ref ref = {.name = "tok_embd", .dtype = types[k], .n_dims = 2, .ne = {C, V, 1, 1}, .data = q, .nbytes = nb};
        int32_t ids[4] = {9, 0, 4, 9};
        CHECK_OK(tk_embedding_forward(out, ids, 4, &ref));
        for (int i = 0; i < 4; i++)
            CHECK(!memcmp(out + i * C, deq + ids[i] * C, (size_t)C * 4), "embedding %s row %d differs", tk_dtype_name(types[k]), i);
        int32_t bad[1] = {10};
        CHECK(tk_embedding_forward(out, bad, 1, &ref) == TK_ERR_RANGE, "id == V must fail");
        CHECK(strstr(tk_last_error(), "10") != NULL, "message names the id: %s", tk_last_error());
        free(tab); free(q); free(deq); free(out);
    }
}

/* ------------------------------------------------------------------ registry */
static const struct { const char *name; void (*setup)(fd_case *); double tol; } k_cases[] = {
    {"embedding", case_embedding, 1e-3},
    {"rmsnorm", case_rmsnorm, 1e-3},
    {"rope interleaved", case_rope_il, 1e-3},
    {"rope halves", case_rope_halves, 1e-3},
    {"rope llama3 scaling", case_rope_llama3, 1e-3},
    {"rope linear scaling", case_rope_linear, 1e-3},
    {"attention gqa causal", case_att_gqa, 1e-3},
    {"attention packed", case_att_packed, 1e-3},
    {"attention padding", case_att_padding, 1e-3},
    {"attention Tq<S", case_att_decode, 1e-3},
    {"attention Tq=1", case_att_decode1, 1e-3},
    {"attention recompute", case_att_recompute, 1e-3},
    {"attention long packed MQA", case_att_long, 1e-3},
    {"attention prefix packed window", case_attp_packed, 1e-3},
    {"attention prefix recompute", case_attp_recompute, 1e-3},
    {"attention prefix Tq=1", case_attp_decode1, 1e-3},
    {"attention prefix Tq=2", case_attp_decode2, 1e-3},
    {"attention prefix long MQA", case_attp_long, 1e-3},
    {"attention softcap gqa", case_attc_gqa, 1e-3},
    {"attention softcap Tq=1", case_attc_decode1, 1e-3},
    {"attention softcap prefix window", case_attc_prefix, 1e-3},
    {"attention softcap prefix recompute", case_attc_prefix_recompute, 1e-3},
    {"swiglu", case_swiglu, 1e-3},
    {"geglu", case_geglu, 1e-3},
    {"linear f32 +bias", case_linear_f32, 1e-3},
    {"linear q4_1 dx", case_linear_q4_1, 1e-3},
    {"linear q8_0 dx", case_linear_q8_0, 1e-3},
    {"linear q4_0 dx T<8 exact", case_linear_q4_0_small, 1e-3},
    {"lmhead+xent f32", case_xent_f32, 1e-3},
    {"lmhead+xent q8_0 head", case_xent_q8_0, 1e-3},
    {"lmhead+xent softcap", case_xent_softcap, 1e-3},
};

/* Every check, on the active backend. */
static void run_all(void) {
    tk_rng_seed(&rng, 20240601);
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
        fd_case c = {.name = k_cases[i].name, .eps = 1e-2, .tol = k_cases[i].tol};
        k_cases[i].setup(&c);
        if (!strncmp(c.name, "lmhead", 6)) tk_lmhead_xent_chunk_rows(3); /* several chunks, a ragged last one */
        run_case(&c);
        tk_lmhead_xent_chunk_rows(0);
        free_case(&c);
    }
    check_rope_hf();
    for (int kind = 0; kind <= 7; kind++) check_attention_ref(kind, false, 0.0f);
    for (int kind = 0; kind <= 4; kind++) check_attention_ref(kind, true, 0.0f);
    for (int kind = 0; kind <= 4; kind++) check_attention_ref(kind, true, 1.5f); /* soft-capped (with a prefix) */
    check_attention_ref(5, false, 1.5f);
    check_xent_ref();
    check_misc_forward();
}

int main(void) {
    tk_test_each_backend(run_all); /* the op tests run against every backend this build has */
    return tk_test_done("test_ops");
}
