/* calculate_output formulas of multi graders: a small recursive-descent parser that compiles
 * the expression into a postfix program (no eval, no code), and its evaluator. */
#include "eval/grader_internal.h"
#include <ctype.h>
#include <math.h>

enum { OP_NUM, OP_VAR, OP_NEG, OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_POW, OP_FN };
enum { FN_MIN, FN_MAX, FN_ABS, FN_FLOOR, FN_CEIL, FN_EXP, FN_SQRT, FN_LOG };
static const struct { const char *name; int min_args, max_args; } fns[] = {
    [FN_MIN] = {"min", 1, 64}, [FN_MAX] = {"max", 1, 64}, [FN_ABS] = {"abs", 1, 1},  [FN_FLOOR] = {"floor", 1, 1},
    [FN_CEIL] = {"ceil", 1, 1}, [FN_EXP] = {"exp", 1, 1},  [FN_SQRT] = {"sqrt", 1, 1}, [FN_LOG] = {"log", 1, 1},
};
enum { MAX_DEPTH = 64 };

typedef struct { int op, arg, nargs; double num; } tk_fop;

struct tk_formula {
    tk_fop *ops;
    int n, cap;
    int max_stack;
};

typedef struct {
    const char *src, *s, *where;
    const char *const *names;
    int n_names, depth, stack;
    tk_formula *f;
} parser;

static tk_status perr(parser *p, const char *what) {
    return tk_fail(TK_ERR_FORMAT, "%scalculate_output \"%s\": %s at column %d", p->where, p->src, what,
                   (int)(p->s - p->src) + 1);
}

static tk_status emit(parser *p, int op, int arg, int nargs, double num) {
    tk_formula *f = p->f;
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 16;
        tk_fop *n = tk_realloc(f->ops, (size_t)cap * sizeof *n);
        if (!n) return TK_ERR_NOMEM;
        f->ops = n;
        f->cap = cap;
    }
    f->ops[f->n++] = (tk_fop){op, arg, nargs, num};
    /* stack effect: operands push one, unary ops keep the height, binary ops pop one, fn pops nargs-1 */
    if (op == OP_NUM || op == OP_VAR) p->stack++;
    else if (op == OP_FN) p->stack -= nargs - 1;
    else if (op != OP_NEG) p->stack--;
    if (p->stack > f->max_stack) f->max_stack = p->stack;
    return TK_OK;
}

static void skip_ws(parser *p) { while (isspace((unsigned char)*p->s)) p->s++; }

static tk_status parse_expr(parser *p);
static tk_status parse_unary(parser *p);

static tk_status parse_primary(parser *p) {
    skip_ws(p);
    const char *s = p->s;
    if (*s == '(') {
        p->s++;
        tk_status st = parse_expr(p);
        if (st) return st;
        skip_ws(p);
        if (*p->s != ')') return perr(p, "expected ')'");
        p->s++;
        return TK_OK;
    }
    if (isdigit((unsigned char)*s) || (*s == '.' && isdigit((unsigned char)s[1]))) {
        char *end;
        double v = strtod(s, &end);
        if (end == s || !isfinite(v)) return perr(p, "bad number");
        p->s = end;
        return emit(p, OP_NUM, 0, 0, v);
    }
    if (isalpha((unsigned char)*s) || *s == '_') {
        const char *b = s;
        while (isalnum((unsigned char)*s) || *s == '_') s++;
        size_t len = (size_t)(s - b);
        p->s = s;
        skip_ws(p);
        if (*p->s == '(') {
            int fn = -1;
            for (int i = 0; i < (int)(sizeof fns / sizeof fns[0]); i++)
                if (strlen(fns[i].name) == len && !strncmp(fns[i].name, b, len)) fn = i;
            if (fn < 0) { p->s = b; return perr(p, "unknown function (use min, max, abs, floor, ceil, exp, sqrt, log)"); }
            p->s++;
            int nargs = 0;
            for (;;) {
                tk_status st = parse_expr(p);
                if (st) return st;
                nargs++;
                skip_ws(p);
                if (*p->s == ',') { p->s++; continue; }
                if (*p->s == ')') { p->s++; break; }
                return perr(p, "expected ',' or ')' in the function's arguments");
            }
            if (nargs < fns[fn].min_args || nargs > fns[fn].max_args) { p->s = b; return perr(p, "wrong number of arguments"); }
            return emit(p, OP_FN, fn, nargs, 0);
        }
        for (int i = 0; i < p->n_names; i++)
            if (strlen(p->names[i]) == len && !strncmp(p->names[i], b, len)) return emit(p, OP_VAR, i, 0, 0);
        p->s = b;
        return tk_fail(TK_ERR_FORMAT, "%scalculate_output \"%s\": '%.*s' at column %d is not one of its graders", p->where,
                       p->src, (int)len, b, (int)(b - p->src) + 1);
    }
    return perr(p, *s ? "expected a number, a grader name or '('" : "unexpected end");
}

