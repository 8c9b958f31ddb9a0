/* A tiny C unit-test harness: TEST(name) functions registered in main via
 * RUN(name); failed checks print both sides with file and line. Output is
 * one "ok - " / "not ok - " line per test, which tests/run counts. */
#ifndef JR_TEST_UNIT_H
#define JR_TEST_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failed_checks;
static int unit_tests_failed;
static int unit_tests_passed;
/* Printed after each test's name when set (the same suite on another
 * backend, say). */
static const char *unit_label;

#define TEST(name) static void test_##name(void)

#define RUN(name)                                                        \
    do {                                                                 \
        int before_ = unit_failed_checks;                                \
        test_##name();                                                   \
        if (unit_failed_checks == before_) {                             \
            unit_tests_passed++;                                         \
            printf("ok - %s: %s%s%s\n", __FILE__, #name,              \
                   unit_label ? " on " : "", unit_label ? unit_label : ""); \
        } else {                                                         \
            unit_tests_failed++;                                         \
            printf("not ok - %s: %s%s%s\n", __FILE__, #name,          \
                   unit_label ? " on " : "", unit_label ? unit_label : ""); \
        }                                                                \
    } while (0)

#define UNIT_FAIL(fmt, ...)                                              \
    do {                                                                 \
        unit_failed_checks++;                                            \
        fprintf(stderr, "%s:%d: " fmt "\n", __FILE__, __LINE__,          \
                __VA_ARGS__);                                            \
    } while (0)

#define CHECK(cond)                                                      \
    do {                                                                 \
        if (!(cond))                                                     \
            UNIT_FAIL("check failed: %s", #cond);                        \
    } while (0)

#define CHECK_INT(a, b)                                                  \
    do {                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);              \
        if (a_ != b_)                                                    \
            UNIT_FAIL("%s == %s: %lld != %lld", #a, #b, a_, b_);         \
    } while (0)

#define CHECK_STR(a, b)                                                  \
    do {                                                                 \
        const char *a_ = (a), *b_ = (b);                                 \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                           \
            UNIT_FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b,              \
                      a_ ? a_ : "(null)", b_ ? b_ : "(null)");           \
    } while (0)

#define UNIT_DONE() (unit_tests_failed ? 1 : 0)

#endif
