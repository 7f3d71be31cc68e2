/*
 * rtnetlink.node: the few system calls the daemon's in-process netlink needs that Node does not offer.
 * Messages are built and parsed in TypeScript (src/kernel/rtnetlink-message.ts); this file only opens a
 * NETLINK_ROUTE socket inside a network namespace, sends one request and returns the raw replies (on a worker
 * thread: the answer may take milliseconds), and writes
 * a file (a /proc/sys/net sysctl) opened inside a network namespace. The calling thread enters the namespace
 * for the socket()/open() only and comes back before returning (as Go's netlink.NewHandleAt does): a socket
 * and a /proc/sys/net file keep the namespace they were created in.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <node_api.h>

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, #call " failed"); return NULL; } } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value code, text, error;
  char name[32];
  snprintf(name, sizeof name, "%d", err);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  napi_throw(env, error);
  return NULL;
}

static int arg_int(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok ? 0 : -1;
}

/* Enters netns_fd (when >= 0) on this thread; *back is the fd to return with. 0 or an errno. */
static int enter(int netns_fd, int *back) {
  *back = -1;
  if (netns_fd < 0) return 0;
  *back = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (*back < 0) return errno;
  if (setns(netns_fd, CLONE_NEWNET) != 0) {
    int err = errno;
    close(*back);
    *back = -1;
    return err;
  }
  return 0;
}

static void leave(int back) {
  if (back < 0) return;
  /* A thread left in a container's namespace would act there from now on: better to die than to carry on. */
  if (setns(back, CLONE_NEWNET) != 0) abort();
  close(back);
}

/* open(netnsFd) -> socket fd, bound, with extended ACKs and capped ACKs. netnsFd -1: this thread's namespace. */
static napi_value nl_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t ns;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_int(env, argv[0], &ns)) { napi_throw_type_error(env, NULL, "open(netnsFd)"); return NULL; }
  int back, err = enter(ns, &back);
  if (err) return throw_errno(env, "entering the network namespace", err);
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  err = fd < 0 ? errno : 0;
  leave(back);
  if (fd < 0) return throw_errno(env, "socket(NETLINK_ROUTE)", err);
  struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    err = errno;
    close(fd);
    return throw_errno(env, "bind(NETLINK_ROUTE)", err);
  }
  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  napi_value out;
  CHECK(napi_create_int32(env, fd, &out));
  return out;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* True once buf holds the end of the answer to seq: an NLMSG_ERROR (error or ACK) or NLMSG_DONE. */
static int answered(const char *buf, size_t len, uint32_t seq) {
  const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
  for (; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
    if (h->nlmsg_seq == seq && (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE)) return 1;
  }
  return 0;
}

/* One request and its answer, done on a libuv worker thread: moving a link between namespaces waits for the
 * kernel (RTNL, RCU grace periods) for milliseconds, which must not stop the daemon's event loop. */
struct transaction {
  napi_async_work work;
  napi_deferred deferred;
  int fd, timeout;
  char *req;
  size_t req_len;
  char *all;
  size_t all_len;
  int err;
  const char *what;
};

/*
 * Sends the request and collects every reply datagram, concatenated, up to the one that ends the answer to the
 * request's sequence number. Datagrams for other sequence numbers (a late answer) are dropped.
 */
static void transact_run(napi_env env, void *data) {
  (void)env;
  struct transaction *t = data;
  uint32_t seq = ((struct nlmsghdr *)t->req)->nlmsg_seq;
  struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
  if (sendto(t->fd, t->req, t->req_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) { t->err = errno; t->what = "sending to netlink"; return; }
  int64_t deadline = now_ms() + t->timeout;
  t->what = "reading from netlink";
  for (;;) {
    int64_t left = deadline - now_ms();
    struct pollfd p = { .fd = t->fd, .events = POLLIN };
    int ready = left > 0 ? poll(&p, 1, (int)left) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) { t->err = ready == 0 ? ETIMEDOUT : errno; t->what = "waiting for the kernel's netlink answer"; return; }
    ssize_t n = recv(t->fd, NULL, 0, MSG_PEEK | MSG_TRUNC);
    if (n < 0) { if (errno == EINTR) continue; t->err = errno; return; }
    char *buf = malloc((size_t)n + 1);
    if (!buf) { t->err = ENOMEM; return; }
    struct sockaddr_nl from;
    socklen_t from_len = sizeof from;
    ssize_t got = recvfrom(t->fd, buf, (size_t)n, 0, (struct sockaddr *)&from, &from_len);
    if (got < 0) { int err = errno; free(buf); if (err == EINTR) continue; t->err = err; return; }
    const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
    if (from.nl_pid != 0 || got < (ssize_t)sizeof *h || h->nlmsg_seq != seq) { free(buf); continue; }
    char *grown = realloc(t->all, t->all_len + (size_t)got);
    if (!grown) { free(buf); t->err = ENOMEM; return; }
    t->all = grown;
    memcpy(t->all + t->all_len, buf, (size_t)got);
    t->all_len += (size_t)got;
    int done = answered(buf, (size_t)got, seq);
    free(buf);
    if (done) return;
  }
}

