/* serve.h - what the long-lived service (`glimpse serve`, serve.c) shares with
 * its HTTP route families (api_*.c): the store's one writer, the pool of
 * read-only SQL connections and their limits, warm captures and metrics.
 */
#ifndef GLIMPSE_SERVE_H
#define GLIMPSE_SERVE_H
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "http.h"
#include "sqlro.h"

struct store;

struct serve {
	const char *db_path;
	struct store *st;		/* the one writer; hold write_lock to use it */
	pthread_mutex_t write_lock;
	struct sqlro *sql;		/* read-only connections for queries */
	struct sqlro_limits sql_lim;
};

/* Route families, each in its api_*.c. */
extern const struct http_route api_grafana_routes[];
extern const size_t api_grafana_nroutes;

#endif
