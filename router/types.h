/*
 * types.h — the names of the request path's objects, for headers that only
 * point to them (each is defined by the header of the file that owns it: worker.h,
 * runtime.h, conn.h, exchange.h, upstream.h).
 */
#ifndef SY_TYPES_H
#define SY_TYPES_H

#include <stddef.h>

typedef struct sy_worker_s sy_worker_t;
typedef struct sy_runtime_s sy_runtime_t;
typedef struct sy_conn_s sy_conn_t;
typedef struct sy_upconn_s sy_upconn_t;
typedef struct sy_upserver_s sy_upserver_t;
typedef struct sy_uppool_s sy_uppool_t;
typedef struct sy_req_s sy_req_t;

#endif
