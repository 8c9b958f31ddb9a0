/* A task's stored JSON -> struct jr_task_setup: the one C decoder of the
 * spec, used when a task starts from what the store holds. */
#include "spec.h"

#include <stdlib.h>
#include <string.h>

#include "exec/jv.h"

/* What jr_spec_decode allocates, freed as one. */
struct owned {
    struct jr_jv *tree;
    const char **domains;
    const char **entrypoint;
    struct jr_spec_input *inputs;
};

static int kind_of(const struct jr_jv *v, int type)
{
    if (!v || v->type == JR_JV_NULL)
        return JR_SPEC_ABSENT;
    return v->type == type ? JR_SPEC_OK : JR_SPEC_BAD;
}

static size_t count(const struct jr_jv *arr)
{
    size_t n = 0;

    for (const struct jr_jv *v = arr->child; v; v = v->next)
        n++;
    return n;
}

static void read_input(const struct jr_jv *v, struct jr_spec_input *in)
{
    const struct jr_jv *d, *mb;

    memset(in, 0, sizeof *in);
    if (!v || v->type != JR_JV_OBJ)
        return;
    in->is_object = 1;
    in->source = jr_jv_str(v, "source");
    in->target = jr_jv_str(v, "target");
    in->path = jr_jv_str(v, "path");
    in->task = jr_jv_str(v, "task");
    in->file = jr_jv_str(v, "file");
    in->url = jr_jv_str(v, "url");
    d = jr_jv_get(v, "data");
    if (!d)
        d = jr_jv_get(v, "content");
    if (d && d->type == JR_JV_STR) {
        in->data = d->str;
        in->data_len = d->len;
    }
    mb = jr_jv_get(v, "max_bytes");
    in->max_bytes_kind = kind_of(mb, JR_JV_NUM);
    if (in->max_bytes_kind == JR_SPEC_OK)
        in->max_bytes = mb->num;
}

int jr_spec_decode(const char *json, struct jr_task_setup *out)
{
    struct owned *o = calloc(1, sizeof *o);
    const struct jr_jv *root, *v, *net;
    size_t i;

    memset(out, 0, sizeof *out);
    if (!o)
        return -1;
    out->owned = o;
    o->tree = jr_jv_parse(json ? json : "{}", json ? strlen(json) : 2);
    if (!o->tree || o->tree->type != JR_JV_OBJ)
        return -1;
    root = o->tree;
    v = jr_jv_get(root, "image");
    out->image_kind = kind_of(v, JR_JV_STR);
    out->image = out->image_kind == JR_SPEC_OK ? v->str : NULL;
    net = jr_jv_get(root, "network");
    out->network_kind = kind_of(net, net && net->type == JR_JV_OBJ ? JR_JV_OBJ : JR_JV_STR);
    if (out->network_kind == JR_SPEC_OK && net->type == JR_JV_STR)
        out->network_mode = net->str;
    if (out->network_kind == JR_SPEC_OK && net->type == JR_JV_OBJ) {
        out->network_mode = jr_jv_str(net, "mode");
        v = jr_jv_get(net, "domains");
        out->domains_kind = kind_of(v, JR_JV_ARR);
        if (out->domains_kind == JR_SPEC_OK && (out->ndomains = count(v)) > 0) {
            if (!(o->domains = calloc(out->ndomains, sizeof *o->domains)))
                return -1;
            i = 0;
            for (const struct jr_jv *d = v->child; d; d = d->next, i++)
                o->domains[i] = d->type == JR_JV_STR ? d->str : NULL;
            out->domains = o->domains;
        }
    }
    v = jr_jv_get(root, "entrypoint");
    out->entrypoint_kind = kind_of(v, JR_JV_ARR);
    if (out->entrypoint_kind == JR_SPEC_OK && (out->nentrypoint = count(v)) > 0) {
        if (!(o->entrypoint = calloc(out->nentrypoint, sizeof *o->entrypoint)))
            return -1;
        i = 0;
        for (const struct jr_jv *d = v->child; d; d = d->next, i++)
            o->entrypoint[i] = d->type == JR_JV_STR ? d->str : NULL;
        out->entrypoint = o->entrypoint;
    }
    v = jr_jv_get(root, "inputs");
    out->inputs_kind = kind_of(v, JR_JV_ARR);
    if (out->inputs_kind == JR_SPEC_OK && (out->ninputs = count(v)) > 0) {
        if (!(o->inputs = calloc(out->ninputs, sizeof *o->inputs)))
            return -1;
        i = 0;
        for (const struct jr_jv *in = v->child; in; in = in->next, i++)
            read_input(in, &o->inputs[i]);
        out->inputs = o->inputs;
    }
    return 0;
}

void jr_spec_free(struct jr_task_setup *s)
{
    struct owned *o = s->owned;

    if (!o)
        return;
    jr_jv_free(o->tree);
    free(o->domains);
    free(o->entrypoint);
    free(o->inputs);
    free(o);
    memset(s, 0, sizeof *s);
}
