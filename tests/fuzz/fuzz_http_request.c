/* fuzz_http_request.c: arbitrary bytes through the HTTP request parser (split
 * at input-chosen points, as reads would split them) and every parsed request
 * through the router; nothing may crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net_int.h"

static void noop(net_http_req *req, void *arg) {}

static net_http_router *router(void) {
  static net_http_router *r;
  if (!r) {
    r = net_http_router_new();
    net_http_router_add(r, NET_HTTP_GET | NET_HTTP_POST, "/api/v1/query", "query", noop, NULL);
    net_http_router_add(r, NET_HTTP_GET | NET_HTTP_POST, "/api/v1/label/:name/values",
                        "label_values", noop, NULL);
    net_http_router_add(r, NET_HTTP_GET, "/metrics", NULL, noop, NULL);
    net_http_router_add(r, NET_HTTP_GET, "/static/*file", NULL, noop, NULL);
    net_http_router_add(r, NET_HTTP_PUT, "/:a/:b/:c", NULL, noop, NULL);
  }
  return r;
}

static void use_msg(net__http_msg *m) {
  volatile size_t sink = 0;
  for (size_t i = 0; i < m->nheaders; i++) sink += strlen(m->headers[i].name) + m->headers[i].value_len;
  for (size_t i = 0; i < m->nparams; i++) sink += strlen(m->params[i].name) + m->params[i].value_len;
  sink += strlen(m->path) + strlen(m->target) + m->body_len;
  net__http_route_match rm;
  int rc = net__http_router_match(router(), m->method, m->path, m->arena, &rm);
  if (rc == 200)
    for (size_t i = 0; i < rm.nvars; i++) sink += strlen(rm.vars[i].value);
  (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  uint32_t seed = data[0] | (uint32_t)data[1] << 8;
  data += 2;
  size -= 2;
  /* small limits on some inputs so that every limit path is reached */
  size_t lim = (seed & 1) ? 256 : (1u << 20);
  net__http_parse ps;
  net__http_parse_init(&ps, lim, lim / 2, lim);
  size_t off = 0;
  while (off < size) {
    seed = seed * 1103515245u + 12345u;
    size_t piece = 1 + (seed >> 16) % 64;
    if (piece > size - off) piece = size - off;
    /* as the server does: feed until it stops consuming */
    size_t done = 0;
    int stop = 0;
    while (done < piece) {
      int ev;
      size_t n = net__http_parse_feed(&ps, (const char *)data + off + done, piece - done, &ev);
      done += n;
      if (ev == NET__HP_ERROR) {
        stop = 1;
        break;
      }
      if (ev == NET__HP_READY) {
        net__http_msg *m = net__http_parse_take(&ps);
        bool ka = m->keep_alive;
        use_msg(m);
        orr_arena_destroy(m->arena);
        if (!ka) {
          stop = 1;
          break;
        }
        continue;
      }
      if (n == 0) break;
    }
    if (stop) break;
    off += piece;
  }
  net__http_parse_free(&ps);
  return 0;
}
