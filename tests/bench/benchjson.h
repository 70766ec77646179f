/*
 * benchjson.h - the rows every benchmark program reports, and their one
 * machine-readable form: build/bench.json, a JSON list of
 * {"name","unit","ours","peer","ratio","goal"} objects that tests/bench/run.sh
 * and report.py read. peer and goal <= 0 mean "none" (JSON null); ratio is
 * ours / peer when there is a peer.
 */
#ifndef CL_BENCHJSON_H
#define CL_BENCHJSON_H

struct bench_row {
	const char *name, *unit;   /* static strings */
	double ours, peer, goal;
};

/* Append rows[0..n) to the JSON list in file (created if missing or not a
 * list). 0 or -1. */
int bench_json_append(const char *file, const struct bench_row *rows, int n);

#endif
