/*
 * query.h - what a caller of proj_query (proj.h) may rely on to reuse an
 * answer: which stored queries depend on who asks.
 *
 * Every stored query is a pure function of the projection, its params and,
 * for some, the viewer (proj_qctx.viewer): the same three give the same
 * result, byte for byte once serialized. getEntryHistory also reads events
 * through proj_qctx.load, but only events the projection already holds, so
 * it too is fixed by the projection.
 */
#ifndef CL_QUERY_H
#define CL_QUERY_H

/*
 * 1 if the result of query `name` may differ between viewers (whoami;
 * getUsers, which shows tokens to admins only), and for any name this
 * module does not know; 0 if every viewer gets the same result.
 */
int proj_query_by_viewer(const char *name);

#endif
