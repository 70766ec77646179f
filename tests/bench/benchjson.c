/* benchjson.c - see benchjson.h. */
#include "benchjson.h"

#include <jansson.h>

static json_t *num_or_null(double v)
{
	return v > 0 ? json_real(v) : json_null();
}

int bench_json_append(const char *file, const struct bench_row *rows, int n)
{
	json_error_t err;
	json_t *list = json_load_file(file, 0, &err);
	int rc;

	if (!list || !json_is_array(list)) {
		json_decref(list);
		list = json_array();
	}
	for (int i = 0; i < n; i++) {
		const struct bench_row *r = &rows[i];
		json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "name", r->name,
				      "unit", r->unit, "ours", json_real(r->ours),
				      "peer", num_or_null(r->peer),
				      "ratio", r->peer > 0 ? json_real(r->ours / r->peer) : json_null(),
				      "goal", num_or_null(r->goal));

		if (!o || json_array_append_new(list, o) != 0) {
			json_decref(list);
			return -1;
		}
	}
	rc = json_dump_file(list, file, JSON_INDENT(2));
	json_decref(list);
	return rc;
}
