/* The deadline watchdog of the daemon's Lua state: a thread that sleeps
 * until the deadline of the bounded call running on the loop thread, and,
 * if that call is still running then, signals the loop thread, whose
 * handler sets the deadline hook on the coroutines being resumed
 * (lua_sethook may be called from a signal handler). The call is stopped at
 * its next instruction, as before.
 *
 * Why: the deadline used to be an instruction-count hook on every bounded
 * coroutine, and while any count hook is set Lua 5.4 traps on every
 * instruction — about a third more work for Lua code, paid by every
 * request to catch the rare one that runs away. Now a call pays two
 * uncontended mutex operations; the thread wakes once per deadline that
 * passes, not per call.
 *
 * The resume chain: the coroutines being resumed now, outermost first. A
 * bounded call adds its coroutine; so do coroutine.resume and the functions
 * of coroutine.wrap, replaced here by versions that keep the chain, so a
 * loop in a coroutine the handler made itself is stopped too. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua/runtime.h"

struct jr_lua_watchdog {
    struct jr_lua *lua;
    pthread_t thread, loop_thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    lua_Hook hook;       /* what the signal handler sets */
    uint64_t deadline;   /* under mu: of the call running now, 0 none */
    uint64_t wake_at;    /* under mu: when the thread looks next, 0 only when told */
    uint64_t fired;      /* under mu: the deadline signalled last */
    int stop;            /* under mu */
};

static int deadline_signal(void)
{
    return SIGRTMIN + 3;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* On the loop thread, between any two of its instructions. Hooks every
 * coroutine on the resume chain when the deadline of the call running now
 * has passed (the signal may come late, after that call ended). */
static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    struct jr_lua *lua = si->si_value.sival_ptr;
    if (si->si_code != SI_QUEUE || !lua || !lua->watchdog)
        return;
    uint64_t deadline = lua->deadline_ns;
    if (!deadline || now_ns() < deadline)
        return;
    for (int i = lua->bounded_at; i < lua->chain_len; i++)
        lua_sethook(lua->chain[i], lua->watchdog->hook, LUA_MASKCOUNT, 1);
}

