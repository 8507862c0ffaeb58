#include "exchange/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "util/error.h"

namespace cidrun::http {
namespace {

// Non-200 bodies are only kept for the error message.
constexpr size_t kErrorBodyCap = 64 * 1024;

struct Transfer {
  Request req;
  Response resp;
  std::promise<Response> promise;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  curl_mime* mime = nullptr;
  std::string abort_reason;  // set when we (not the network) ended the transfer
  char errbuf[CURL_ERROR_SIZE] = {};

  ~Transfer() {
    // The handle first: it still points at the mime body and the header list.
    if (easy) curl_easy_cleanup(easy);
    if (mime) curl_mime_free(mime);
    if (headers) curl_slist_free_all(headers);
  }
};

size_t on_write(char* data, size_t size, size_t n, void* arg) {
  auto* t = static_cast<Transfer*>(arg);
  size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  ByteView chunk(reinterpret_cast<const uint8_t*>(data), len);
  if (status != 200) {
    size_t room = kErrorBodyCap - std::min(kErrorBodyCap, t->resp.body.size());
    t->resp.body.insert(t->resp.body.end(), chunk.begin(), chunk.begin() + std::min(room, len));
    return len;
  }
  if (t->req.on_body) {
    try {
      if (!t->req.on_body(chunk)) {
        if (t->abort_reason.empty()) t->abort_reason = "stopped by the receiver";
        return 0;
      }
    } catch (const std::exception& e) {
      t->abort_reason = e.what();
      return 0;
    }
    return len;
  }
  if (t->req.max_body && t->resp.body.size() + len > t->req.max_body) {
    t->abort_reason = "response larger than " + std::to_string(t->req.max_body) + " bytes";
    return 0;
  }
  t->resp.body.insert(t->resp.body.end(), chunk.begin(), chunk.end());
  return len;
}

size_t on_upload(char* buf, size_t size, size_t n, void* arg) {
  auto* t = static_cast<Transfer*>(arg);
  try {
    return t->req.upload(reinterpret_cast<uint8_t*>(buf), size * n);
  } catch (const std::exception& e) {
    t->abort_reason = e.what();
    return CURL_READFUNC_ABORT;
  }
}

}  // namespace

std::string Response::describe() const {
  if (!error.empty()) return error;
  std::string s = "HTTP " + std::to_string(status);
  if (status >= 300 && status < 400) {
    return s + ": redirect" + (location.empty() ? "" : " to " + location) + " refused";
  }
  std::string_view text = as_string(body);
  text = text.substr(0, std::min<size_t>(text.find('\n'), 200));
  if (!text.empty()) s += ": " + std::string(text);
  return s;
}

struct Client::Impl {
  CURLM* multi = nullptr;
  std::mutex mu;
  std::vector<std::unique_ptr<Transfer>> pending;
  std::vector<std::unique_ptr<Transfer>> running;
  bool stop = false;
  std::thread loop;

  Impl() {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    multi = curl_multi_init();
    if (!multi) throw Error("libcurl: cannot create a multi handle");
    // Connections are per host and reused; this bounds what one busy source can take.
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 128L);
    loop = std::thread([this] { run(); });
  }

  ~Impl() {
    {
      std::lock_guard l(mu);
      stop = true;
    }
    curl_multi_wakeup(multi);
    loop.join();
    curl_multi_cleanup(multi);
  }

  void add(std::unique_ptr<Transfer> t) {
    {
      std::lock_guard l(mu);
      if (stop) throw Error("HTTP client is shutting down");
      pending.push_back(std::move(t));
    }
    curl_multi_wakeup(multi);
  }

  void finish(Transfer* t, CURLcode result) {
    Response& r = t->resp;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &r.status);
    char* ct = nullptr;
    if (curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
      r.content_type = ct;
    char* loc = nullptr;
    if (curl_easy_getinfo(t->easy, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
      r.location = loc;
    if (result != CURLE_OK) {
      if (!t->abort_reason.empty()) {
        r.error = t->abort_reason;
      } else if (result == CURLE_FILESIZE_EXCEEDED) {
        r.error = "response larger than " + std::to_string(t->req.max_body) + " bytes";
      } else {
        r.error = std::string(curl_easy_strerror(result));
        if (t->errbuf[0]) r.error += ": " + std::string(t->errbuf);
      }
      r.error = t->req.url + ": " + r.error;
    }
    t->promise.set_value(std::move(r));
  }

  void run() {
    for (;;) {
      {
        std::lock_guard l(mu);
        if (stop) break;
        for (auto& t : pending) {
          curl_multi_add_handle(multi, t->easy);
          running.push_back(std::move(t));
        }
        pending.clear();
      }
      int still = 0;
      curl_multi_perform(multi, &still);
      int left = 0;
      while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
        if (m->msg != CURLMSG_DONE) continue;
        CURL* easy = m->easy_handle;
        CURLcode result = m->data.result;
        curl_multi_remove_handle(multi, easy);
        auto it = std::find_if(running.begin(), running.end(),
                               [&](const auto& t) { return t->easy == easy; });
        if (it == running.end()) continue;
        std::unique_ptr<Transfer> t = std::move(*it);
        running.erase(it);
        finish(t.get(), result);
      }
      curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
    }
    // Shutting down: whoever still waits gets an error rather than a hang.
    std::lock_guard l(mu);
    for (auto* list : {&running, &pending}) {
      for (auto& t : *list) {
        curl_multi_remove_handle(multi, t->easy);
        t->resp.error = t->req.url + ": HTTP client shut down";
        t->promise.set_value(std::move(t->resp));
      }
      list->clear();
    }
  }
};

Client::Client() : impl_(std::make_unique<Impl>()) {}
Client::~Client() = default;

Client& Client::shared() {
  static Client client;
  return client;
}

std::future<Response> Client::start(Request req) {
  auto t = std::make_unique<Transfer>();
  t->req = std::move(req);
  CURL* e = curl_easy_init();
  if (!e) throw Error("libcurl: cannot create a handle");
  t->easy = e;
  const Request& q = t->req;
  curl_easy_setopt(e, CURLOPT_URL, q.url.c_str());
  curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, q.connect_timeout_ms);
  if (q.total_timeout_ms > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, q.total_timeout_ms);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, q.stall_bytes);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, q.stall_secs);
  // Large receive buffers: fewer callbacks per MiB when a CAR streams at loopback speed.
  curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(e, CURLOPT_USERAGENT, "cidrun");
  if (q.max_body && !q.on_body) {
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(q.max_body));
  }
  if (q.method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (q.method == "POST") {
    if (q.upload) {
      t->mime = curl_mime_init(e);
      curl_mimepart* part = curl_mime_addpart(t->mime);
      curl_mime_name(part, "file");
      curl_mime_filename(part, "data");
      curl_mime_type(part, "application/octet-stream");
      curl_mime_data_cb(part, -1, on_upload, nullptr, nullptr, t.get());
      curl_easy_setopt(e, CURLOPT_MIMEPOST, t->mime);
    } else {
      curl_easy_setopt(e, CURLOPT_POST, 1L);
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
    }
  } else if (q.method != "GET") {
    throw Error("HTTP method " + q.method + " is not supported");
  }
  for (const auto& h : q.headers) t->headers = curl_slist_append(t->headers, h.c_str());
  // Kubo and some gateways answer slowly to "Expect: 100-continue"; we never need it.
  t->headers = curl_slist_append(t->headers, "Expect:");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  auto fut = t->promise.get_future();
  impl_->add(std::move(t));
  return fut;
}

std::string url_escape(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace cidrun::http
