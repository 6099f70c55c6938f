/*
 * edgeseek.h: the C interface of edgeseek (distilled DeepSeek-R1 and DeepSeek MoE models on
 * any wgpu GPU). Link with libedgeseek.so / libedgeseek.dylib or libedgeseek.a, built by
 * `cargo build --release -p edgeseek-capi`; docs/c-api.md has the link lines.
 *
 * C99. Hand-written; capi/tests/header.rs fails when it and the library's exports drift
 * apart, and capi/src/layout_tests.rs when a struct's layout or a constant's value does.
 *
 * Conventions of every function:
 *  - Strings in are NUL-terminated UTF-8 (a path may be any bytes on Unix). NULL where a
 *    string or handle is required, text that is not UTF-8, or an option out of range is
 *    ES_ERR_INVALID_ARGUMENT, never a crash; a fault inside the library is
 *    ES_ERR_INTERNAL, never an abort of the host.
 *  - `char **error`: when not NULL, *error receives NULL on success and, on failure, a
 *    message allocated by the library that names the problem (and the file, where there is
 *    one). Free it with es_string_free. Pass NULL to ignore messages.
 *  - Functions returning `int` return ES_OK (0) or a negative EsStatus; functions returning
 *    a pointer return NULL on failure.
 *  - Handles: es_*_free accepts NULL (a no-op). Using a handle after freeing it, or freeing
 *    it twice, is undefined behaviour.
 *  - Threads: a model or session may be used from any thread, one call at a time per
 *    session; es_session_cancel may be called from any thread at any time while the
 *    session is alive (it only sets a flag; es_session_chat says which answer it stops).
 *    A second call on a session that is busy (another thread's
 *    es_session_chat, or a call from inside its own callback) returns ES_ERR_BUSY rather
 *    than blocking. es_model_info and es_tokenize may run on any thread, also while the
 *    model's session is in es_session_chat on another.
 *  - Structs passed in start with `struct_size`: fill them with the es_*_default
 *    function, then change fields. The library reads struct_size first, alone, and
 *    refuses a struct whose struct_size is not the size it was built with
 *    (ES_ERR_INVALID_ARGUMENT, naming the struct) without reading the rest: this catches
 *    an uninitialized struct and a header/library mismatch, and lets later versions grow
 *    the structs (a later library can tell a smaller, older struct by its size).
 */
#ifndef EDGESEEK_H
#define EDGESEEK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------ */
/* Status codes, strings, version                                                        */

typedef enum EsStatus {
    ES_OK = 0,
    /* A NULL argument that may not be NULL, text that is not UTF-8, an option out of
     * range, a struct_size that does not match, a conversation longer than the context. */
    ES_ERR_INVALID_ARGUMENT = -1,
    /* The session is in another call (see Threads above). */
    ES_ERR_BUSY = -2,
    /* Loading failed: the file is missing, corrupt or unsupported, no usable GPU, a
     * memory budget that cannot be met; or es_tokenize cannot read the file any more. */
    ES_ERR_MODEL = -3,
    /* Generating or tokenizing failed (for example the GPU device was lost). */
    ES_ERR_GENERATION = -4,
    /* es_tokenize: more tokens than the buffer holds. */
    ES_ERR_BUFFER_TOO_SMALL = -5,
    /* A bug in edgeseek (a caught panic); the message says where. Please report it. */
    ES_ERR_INTERNAL = -6
} EsStatus;

/* The library version, e.g. "0.1.0". Static: do not free. */
const char *es_version(void);

/* A status's name, e.g. "ES_ERR_BUSY" ("unknown status" for others). Static: do not free. */
const char *es_status_name(int status);

/* Frees a message the library returned through `char **error`. NULL is a no-op. */
void es_string_free(char *s);

/* ------------------------------------------------------------------------------------ */
/* Loading a model                                                                       */