static void transact_done(napi_env env, napi_status status, void *data) {
  struct transaction *t = data;
  napi_value out;
  if (status == napi_ok && t->err == 0) {
    void *copy;
    if (napi_create_buffer_copy(env, t->all_len, t->all ? t->all : "", &copy, &out) == napi_ok) napi_resolve_deferred(env, t->deferred, out);
    else { t->err = ENOMEM; t->what = "copying the netlink answer"; }
  }
  if (status != napi_ok || t->err != 0) {
    char msg[256], name[32];
    int err = t->err ? t->err : ECANCELED;
    snprintf(msg, sizeof msg, "%s: %s", t->what ? t->what : "netlink", strerror(err));
    snprintf(name, sizeof name, "%d", err);
    napi_value code, text;
    napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
    napi_create_error(env, code, text, &out);
    napi_reject_deferred(env, t->deferred, out);
  }
  napi_delete_async_work(env, t->work);
  free(t->req);
  free(t->all);
  free(t);
}

/* transact(fd, request, timeoutMs) -> Promise<Buffer>: see transact_run. The socket must stay open until it settles. */
static napi_value nl_transact(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd, timeout;
  void *req;
  size_t req_len;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || arg_int(env, argv[0], &fd) || napi_get_buffer_info(env, argv[1], &req, &req_len) != napi_ok || arg_int(env, argv[2], &timeout) || req_len < sizeof(struct nlmsghdr)) {
    napi_throw_type_error(env, NULL, "transact(fd, request, timeoutMs)");
    return NULL;
  }
  struct transaction *t = calloc(1, sizeof *t);
  if (!t || !(t->req = malloc(req_len))) { free(t); return throw_errno(env, "transact", ENOMEM); }
  memcpy(t->req, req, req_len);
  t->req_len = req_len;
  t->fd = fd;
  t->timeout = timeout;
  napi_value promise, name;
  CHECK(napi_create_promise(env, &t->deferred, &promise));
  CHECK(napi_create_string_utf8(env, "rtnetlink.transact", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_async_work(env, NULL, name, transact_run, transact_done, t, &t->work));
  CHECK(napi_queue_async_work(env, t->work));
  return promise;
}

static napi_value nl_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_int(env, argv[0], &fd)) { napi_throw_type_error(env, NULL, "close(fd)"); return NULL; }
  close(fd);
  return NULL;
}

/*
 * writeInNetns(netnsFd, path, data) -> 0 or an errno. /proc/sys/net resolves to the namespace of whoever opens
 * it, so the file is opened inside the namespace and written after coming back. O_NOFOLLOW: the caller names
 * /proc/sys/net files only, which are never links.
 */
static napi_value write_in_netns(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t ns;
  char path[512];
  size_t path_len;
  void *data;
  size_t data_len;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || arg_int(env, argv[0], &ns) || napi_get_value_string_utf8(env, argv[1], path, sizeof path, &path_len) != napi_ok ||
      path_len >= sizeof path - 1 || napi_get_buffer_info(env, argv[2], &data, &data_len) != napi_ok) {
    napi_throw_type_error(env, NULL, "writeInNetns(netnsFd, path, data)");
    return NULL;
  }
  int back, err = enter(ns, &back);
  int fd = -1;
  if (!err) {
    fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    err = fd < 0 ? errno : 0;
    leave(back);
  }
  if (!err) {
    ssize_t n = write(fd, data, data_len);
    err = n < 0 ? errno : (size_t)n != data_len ? EIO : 0;
    close(fd);
  }
  napi_value out;
  CHECK(napi_create_int32(env, err, &out));
  return out;
}

static napi_value str_error(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t err;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_int(env, argv[0], &err)) { napi_throw_type_error(env, NULL, "strerror(errno)"); return NULL; }
  napi_value out;
  CHECK(napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &out));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "open", NULL, nl_open, NULL, NULL, NULL, napi_default, NULL },
    { "transact", NULL, nl_transact, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, nl_close, NULL, NULL, NULL, napi_default, NULL },
    { "writeInNetns", NULL, write_in_netns, NULL, NULL, NULL, napi_default, NULL },
    { "strerror", NULL, str_error, NULL, NULL, NULL, napi_default, NULL },
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
