/* test_ctl_json.c - simverifyctl's JSON reader (tools/ctl/ctl_json.c): the
 * daemon's documents parse, paths resolve, numbers keep their text, bad
 * input is refused with an offset. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "ctl_json.h"

static struct ctl_json *parse_ok(const char *s)
{
	struct ctl_json *j = NULL;
	char err[128] = "";

	cr_assert_eq(ctl_json_parse(s, strlen(s), &j, err, sizeof(err)), 0, "%s: %s", s, err);
	cr_assert_not_null(j);
	return j;
}

Test(ctl_json, status_document_paths_and_numbers)
{
	struct ctl_json *j =
	    parse_ok("{\"model_version\":18446744073709551615,\"auc\":0.91,\"eer\":null,"
	             "\"paused\":false,\"threshold_policy\":\"eer\","
	             "\"counters\":{\"pairs\":{\"logged\":5,\"duplicate\":0},\"rejects\":{}}}");

	cr_assert_str_eq(ctl_json_get(j, "model_version")->text, "18446744073709551615");
	cr_assert_float_eq(ctl_json_num(j, "auc", -1), 0.91, 1e-12);
	cr_assert_eq(ctl_json_get(j, "eer")->type, CTL_JSON_NULL);
	cr_assert_float_eq(ctl_json_num(j, "eer", -1), -1, 0);
	cr_assert_eq(ctl_json_num(j, "paused", -1), 0);
	cr_assert_str_eq(ctl_json_str(j, "threshold_policy"), "eer");
	cr_assert_eq(ctl_json_num(j, "counters.pairs.logged", -1), 5);
	cr_assert_eq(ctl_json_get(j, "counters.rejects")->n, 0);
	cr_assert_null(ctl_json_get(j, "counters.nope"));
	cr_assert_null(ctl_json_get(j, "auc.deeper"));
	cr_assert_null(ctl_json_str(j, "auc"));
	ctl_json_free(j);
}

Test(ctl_json, strings_escapes_and_round_trip)
{
	struct ctl_json *j =
	    parse_ok(" [\"a\\\"b\\\\c\\n\", \"\\u00e9\\u20ac\", 1e-3, -2, true, {}] ");
	char buf[256] = "";
	FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");

	cr_assert_eq(j->type, CTL_JSON_ARR);
	cr_assert_eq(j->n, 6);
	cr_assert_str_eq(j->kids[0]->text, "a\"b\\c\n");
	cr_assert_str_eq(j->kids[1]->text, "\xc3\xa9\xe2\x82\xac");
	cr_assert_float_eq(j->kids[2]->num, 1e-3, 1e-15);
	ctl_json_write(j, f);
	fclose(f);
	cr_assert_str_eq(buf, "[\"a\\\"b\\\\c\\n\", \"\xc3\xa9\xe2\x82\xac\", 1e-3, -2, true, {}]");
	ctl_json_free(j);
}

Test(ctl_json, bad_input_is_refused_with_an_offset)
{
	static const char *const bad[] = {
	    "",    "{", "{\"a\"}", "{\"a\":}",  "[1,]",  "[1 2]", "\"open", "{\"a\":1} x",
	    "tru", "-", "\"\\q\"", "\"\\u12\"", "{1:2}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ctl_json *j = (struct ctl_json *)0x1;
		char err[128] = "";

		cr_assert_eq(ctl_json_parse(bad[i], strlen(bad[i]), &j, err, sizeof(err)), -1,
		             "accepted '%s'", bad[i]);
		cr_assert_eq(j, (struct ctl_json *)0x1, "out-param written on failure");
		cr_assert_not_null(strstr(err, "offset "), "'%s': %s", bad[i], err);
	}
}

Test(ctl_json, nesting_is_bounded)
{
	char deep[300];
	struct ctl_json *j = NULL;
	char err[128];

	memset(deep, '[', 200);
	memset(deep + 200, ']', 99);
	deep[299] = '\0';
	cr_assert_eq(ctl_json_parse(deep, strlen(deep), &j, err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, "deeply"), "%s", err);
	ctl_json_free(NULL);
}