/* Where the routed experts of a MoE model go (EsLoadOptions.expert_cache). */
typedef enum EsExpertCache {
    /* All experts resident when they fit in half the device memory, else streamed from
     * the file within that share. */
    ES_EXPERT_CACHE_AUTO = 0,
    /* The smallest cache the model allows: one token's experts of one layer. */
    ES_EXPERT_CACHE_MIN = 1,
    /* At most EsLoadOptions.expert_cache_bytes of expert slots. */
    ES_EXPERT_CACHE_BYTES = 2
} EsExpertCache;

/* Which cached expert gives way to a new one (EsLoadOptions.eviction). */
typedef enum EsEviction {
    ES_EVICTION_LRU = 0,       /* least recently used */
    ES_EVICTION_FREQUENCY = 1  /* fewest uses, counts halved as they age */
} EsEviction;

/* How to load a model. Fill with es_load_options_default. Enumerations are int32_t fields
 * (a C enum's size is the compiler's choice). Booleans are int: 0 false, else true. */
typedef struct EsLoadOptions {
    uint32_t struct_size;        /* sizeof(EsLoadOptions), set by es_load_options_default */
    uint32_t n_ctx;              /* context the KV cache holds; 0 (default): min(trained, 4096) */
    uint32_t max_batch;          /* most tokens per prefill step, 1..4096; default 64 */
    int32_t expert_cache;        /* EsExpertCache; default ES_EXPERT_CACHE_AUTO */
    uint64_t expert_cache_bytes; /* the budget with ES_EXPERT_CACHE_BYTES */
    uint64_t max_resident_bytes; /* one GPU memory budget for KV, scratch, weights, experts;
                                    0 (default): no budget, all dense weights resident */
    const char *adapter;         /* GPU adapter whose name contains this text (case-insensitive);
                                    NULL (default): the best one. Copied; not kept. */
    int32_t eviction;            /* EsEviction; default ES_EVICTION_LRU */
    int no_f16;                  /* do not use SHADER_F16 (KV cache in f32); default 0 */
    int downlevel;               /* ask only for wgpu's downlevel limits; default 0 */
    int f32_activations;         /* keep activations f32 on CPU-backed devices; default 0 */
    int prefetch;                /* MoE: load the next layer's predicted experts; default 0 */
} EsLoadOptions;

/* Fills *out with the defaults (the Rust library's). NULL is a no-op. */
void es_load_options_default(EsLoadOptions *out);

/* A loaded model: weights on the GPU, a KV cache. Opaque. */
typedef struct EsModel EsModel;

/* Loads a GGUF model (one file, or any part of a split model). `opts` NULL: defaults.
 * Returns the model, or NULL with *error naming the file and the problem. Blocks while
 * the weights upload (seconds for small models). Free with es_model_free. */
EsModel *es_model_load(const char *path, const EsLoadOptions *opts, char **error);

/* Releases the caller's reference to the model. A live session keeps the model alive:
 * the model and its session may be freed in either order, and the GPU memory goes with
 * the last of them. NULL is a no-op. */
void es_model_free(EsModel *m);

/* What es_model_info describes, captured at load. */
typedef struct EsModelInfo {
    uint32_t struct_size;            /* sizeof(EsModelInfo) of the library that filled it */
    uint32_t n_ctx;                  /* context the KV cache holds, in tokens */
    const char *arch;                /* "llama", "qwen2", "qwen3", "qwen3moe", "deepseek2" */
    const char *chat_template;       /* "deepseek-r1", "smollm2", "chatml", "llama3", ...;
                                        NULL when the file has none edgeseek knows (then
                                        es_session_chat fails: the model needs raw prompts) */
    const char *adapter;             /* the GPU adapter's name */
    int opens_think;                 /* the template opens a think span (DeepSeek-R1): answers
                                        start with ES_EVENT_THINK_START */
    uint32_t n_ctx_train;            /* context the model was trained for */
    uint32_t n_vocab;
    uint32_t n_layer;
    uint32_t n_embd;
    uint32_t n_head;
    uint32_t n_head_kv;
    uint32_t n_expert;               /* routed experts per MoE layer; 0: a dense model */
    uint32_t n_expert_used;          /* experts each token uses; 0: a dense model */
    uint64_t gpu_weights_bytes;      /* GPU memory by kind, as allocated at load */
    uint64_t gpu_expert_cache_bytes;
    uint64_t gpu_kv_bytes;
    uint64_t gpu_scratch_bytes;
    uint64_t gpu_stream_ring_bytes;
    uint64_t dense_streamed_bytes;   /* dense weights read from the file every token (they
                                        did not fit max_resident_bytes); 0: all resident */
} EsModelInfo;

