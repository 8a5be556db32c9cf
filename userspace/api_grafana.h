/* api_grafana.h - Grafana's JSON API data source protocol (the plugin
 * simpod-json-datasource) under /grafana, answered from the store through the
 * read-only SQL pool. The routes are api_grafana_routes (api.h); what each
 * answers is grafana_call, which needs no HTTP so it can be tested alone.
 *
 *   GET  /grafana, /grafana/           200 {"status": "ok"} (the plugin's "Test connection")
 *   POST /grafana/metrics               [{"label", "value", "payloads": [...]}]: the views, and "sql"
 *   POST /grafana/metric-payload-options  [{"label", "value"}] for payload "format"
 *   POST /grafana/query                 one answer per target: a table
 *       {"type": "table", "columns": [{"text", "type"}], "rows": [[...]]} or, with
 *       format "time_series", series [{"target", "datapoints": [[value, time_ms]]}]
 *   POST /grafana/variable              [{"__text", "__value"}]
 *   POST /grafana/tag-keys              [{"type", "text"}]
 *   POST /grafana/tag-values            [{"text"}]
 *
 * A target's SQL is its payload's "sql", else its metric's own. $__from, $__to
 * and $__interval_ms in it are the parameters :from, :to and :interval_ms,
 * bound to the request's range (ISO 8601, as epoch ms) and intervalMs.
 */
#ifndef GLIMPSE_API_GRAFANA_H
#define GLIMPSE_API_GRAFANA_H
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "sqlro.h"

enum grafana_call {
	GRAFANA_METRICS,
	GRAFANA_PAYLOAD_OPTIONS,
	GRAFANA_QUERY,
	GRAFANA_VARIABLE,
	GRAFANA_TAG_KEYS,
	GRAFANA_TAG_VALUES,
};

/* Answers one POST: body (len bytes of JSON, "" taken as {}) is the plugin's
 * request; the answer's JSON is appended to out. Queries run on pool under lim.
 * Returns 200, or the HTTP status of a failure (400 bad request or SQL, 403
 * refused SQL, 413 answer over the limits, 500, 503) with its message in err. */
int grafana_call(enum grafana_call call, struct sqlro *pool, const struct sqlro_limits *lim, const char *body,
		 size_t len, struct buf *out, char *err, size_t errlen);

/* Epoch milliseconds of an ISO 8601 time ("2016-10-31T06:33:44.866Z", with an
 * optional fraction and a Z or +hh:mm offset). Returns 0 and *ms, or -1. */
int grafana_time_ms(const char *iso, int64_t *ms);

#endif
