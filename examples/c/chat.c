/*
 * chat: edgeseek from C.
 *
 *   chat [-n MAX_TOKENS] MODEL.gguf "QUESTION"   answers one question and exits
 *   chat [-n MAX_TOKENS] MODEL.gguf              a conversation: one line per turn,
 *                                                Ctrl-D ends it
 *
 * Greedy decoding (temperature 0), at most MAX_TOKENS (default 256, a whole number from 1
 * up) tokens an answer; a reasoning span is shown between <think> and </think>.
 * Build: examples/c/Makefile (`make` for chat, `make static` for chat-static), or the
 * lines in docs/c-api.md.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeseek.h"

/* Streams each piece as it comes; text is not NUL-terminated, so print len bytes. */
static int on_event(EsEventKind kind, const char *text, size_t len, void *user_data) {
    (void)user_data;
    switch (kind) {
    case ES_EVENT_TEXT:
        fwrite(text, 1, len, stdout);
        break;
    case ES_EVENT_THINK_START:
        fputs("<think>", stdout);
        break;
    case ES_EVENT_THINK_END:
        fputs("</think>", stdout);
        break;
    case ES_EVENT_DONE:
        /* text is the stop reason: "end_of_generation", "max_tokens", ... */
        if (len != strlen("end_of_generation") || memcmp(text, "end_of_generation", len) != 0) {
            printf(" [%.*s]", (int)len, text);
        }
        putchar('\n');
        break;
    }
    fflush(stdout);
    return 0; /* non-zero would stop the answer */
}

/* MAX_TOKENS as a whole number from 1 to INT32_MAX; 0 when `text` is anything else
 * ("abc", "12x", "-3", "0", ""). */
static uint32_t parse_max_tokens(const char *text) {
    char *end = NULL;
    long value;
    errno = 0;
    value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value <= 0 || value > INT32_MAX) {
        return 0;
    }
    return (uint32_t)value;
}

/* One turn; returns 0 on success. */
static int ask(EsSession *session, const char *question, uint32_t max_tokens) {
    EsGenerateOptions opts;
    char *error = NULL;
    es_generate_options_default(&opts);
    opts.temperature = 0.0f;
    opts.max_tokens = max_tokens;
    if (es_session_chat(session, question, &opts, on_event, NULL, &error) != ES_OK) {
        fprintf(stderr, "chat: %s\n", error);
        es_string_free(error);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    EsModel *model;
    EsSession *session;
    char *error = NULL;
    int status = 0;
    uint32_t max_tokens = 256;
    const char *program = argv[0];

    if (argc >= 2 && strcmp(argv[1], "-n") == 0) {
        max_tokens = argc >= 3 ? parse_max_tokens(argv[2]) : 0;
        if (max_tokens == 0) {
            fprintf(stderr, "%s: -n wants a whole number of tokens, at least 1 (not '%s')\n",
                    program, argc >= 3 ? argv[2] : "");
            return 2;
        }
        argc -= 2;
        argv += 2;
    }
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s [-n MAX_TOKENS] MODEL.gguf [QUESTION]\n", program);
        return 2;
    }
    model = es_model_load(argv[1], NULL, &error);
    if (model == NULL) {
        fprintf(stderr, "chat: %s\n", error);
        es_string_free(error);
        return 1;
    }
    session = es_session_new(model, &error);
    /* The session holds its own reference: the model can be released now. */
    es_model_free(model);
    if (session == NULL) {
        fprintf(stderr, "chat: %s\n", error);
        es_string_free(error);
        return 1;
    }

    if (argc == 3) {
        status = ask(session, argv[2], max_tokens);
    } else {
        char line[4096];
        while (fputs("> ", stdout), fflush(stdout), fgets(line, sizeof line, stdin) != NULL) {
            line[strcspn(line, "\r\n")] = '\0';
            if (line[0] == '\0') {
                continue;
            }
            if (ask(session, line, max_tokens) != 0) {
                status = 1;
            }
        }
        putchar('\n');
    }
    es_session_free(session);
    return status;
}