/* The model's description, owned by the model (strings included): valid until
 * es_model_free(m). NULL when m is NULL. */
const EsModelInfo *es_model_info(const EsModel *m);

/* Token ids of `text` as the model's tokenizer encodes it (special tokens written in the
 * text are parsed; `add_special` non-zero adds BOS where the file asks for it).
 * *n_tokens receives the count. With ids NULL and capacity 0, only counts. With a buffer
 * too small, returns ES_ERR_BUFFER_TOO_SMALL and writes no ids (*n_tokens still says how
 * many are needed). The first call builds a second tokenizer from the file (tens of ms),
 * so that tokenizing never waits for a running chat; ES_ERR_MODEL when the file can no
 * longer be read (moved or changed since es_model_load). */
int es_tokenize(const EsModel *m, const char *text, int add_special, uint32_t *ids,
                size_t capacity, size_t *n_tokens, char **error);

/* ------------------------------------------------------------------------------------ */
/* Sessions: a conversation with a model                                                 */

typedef struct EsSession EsSession;

/* A conversation with the model, with the model's chat template. One live session per
 * model: a second es_session_new on the same model fails (its message names the live
 * session) until that one is freed. The session holds a reference to the model (see
 * es_model_free). Free with es_session_free. Returns NULL with *error on failure. */
EsSession *es_session_new(EsModel *model, char **error);

/* Frees the session (and, if es_model_free was called already, the model). Must not run
 * while another thread is in a call on the session. NULL is a no-op. */
void es_session_free(EsSession *s);

/* The system prompt of the conversation (copied); NULL removes it. It applies from the
 * next es_session_chat on (earlier turns are rendered with it too). A template with a
 * default system prompt (SmolLM2) uses that one when there is none. */
int es_session_set_system(EsSession *s, const char *system, char **error);

/* Forgets the conversation (the system prompt stays) and empties the KV cache. */
int es_session_reset(EsSession *s, char **error);

/* Options of one es_session_chat. Fill with es_generate_options_default. The sampling
 * order is llama.cpp's: repetition penalty, top-k, top-p, min-p, temperature. */
typedef struct EsGenerateOptions {
    uint32_t struct_size;     /* sizeof(EsGenerateOptions), set by es_generate_options_default */
    uint32_t max_tokens;      /* most tokens to generate (reasoning included), at least 1
                                 (0 is ES_ERR_INVALID_ARGUMENT); default 512 */
    float temperature;        /* 0: greedy; default 0.6 (DeepSeek's advice for R1) */
    uint32_t top_k;           /* keep the k most likely; 0 (default): all */
    float top_p;              /* 0 < p <= 1; default 0.95 */
    float min_p;              /* 0 <= p <= 1; default 0 */
    float repeat_penalty;     /* > 0; 1 (default): off */
    uint32_t repeat_last_n;   /* tokens the penalty looks back at; default 64 */
    uint64_t seed;            /* default 0; the same seed and options give the same text */
    const char *const *stop;  /* n_stop strings that end generation; they are not sent.
                                 Read during the call only. Default NULL. */
    size_t n_stop;            /* default 0 */
} EsGenerateOptions;

/* Fills *out with the defaults (the Rust library's). NULL is a no-op. */
void es_generate_options_default(EsGenerateOptions *out);

typedef enum EsEventKind {
    ES_EVENT_TEXT = 0,         /* generated text */
    ES_EVENT_THINK_START = 1,  /* a reasoning span starts (text "", len 0) */
    ES_EVENT_THINK_END = 2,    /* it ends (text "", len 0) */
    ES_EVENT_DONE = 3          /* the last event; text is the stop reason's name */
} EsEventKind;

