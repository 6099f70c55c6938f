/*
 * Uses every declaration of include/edgeseek.h: each function is called (or its address
 * taken), each struct field and enum constant named. Compiled by tests/header.rs with
 * -std=c99 -Wall -Wextra -Werror -pedantic and linked against libedgeseek (an undeclared
 * or unexported function fails the build); the test also checks that every identifier the
 * header declares appears here. Run without a model: it exercises the argument checks.
 */
#include <stdio.h>
#include <string.h>

#include "edgeseek.h"

static int failures = 0;

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "FAILED: %s\n", what);
        failures++;
    }
}

static int on_event(EsEventKind kind, const char *text, size_t len, void *user_data) {
    (void)text;
    (void)len;
    (void)user_data;
    switch (kind) {
    case ES_EVENT_TEXT:
    case ES_EVENT_THINK_START:
    case ES_EVENT_THINK_END:
    case ES_EVENT_DONE:
        break;
    }
    return 0;
}

/* The message's text, freed; "" when there is none. */
static const char *message(char **error) {
    static char copy[512];
    copy[0] = '\0';
    if (*error != NULL) {
        strncpy(copy, *error, sizeof copy - 1);
        copy[sizeof copy - 1] = '\0';
        es_string_free(*error);
        *error = NULL;
    }
    return copy;
}

int main(void) {
    EsLoadOptions load;
    EsGenerateOptions gen;
    EsSummary summary;
    const EsModelInfo *info;
    EsEventCallback cb = on_event;
    EsModel *model = NULL;
    EsSession *session = NULL;
    const char *stops[1] = {"\n\n"};
    char *error = NULL;
    uint32_t ids[4];
    size_t n_tokens = 0;
    int statuses[] = {ES_OK, ES_ERR_INVALID_ARGUMENT, ES_ERR_BUSY, ES_ERR_MODEL,
                      ES_ERR_GENERATION, ES_ERR_BUFFER_TOO_SMALL, ES_ERR_INTERNAL};
    int stop_reasons[] = {ES_STOP_END_OF_GENERATION, ES_STOP_STOP_STRING, ES_STOP_MAX_TOKENS,
                          ES_STOP_CANCELLED, ES_STOP_CONTEXT_FULL};
    EsStatus status_type = ES_OK;
    EsStopReason stop_type = ES_STOP_CANCELLED;
    EsExpertCache cache_type = ES_EXPERT_CACHE_AUTO;
    EsEviction eviction_type = ES_EVICTION_LRU;
    size_t i;

    check(strlen(es_version()) > 0, "es_version");
    for (i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        check(strncmp(es_status_name(statuses[i]), "ES_", 3) == 0, "es_status_name");
    }
    check(strcmp(es_status_name(1), "unknown status") == 0, "es_status_name(1)");
    (void)stop_reasons;
    (void)status_type;
    (void)stop_type;
    (void)cache_type;
    (void)eviction_type;

    es_load_options_default(&load);
    check(load.struct_size == sizeof load, "EsLoadOptions.struct_size");
    check(load.n_ctx == 0 && load.max_batch == 64, "EsLoadOptions defaults");
    check(load.expert_cache == ES_EXPERT_CACHE_AUTO && load.expert_cache_bytes == 0,
          "expert cache default");
    check(load.max_resident_bytes == 0 && load.adapter == NULL, "budget, adapter defaults");
    check(load.eviction == ES_EVICTION_LRU, "eviction default");
    check(!load.no_f16 && !load.downlevel && !load.f32_activations && !load.prefetch,
          "flag defaults");
    load.expert_cache = ES_EXPERT_CACHE_MIN;
    load.expert_cache = ES_EXPERT_CACHE_BYTES;
    load.eviction = ES_EVICTION_FREQUENCY;

    es_generate_options_default(&gen);
    check(gen.struct_size == sizeof gen && gen.max_tokens == 512, "EsGenerateOptions defaults");
    check(gen.temperature > 0.59f && gen.temperature < 0.61f && gen.top_k == 0, "sampler defaults");
    check(gen.top_p > 0.94f && gen.min_p == 0.0f && gen.repeat_penalty == 1.0f, "sampler defaults");
    check(gen.repeat_last_n == 64 && gen.seed == 0, "penalty window, seed");
    check(gen.stop == NULL && gen.n_stop == 0, "no stop strings");
    gen.stop = stops;
    gen.n_stop = 1;

    /* Errors without a model: NULL arguments and a missing file. */
    check(es_model_load(NULL, &load, &error) == NULL, "es_model_load(NULL)");
    check(strcmp(message(&error), "path is NULL") == 0, "its message");
    check(es_model_load("/nonexistent/model.gguf", NULL, &error) == NULL, "missing file");
    check(strstr(message(&error), "/nonexistent/model.gguf") != NULL, "names the file");
    check(es_session_new(model, &error) == NULL, "es_session_new(NULL)");
    check(strcmp(message(&error), "model is NULL") == 0, "its message");
    check(es_session_chat(session, "hi", &gen, cb, NULL, &error) == ES_ERR_INVALID_ARGUMENT,
          "es_session_chat(NULL)");
    check(strcmp(message(&error), "session is NULL") == 0, "its message");
    check(es_session_set_system(NULL, "be brief", NULL) == ES_ERR_INVALID_ARGUMENT,
          "es_session_set_system(NULL)");
    check(es_session_reset(NULL, NULL) == ES_ERR_INVALID_ARGUMENT, "es_session_reset(NULL)");
    summary.struct_size = sizeof summary;
    check(es_session_last_summary(NULL, &summary, NULL) == ES_ERR_INVALID_ARGUMENT,
          "es_session_last_summary(NULL)");
    check(es_tokenize(NULL, "hi", 1, ids, 4, &n_tokens, NULL) == ES_ERR_INVALID_ARGUMENT,
          "es_tokenize(NULL)");
    info = es_model_info(NULL);
    check(info == NULL, "es_model_info(NULL)");
    if (info != NULL) {
        /* Never runs; names every field of EsModelInfo. */
        printf("%u %u %s %s %s %d %u %u %u %u %u %u %u %u\n", (unsigned)info->struct_size,
               (unsigned)info->n_ctx, info->arch, info->chat_template, info->adapter,
               info->opens_think, (unsigned)info->n_ctx_train, (unsigned)info->n_vocab,
               (unsigned)info->n_layer, (unsigned)info->n_embd, (unsigned)info->n_head,
               (unsigned)info->n_head_kv, (unsigned)info->n_expert,
               (unsigned)info->n_expert_used);
        printf("%llu %llu %llu %llu %llu %llu\n", (unsigned long long)info->gpu_weights_bytes,
               (unsigned long long)info->gpu_expert_cache_bytes,
               (unsigned long long)info->gpu_kv_bytes,
               (unsigned long long)info->gpu_scratch_bytes,
               (unsigned long long)info->gpu_stream_ring_bytes,
               (unsigned long long)info->dense_streamed_bytes);
        printf("%d %llu %llu %llu %f %f\n", (int)summary.stop,
               (unsigned long long)summary.prompt_tokens,
               (unsigned long long)summary.reused_tokens,
               (unsigned long long)summary.generated_tokens, summary.prefill_tok_s,
               summary.decode_tok_s);
    }

    /* Freeing NULL does nothing. */
    es_session_cancel(NULL);
    es_session_free(NULL);
    es_model_free(NULL);
    es_string_free(NULL);

    if (failures == 0) {
        puts("every declaration: ok");
    }
    return failures == 0 ? 0 : 1;
}