static tk_status parse_power(parser *p) {
    tk_status st = parse_primary(p);
    if (st) return st;
    skip_ws(p);
    if (*p->s != '^') return TK_OK;
    p->s++;
    if (++p->depth > MAX_DEPTH) return perr(p, "nested too deeply");
    st = parse_unary(p); /* right-associative: 2^3^2 = 2^(3^2) */
    p->depth--;
    if (st) return st;
    return emit(p, OP_POW, 0, 0, 0);
}

static tk_status parse_unary(parser *p) {
    skip_ws(p);
    if (*p->s != '-' && *p->s != '+') return parse_power(p);
    bool neg = *p->s++ == '-';
    if (++p->depth > MAX_DEPTH) return perr(p, "nested too deeply");
    tk_status st = parse_unary(p);
    p->depth--;
    if (st) return st;
    return neg ? emit(p, OP_NEG, 0, 0, 0) : TK_OK;
}

/* A left-associative chain "x op y op z" of one precedence level: op1/op2 emit code1/code2. */
static tk_status parse_chain(parser *p, tk_status (*operand)(parser *), char op1, int code1, char op2, int code2) {
    tk_status st = operand(p);
    while (!st) {
        skip_ws(p);
        char c = *p->s;
        if (c != op1 && c != op2) break;
        p->s++;
        if (!(st = operand(p))) st = emit(p, c == op1 ? code1 : code2, 0, 0, 0);
    }
    return st;
}

static tk_status parse_term(parser *p) { return parse_chain(p, parse_unary, '*', OP_MUL, '/', OP_DIV); }

static tk_status parse_expr(parser *p) {
    if (++p->depth > MAX_DEPTH) return perr(p, "nested too deeply");
    tk_status st = parse_chain(p, parse_term, '+', OP_ADD, '-', OP_SUB);
    p->depth--;
    return st;
}

tk_status tk_formula_parse(const char *expr, const char *const *names, int n, const char *where, tk_formula **out) {
    *out = NULL;
    tk_formula *f = tk_calloc(1, sizeof *f);
    if (!f) return TK_ERR_NOMEM;
    parser p = {.src = expr, .s = expr, .where = where, .names = names, .n_names = n, .f = f};
    tk_status st = parse_expr(&p);
    if (!st) {
        skip_ws(&p);
        if (*p.s) st = perr(&p, "unexpected text after the expression");
    }
    if (st) { tk_formula_free(f); return st; }
    *out = f;
    return TK_OK;
}

void tk_formula_free(tk_formula *f) {
    if (!f) return;
    free(f->ops);
    free(f);
}

static double apply_fn(int fn, const double *a, int n) {
    switch (fn) {
    case FN_MIN: case FN_MAX: {
        double r = a[0];
        for (int i = 1; i < n; i++) r = fn == FN_MIN ? fmin(r, a[i]) : fmax(r, a[i]);
        return r;
    }
    case FN_ABS: return fabs(a[0]);
    case FN_FLOOR: return floor(a[0]);
    case FN_CEIL: return ceil(a[0]);
    case FN_EXP: return exp(a[0]);
    case FN_SQRT: return sqrt(a[0]);
    default: return log(a[0]);
    }
}

double tk_formula_eval(const tk_formula *f, const double *vals) {
    double small[32];
    double *st = f->max_stack <= 32 ? small : malloc((size_t)f->max_stack * sizeof *st);
    if (!st) return NAN;
    int sp = 0;
    for (int i = 0; i < f->n; i++) {
        const tk_fop *o = &f->ops[i];
        switch (o->op) {
        case OP_NUM: st[sp++] = o->num; break;
        case OP_VAR: st[sp++] = vals[o->arg]; break;
        case OP_NEG: st[sp - 1] = -st[sp - 1]; break;
        case OP_FN: sp -= o->nargs; st[sp] = apply_fn(o->arg, st + sp, o->nargs); sp++; break;
        default: {
            double b = st[--sp], a = st[sp - 1];
            st[sp - 1] = o->op == OP_ADD ? a + b : o->op == OP_SUB ? a - b : o->op == OP_MUL ? a * b
                       : o->op == OP_DIV ? a / b : pow(a, b);
        }
        }
    }
    double r = sp > 0 ? st[sp - 1] : NAN;
    if (st != small) free(st);
    return r;
}
