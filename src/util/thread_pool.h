// A fixed pool of worker threads for CPU-bound work (hashing leaves in parallel). Tasks return
// values through std::future; exceptions travel with them.
#pragma once

#include <signal.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace cidrun {

// A thread that takes no signals (it starts with all of them blocked): helper threads must not
// take a signal meant for the command, such as the SIGCHLD of the container it waits for (lost:
// the wait never ends) or a SIGTERM it forwards (acted on: the command dies instead). The
// library layers (util, net, exchange, p2p) start their threads through this.
class AllSignalsBlocked {  // in this thread, for the guard's lifetime
 public:
  AllSignalsBlocked();
  ~AllSignalsBlocked();
  AllSignalsBlocked(const AllSignalsBlocked&) = delete;
  AllSignalsBlocked& operator=(const AllSignalsBlocked&) = delete;

 private:
  sigset_t saved_{};
};
template <typename F>
std::thread signal_free_thread(F&& fn) {
  AllSignalsBlocked blocked;  // the new thread inherits the mask
  return std::thread(std::forward<F>(fn));
}

class ThreadPool {
 public:
  explicit ThreadPool(unsigned threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  template <typename F>
  auto submit(F&& f) -> std::future<decltype(f())> {
    using R = decltype(f());
    auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(f));
    std::future<R> fut = task->get_future();
    {
      std::lock_guard lock(mu_);
      queue_.emplace_back([task] { (*task)(); });
    }
    cv_.notify_one();
    return fut;
  }

  unsigned size() const { return static_cast<unsigned>(workers_.size()); }
  // A process-wide pool sized to the machine's cores.
  static ThreadPool& shared();

 private:
  void work();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> workers_;
  bool stop_ = false;
};

}  // namespace cidrun