static void *watch(void *arg)
{
    struct jr_lua_watchdog *w = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);

    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        uint64_t now = now_ns();
        if (w->deadline && now >= w->deadline && w->fired != w->deadline) {
            union sigval v = {.sival_ptr = w->lua};
            pthread_sigqueue(w->loop_thread, deadline_signal(), v);
            w->fired = w->deadline;
        }
        /* A deadline signalled already: nothing more to do for it. */
        w->wake_at = w->deadline && w->fired != w->deadline ? w->deadline : 0;
        if (w->wake_at) {
            struct timespec ts = {.tv_sec = (time_t)(w->wake_at / 1000000000u),
                                  .tv_nsec = (long)(w->wake_at % 1000000000u)};
            pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        } else {
            pthread_cond_wait(&w->cv, &w->mu);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

void jr_lua_watchdog_arm(struct jr_lua_watchdog *w, uint64_t deadline)
{
    pthread_mutex_lock(&w->mu);
    w->deadline = deadline;
    /* Told only when it would otherwise look too late: under steady load
     * every new deadline is later than the one it sleeps until. */
    if (deadline && (w->wake_at == 0 || deadline < w->wake_at))
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int jr_lua_watchdog_start(struct jr_lua *lua, lua_Hook hook)
{
    struct jr_lua_watchdog *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->lua = lua;
    w->hook = hook;
    w->loop_thread = pthread_self();
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        free(w);
        return -1;
    }
    pthread_mutex_init(&w->mu, NULL);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(deadline_signal(), &sa, NULL) != 0 ||
        pthread_create(&w->thread, NULL, watch, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return -1;
    }
    lua->watchdog = w;
    return 0;
}

void jr_lua_watchdog_stop(struct jr_lua *lua)
{
    struct jr_lua_watchdog *w = lua->watchdog;
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    lua->watchdog = NULL;
    /* A signal still queued is dropped. */
    signal(deadline_signal(), SIG_IGN);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* ---- coroutine.resume and coroutine.wrap, keeping the chain ---- */

int jr_lua_chain_push(struct jr_lua *lua, lua_State *co)
{
    int n = lua->chain_len;
    if (n >= JR_LUA_CHAIN_MAX)
        return -1;
    lua->chain[n] = co;
    /* The entry is written before the handler may count it. */
    atomic_signal_fence(memory_order_seq_cst);
    lua->chain_len = n + 1;
    return 0;
}

void jr_lua_watchdog_resume_outer(struct jr_lua *lua, int every)
{
    uint64_t deadline = lua->deadline_ns;
    if (deadline && now_ns() >= deadline) {
        /* Not at once: the outer call may still take in what the inner
         * one answered, as a count hook would have let it. */
        for (int i = lua->bounded_at; i < lua->chain_len; i++)
            lua_sethook(lua->chain[i], lua->watchdog->hook, LUA_MASKCOUNT, every);
        return;
    }
    jr_lua_watchdog_arm(lua->watchdog, deadline);
}

void jr_lua_chain_pop(struct jr_lua *lua)
{
    lua->chain_len = lua->chain_len - 1;
    atomic_signal_fence(memory_order_seq_cst);
}

/* Why co cannot be resumed from L, or NULL when it can. */
static const char *not_resumable(lua_State *L, lua_State *co)
{
    lua_Debug ar;
    if (co == L)
        return "cannot resume non-suspended coroutine";
    switch (lua_status(co)) {
    case LUA_YIELD:
        return NULL;
    case LUA_OK:
        if (lua_getstack(co, 0, &ar))
            return "cannot resume non-suspended coroutine"; /* it resumed another */
        return lua_gettop(co) == 0 ? "cannot resume dead coroutine" : NULL;
    default:
        return "cannot resume dead coroutine";
    }
}

/* Resume co with the nargs values on top of L: returns how many results it
 * pushed, or -1 with the error on top. */
static int resume_tracked(lua_State *L, lua_State *co, int nargs)
{
    struct jr_lua *lua = jr_lua_of(L);
    const char *why = not_resumable(L, co);
    if (!why && !lua_checkstack(co, nargs))
        why = "too many arguments to resume";
    if (!why && lua->chain_len >= JR_LUA_CHAIN_MAX)
        why = "coroutines nested too deeply";
    if (why) {
        lua_pop(L, nargs);
        lua_pushstring(L, why);
        return -1;
    }
    lua_xmove(L, co, nargs);
    int nres = 0;
    jr_lua_chain_push(lua, co);
    int status = lua_resume(co, L, nargs, &nres);
    jr_lua_chain_pop(lua);
    if (status == LUA_OK || status == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            lua_pushliteral(L, "too many results to resume");
            return -1;
        }
        lua_xmove(co, L, nres);
        return nres;
    }
    lua_xmove(co, L, 1);
    return -1;
}

/* coroutine.resume(co, ...) -> true, ... | false, err */
static int l_co_resume(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "coroutine");
    int r = resume_tracked(L, co, lua_gettop(L) - 1);
    if (r < 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -(r + 1));
    return r + 1;
}

/* The function coroutine.wrap returns: upvalue 1 is its coroutine. An
 * error ends the coroutine (its to-be-closed variables closed) and goes on
 * in the caller, with the caller's position when it is a string. */
static int wrapped(lua_State *L)
{
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    int r = resume_tracked(L, co, lua_gettop(L));
    if (r >= 0)
        return r;
    int status = lua_status(co);
    if (status != LUA_OK && status != LUA_YIELD) {
        status = lua_resetthread(co);
        lua_xmove(co, L, 1);
        lua_remove(L, -2);
    }
    if (status != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

/* coroutine.wrap(f) -> a function resuming a new coroutine running f */
static int l_co_wrap(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushcclosure(L, wrapped, 1);
    return 1;
}

void jr_lua_chain_coroutines(lua_State *L)
{
    lua_getglobal(L, "coroutine");
    lua_pushcfunction(L, l_co_resume);
    lua_setfield(L, -2, "resume");
    lua_pushcfunction(L, l_co_wrap);
    lua_setfield(L, -2, "wrap");
    lua_pop(L, 1);
}