/* Called on the thread that called es_session_chat. `text` is UTF-8, `len` bytes, NOT
 * NUL-terminated, never split inside a character, and valid only during the call: copy
 * what you keep. Return 0 to go on, non-zero to stop: generation ends after the current
 * token, the callback receives nothing more but ES_EVENT_DONE (whose return value is
 * ignored), and es_session_chat still returns ES_OK (stop reason "cancelled").
 * The callback may call es_session_cancel; any other call on the same session returns
 * ES_ERR_BUSY, and es_session_free on it is undefined behaviour.
 * The callback must return normally: a C++ exception thrown out of it, or a longjmp out
 * of it past es_session_chat, crosses the library's frames, which is undefined behaviour
 * (the session's lock and state are left mid-call). Catch exceptions inside the callback
 * and return non-zero to stop. */
typedef int (*EsEventCallback)(EsEventKind kind, const char *text, size_t len, void *user_data);

/* Adds `user_message` to the conversation and streams the assistant's answer to `cb`
 * (with `user_data`). `opts` NULL: defaults. Returns ES_OK when the answer ended for any
 * stop reason; then ES_EVENT_DONE was the last event, with one of these texts:
 *   "end_of_generation"  the model ended its turn
 *   "stop_string"        one of opts->stop appeared (it was not sent)
 *   "max_tokens"         opts->max_tokens were generated
 *   "cancelled"          es_session_cancel, or the callback returned non-zero
 *   "context_full"       the KV cache is full: es_session_reset to go on
 * The answer (the text outside think spans, as far as it was sent) joins the
 * conversation, so the next call continues it; the model re-reads only what is new.
 * On an error, no ES_EVENT_DONE is sent and the conversation is as before the call.
 * Blocks until the answer ends.
 * Cancellation: the session has one cancel flag, which es_session_cancel sets. This
 * function clears it after it has checked its arguments and taken the session, just
 * before the prompt is evaluated. A cancel that comes before that point is forgotten:
 * one before the call, and one from another thread while the call is still in those
 * first steps (a window of microseconds, but a race); the answer then runs in full. A
 * cancel after that point stops the answer before its next token: "cancelled", with
 * ES_OK (during the prompt's evaluation, that evaluation finishes and no token is
 * generated). A call that fails before clearing the flag (ES_ERR_BUSY, a bad argument)
 * leaves it alone. To cancel reliably from another thread, cancel after the callback has
 * received its first event, or repeat the cancel until this call has returned; from
 * the callback, return non-zero. */
int es_session_chat(EsSession *s, const char *user_message, const EsGenerateOptions *opts,
                    EsEventCallback cb, void *user_data, char **error);

/* Asks a running es_session_chat to stop after the current token (stop reason
 * "cancelled"): sets the session's cancel flag and returns at once. Any thread, any time
 * while the session is alive (it is safe then; which answer it stops is said under
 * es_session_chat's "Cancellation": not one that has yet to clear the flag). Without a
 * running chat it has no effect: the next es_session_chat clears the flag. NULL is a
 * no-op. */
void es_session_cancel(EsSession *s);

/* Why the last answer ended (EsSummary.stop). */
typedef enum EsStopReason {
    ES_STOP_END_OF_GENERATION = 0,
    ES_STOP_STOP_STRING = 1,
    ES_STOP_MAX_TOKENS = 2,
    ES_STOP_CANCELLED = 3,
    ES_STOP_CONTEXT_FULL = 4
} EsStopReason;

/* How the last es_session_chat went. */
typedef struct EsSummary {
    uint32_t struct_size;       /* set by the caller to sizeof(EsSummary) before the call */
    int32_t stop;               /* EsStopReason */
    uint64_t prompt_tokens;     /* the whole conversation as the template rendered it */
    uint64_t reused_tokens;     /* of those, already in the KV cache from the turn before */
    uint64_t generated_tokens;
    double prefill_tok_s;
    double decode_tok_s;
} EsSummary;

/* Copies the summary of the last completed es_session_chat into *out (whose struct_size
 * the caller sets). ES_ERR_INVALID_ARGUMENT before the first one. */
int es_session_last_summary(EsSession *s, EsSummary *out, char **error);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* EDGESEEK_H */
