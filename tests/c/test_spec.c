/* Unit tests of jr_spec_decode: a task's stored JSON -> the C fields an
 * executor reads (image, network, inputs), keeping the shape as given so
 * that the executor can name a bad field. */
#include <stdlib.h>

#include "spec.h"
#include "unit.h"

TEST(empty_and_not_an_object)
{
    struct jr_task_setup s;

    CHECK_INT(jr_spec_decode(NULL, &s), 0);
    CHECK_INT(s.image_kind, JR_SPEC_ABSENT);
    CHECK_INT(s.network_kind, JR_SPEC_ABSENT);
    CHECK_INT(s.inputs_kind, JR_SPEC_ABSENT);
    jr_spec_free(&s);
    CHECK_INT(jr_spec_decode("[1]", &s), -1);
    jr_spec_free(&s);
    CHECK_INT(jr_spec_decode("{\"image\":", &s), -1);
    jr_spec_free(&s);
}

TEST(image_and_network)
{
    struct jr_task_setup s;

    CHECK_INT(jr_spec_decode("{\"image\":\"ubuntu\",\"network\":\"full\"}", &s), 0);
    CHECK_INT(s.image_kind, JR_SPEC_OK);
    CHECK_STR(s.image, "ubuntu");
    CHECK_INT(s.network_kind, JR_SPEC_OK);
    CHECK_STR(s.network_mode, "full");
    CHECK_INT(s.domains_kind, JR_SPEC_ABSENT);
    jr_spec_free(&s);
    CHECK_INT(jr_spec_decode("{\"image\":3,\"network\":{\"mode\":\"allow\","
                             "\"domains\":[\"a.org\",7,\"*.b.org\"]}}", &s), 0);
    CHECK_INT(s.image_kind, JR_SPEC_BAD);
    CHECK(s.image == NULL);
    CHECK_STR(s.network_mode, "allow");
    CHECK_INT(s.domains_kind, JR_SPEC_OK);
    CHECK_INT(s.ndomains, 3);
    if (s.ndomains == 3) {
        CHECK_STR(s.domains[0], "a.org");
        CHECK(s.domains[1] == NULL);
        CHECK_STR(s.domains[2], "*.b.org");
    }
    jr_spec_free(&s);
    CHECK_INT(jr_spec_decode("{\"image\":null,\"network\":[\"none\"]}", &s), 0);
    CHECK_INT(s.image_kind, JR_SPEC_ABSENT);
    CHECK_INT(s.network_kind, JR_SPEC_BAD);
    jr_spec_free(&s);
    CHECK_INT(jr_spec_decode("{\"network\":{\"mode\":1,\"domains\":\"a.org\"}}", &s), 0);
    CHECK_INT(s.network_kind, JR_SPEC_OK);
    CHECK(s.network_mode == NULL);
    CHECK_INT(s.domains_kind, JR_SPEC_BAD);
    jr_spec_free(&s);
}

TEST(inputs)
{
    struct jr_task_setup s;

    CHECK_INT(jr_spec_decode("{\"inputs\":[{\"source\":\"inline\",\"content\":\"a\\nb\","
                             "\"target\":\"/in/x\"},{\"source\":\"url\",\"url\":\"http://h/f\","
                             "\"max_bytes\":10},5,{\"source\":\"path\",\"path\":9,"
                             "\"max_bytes\":\"big\",\"data\":null,\"content\":\"c\"}]}", &s), 0);
    CHECK_INT(s.inputs_kind, JR_SPEC_OK);
    CHECK_INT(s.ninputs, 4);
    if (s.ninputs == 4) {
        const struct jr_spec_input *in = s.inputs;
        CHECK(in[0].is_object);
        CHECK_STR(in[0].source, "inline");
        CHECK_STR(in[0].target, "/in/x");
        CHECK_INT(in[0].data_len, 3);
        CHECK_INT(in[0].max_bytes_kind, JR_SPEC_ABSENT);
        CHECK_STR(in[1].url, "http://h/f");
        CHECK_INT(in[1].max_bytes_kind, JR_SPEC_OK);
        CHECK_INT((long long)in[1].max_bytes, 10);
        CHECK(!in[2].is_object);
        CHECK(in[3].path == NULL);        /* not a string */
        CHECK_INT(in[3].max_bytes_kind, JR_SPEC_BAD);
        CHECK(in[3].data == NULL);        /* data given (null): no fallback */
    }
    jr_spec_free(&s);
    CHECK_INT(jr_spec_decode("{\"inputs\":{\"a\":1}}", &s), 0);
    CHECK_INT(s.inputs_kind, JR_SPEC_BAD);
    jr_spec_free(&s);
    CHECK_INT(jr_spec_decode("{\"inputs\":[]}", &s), 0);
    CHECK_INT(s.inputs_kind, JR_SPEC_OK);
    CHECK_INT(s.ninputs, 0);
    jr_spec_free(&s);
}

int main(void)
{
    RUN(empty_and_not_an_object);
    RUN(image_and_network);
    RUN(inputs);
    return UNIT_DONE();
}
