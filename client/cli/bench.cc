#include "client/cli/bench.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "nlohmann/json.hpp"

namespace lstmserve::client::cli {
namespace {

using Clock = std::chrono::steady_clock;

// What one session saw. Each session's results arrive one at a time, so
// only the run's end reads these across threads (after joining).
struct SessionLoad {
  std::vector<float> inputs;
  std::vector<double> latency_ms;         // completed in the measured window
  std::map<std::string, int64_t> errors;  // by code, in the window
  std::map<std::string, int64_t> late_errors;  // by code, after it
  int64_t completed = 0;                       // answered in the window
  int64_t late = 0;                            // answered after it
  Clock::time_point stop_at;
};

// Unary mode blocks a thread per session.
constexpr int kMaxUnarySessions = 1000;

std::string CodeName(const absl::Status& s) {
  std::string name = absl::StatusCodeToString(s.code());
  for (char& c : name) c = static_cast<char>(std::toupper(c));
  return name;
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(
      v.size() - 1, static_cast<size_t>(std::ceil(p / 100.0 * v.size())) - 1);
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

// The batch sizes the server ran for `model` between two snapshots.
struct BatchDelta {
  std::vector<int64_t> histogram;  // bucket k: sizes in (2^(k-1), 2^k]
  int64_t batches = 0;
  int64_t requests = 0;
  int64_t compute_us = 0;     // engine time
  int64_t queue_wait_us = 0;  // summed over requests
};

BatchDelta Delta(const ServerStats& before, const ServerStats& after,
                 const std::string& model, int64_t version) {
  auto find = [&](const ServerStats& s) -> const ModelStats* {
    for (const ModelStats& m : s.models) {
      if (m.model == model && m.version == version) return &m;
    }
    return nullptr;
  };
  BatchDelta d;
  const ModelStats* a = find(after);
  if (!a) return d;
  const ModelStats* b = find(before);
  d.histogram = a->batch_size_histogram;
  for (size_t k = 0; b && k < b->batch_size_histogram.size(); ++k) {
    d.histogram[k] -= b->batch_size_histogram[k];
  }
  d.batches = a->batches - (b ? b->batches : 0);
  d.requests = a->requests - (b ? b->requests : 0);
  d.compute_us = a->compute_us_total - (b ? b->compute_us_total : 0);
  d.queue_wait_us = a->queue_wait_us_total - (b ? b->queue_wait_us_total : 0);
  return d;
}

std::string BucketLabel(size_t k) {
  if (k == 0) return "1";
  if (k == 1) return "2";
  return absl::StrCat((int64_t{1} << (k - 1)) + 1, "-", int64_t{1} << k);
}

}  // namespace

int ThreadCount() {
  int n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/task", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

absl::Status BenchCommand(Client& client, const BenchOptions& o,
                          std::ostream& out, std::ostream& progress) {
  if (o.sessions < 1 || o.chunk < 1 || o.rate < 0 || !(o.duration_s > 0) ||
      !(o.drain_s >= 0) || (o.mode != "stream" && o.mode != "unary")) {
    return absl::InvalidArgumentError(
        "--sessions and --chunk must be at least 1, --rate and --drain at "
        "least 0, --duration positive and --mode stream or unary");
  }
  if (o.mode == "unary" && o.sessions > kMaxUnarySessions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--mode unary runs one blocking thread per session: at most ",
        kMaxUnarySessions, " sessions (use --mode stream for more)"));
  }
  if (o.create_on_stream && o.mode != "stream") {
    return absl::InvalidArgumentError("--create-on-stream needs --mode stream");
  }
  absl::StatusOr<ModelInfo> info = client.GetModel(o.model, o.version);
  if (!info.ok()) return info.status();

  // Sessions, each with its own random chunk (values do not matter here).
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<SessionLoad> loads(o.sessions);
  std::vector<std::unique_ptr<StreamingSession>> streams;
  std::vector<std::unique_ptr<Session>> unary;
  const std::string id_prefix = absl::StrFormat(
      "bench-%d-%d-", getpid(), static_cast<int>(rng() % 100000));
  for (int i = 0; i < o.sessions; ++i) {
    SessionLoad& load = loads[i];
    load.inputs.resize(static_cast<size_t>(o.chunk) * info->input_size);
    for (float& x : load.inputs) x = normal(rng);
    OpenSessionOptions open;
    open.model = info->name;
    open.version = info->version;
    // With --create-on-stream the first stream message creates the session
    // (create_model); otherwise CreateSession makes it first.
    if (o.create_on_stream) open.session_id = absl::StrCat(id_prefix, i);
    if (o.mode == "stream") {
      absl::StatusOr<std::unique_ptr<StreamingSession>> s =
          client.OpenStream(open);
      if (!s.ok()) return s.status();
      streams.push_back(*std::move(s));
    } else {
      absl::StatusOr<std::unique_ptr<Session>> s = client.OpenSession(open);
      if (!s.ok()) return s.status();
      unary.push_back(*std::move(s));
    }
  }

  absl::StatusOr<ServerStats> before = client.GetServerStats();
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(o.duration_s));
  std::atomic<int64_t> completed{0};
  std::atomic<bool> sending{true};
  const auto interval = o.rate > 0
                            ? std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(1.0 / o.rate))
                            : Clock::duration::zero();

  // Results of one session arrive one at a time (in send order), so its
  // SessionLoad needs no lock; the report reads them after every session
  // has been closed.
  auto record = [&](SessionLoad& load, Clock::time_point sent,
                    const absl::StatusOr<StepResult>& r) {
    const auto now = Clock::now();
    if (!r.ok()) {  // counted whenever it comes: an error is never dropped
      ++(now > end ? load.late_errors : load.errors)[CodeName(r.status())];
      return;
    }
    if (now > end) {
      ++load.late;
      return;  // throughput and latency count the window only
    }
    load.latency_ms.push_back(
        std::chrono::duration<double, std::milli>(now - sent).count());
    ++load.completed;
    completed.fetch_add(1, std::memory_order_relaxed);
  };

  std::vector<std::thread> drivers;
  std::vector<std::shared_ptr<std::function<void()>>> loops;
  if (o.mode == "stream" && o.rate == 0) {
    // Closed loop, no thread per session: each result sends the session's
    // next chunk from the callback.
    for (int i = 0; i < o.sessions; ++i) {
      auto send = std::make_shared<std::function<void()>>();
      StreamingSession* s = streams[i].get();
      SessionLoad* load = &loads[i];
      std::weak_ptr<std::function<void()>> weak = send;
      *send = [s, load, weak, &record, &sending, &o] {
        const auto sent = Clock::now();
        s->Send(load->inputs, o.chunk,
                [load, sent, weak, &record,
                 &sending](absl::StatusOr<StepResult> r) {
                  record(*load, sent, r);
                  if (sending.load() && Clock::now() < load->stop_at) {
                    if (auto next = weak.lock()) (*next)();
                  }
                });
      };
      load->stop_at = end;
      loops.push_back(send);
    }
    for (auto& send : loops) (*send)();
  } else if (o.mode == "stream") {
    // Open loop: one pacing thread sends every session's chunks on time.
    drivers.emplace_back([&] {
      using Due = std::pair<Clock::time_point, int>;
      std::priority_queue<Due, std::vector<Due>, std::greater<Due>> due;
      for (int i = 0; i < o.sessions; ++i) {
        due.emplace(start + interval * i / o.sessions, i);
      }
      while (!due.empty()) {
        auto [at, i] = due.top();
        due.pop();
        if (at >= end) break;
        std::this_thread::sleep_until(at);
        const auto sent = Clock::now();
        SessionLoad& load = loads[i];
        streams[i]->Send(load.inputs, o.chunk,
                         [&load, sent, &record](absl::StatusOr<StepResult> r) {
                           record(load, sent, r);
                         });
        due.emplace(at + interval, i);
      }
    });
  } else {
    // Unary calls block: one driver thread per session.
    for (int i = 0; i < o.sessions; ++i) {
      drivers.emplace_back([&, i] {
        SessionLoad& load = loads[i];
        auto next = start + (interval.count() > 0 ? interval * i / o.sessions
                                                  : Clock::duration::zero());
        while (true) {
          if (interval.count() > 0) std::this_thread::sleep_until(next);
          const auto sent = Clock::now();
          if (sent >= end) break;
          record(load, sent, unary[i]->Step(load.inputs, o.chunk));
          next += interval;
        }
      });
    }
  }
  const int threads_running = ThreadCount();

  // Progress for runs longer than a few seconds.
  if (o.duration_s > 3) {
    int64_t last = 0;
    for (auto tick = start + std::chrono::seconds(1); tick < end;
         tick += std::chrono::seconds(1)) {
      std::this_thread::sleep_until(tick);
      const int64_t now_done = completed.load(std::memory_order_relaxed);
      progress << absl::StrFormat(
                      "bench: %.0f/%.0f s, %.0f steps/s\n",
                      std::chrono::duration<double>(tick - start).count(),
                      o.duration_s,
                      static_cast<double>(now_done - last) * o.chunk)
               << std::flush;
      last = now_done;
    }
  }
  std::this_thread::sleep_until(end);
  sending.store(false);
  for (std::thread& t : drivers) t.join();
  // Chunks still unanswered get --drain seconds; then they are cancelled, so
  // closing is bounded however the server behaves.
  const auto drain_until =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(o.drain_s));
  auto flush_all = std::async(std::launch::async, [&] {
    for (auto& s : streams) s->Flush();
  });
  const bool drained =
      flush_all.wait_until(drain_until) == std::future_status::ready;
  if (!drained) {
    for (auto& s : streams) s->Cancel();
  }
  flush_all.wait();
  for (auto& s : streams) s->Close().IgnoreError();
  loops.clear();
  const double elapsed = o.duration_s;
  absl::StatusOr<ServerStats> after = client.GetServerStats();
  for (auto& s : streams) client.CloseSession(s->id()).IgnoreError();
  for (auto& s : unary) s->Close().IgnoreError();

  std::vector<double> latencies;
  std::map<std::string, int64_t> errors, late_errors;
  std::vector<int64_t> per_session;
  int64_t requests = 0, late = 0, idle_sessions = 0;
  for (SessionLoad& load : loads) {
    latencies.insert(latencies.end(), load.latency_ms.begin(),
                     load.latency_ms.end());
    for (const auto& [code, n] : load.errors) errors[code] += n;
    for (const auto& [code, n] : load.late_errors) late_errors[code] += n;
    requests += load.completed;
    late += load.late;
    per_session.push_back(load.completed * o.chunk);
    if (load.completed == 0) ++idle_sessions;
  }
  std::sort(per_session.begin(), per_session.end());
  const int64_t steps_min = per_session.front(),
                steps_median = per_session[per_session.size() / 2],
                steps_max = per_session.back();
  double max_ms = 0;
  for (double v : latencies) max_ms = std::max(max_ms, v);
  const double p50 = Percentile(latencies, 50), p90 = Percentile(latencies, 90),
               p99 = Percentile(latencies, 99);
  const double requests_per_s = requests / elapsed;
  const double steps_per_s = requests_per_s * o.chunk;
  const bool stats_known = before.ok() && after.ok();
  if (!stats_known) {
    progress << "bench: warning: GetServerStats failed ("
             << (before.ok() ? after.status() : before.status()).ToString()
             << "); the server's batch figures are unknown\n";
  }
  BatchDelta batches;
  if (stats_known) batches = Delta(*before, *after, info->name, info->version);
  const double batch_mean =
      batches.batches > 0
          ? static_cast<double>(batches.requests) / batches.batches
          : 0;
  const double compute_us_per_batch =
      batches.batches > 0
          ? static_cast<double>(batches.compute_us) / batches.batches
          : 0;
  const double queue_wait_us_mean =
      batches.requests > 0
          ? static_cast<double>(batches.queue_wait_us) / batches.requests
          : 0;
  // Share of the run the server's workers spent in the engine, by the
  // server's own accounting.
  const double engine_busy = batches.compute_us / (elapsed * 1e6);

  if (o.json) {
    nlohmann::json j;
    j["model"] = info->name;
    j["version"] = info->version;
    j["mode"] = o.mode;
    j["sessions"] = o.sessions;
    j["chunk"] = o.chunk;
    j["rate"] = o.rate;
    j["duration_s"] = elapsed;
    j["requests"] = requests;
    j["steps_per_s"] = steps_per_s;
    j["requests_per_s"] = requests_per_s;
    j["latency_ms"] = {
        {"p50", p50}, {"p90", p90}, {"p99", p99}, {"max", max_ms}};
    j["session_steps"] = {
        {"min", steps_min}, {"median", steps_median}, {"max", steps_max}};
    j["sessions_with_no_steps"] = idle_sessions;
    j["answered_after_window"] = late;
    j["drained"] = drained;
    j["client_threads"] = threads_running;
    j["errors"] = nlohmann::json::object();
    for (const auto& [code, n] : errors) j["errors"][code] = n;
    j["errors_after_window"] = nlohmann::json::object();
    for (const auto& [code, n] : late_errors) {
      j["errors_after_window"][code] = n;
    }
    if (stats_known) {
      j["batch_size_mean"] = batch_mean;
      j["batches"] = batches.batches;
      j["server_compute_us_per_batch"] = compute_us_per_batch;
      j["server_queue_wait_us_mean"] = queue_wait_us_mean;
      j["server_engine_busy"] = engine_busy;
      nlohmann::json hist = nlohmann::json::object();
      for (size_t k = 0; k < batches.histogram.size(); ++k) {
        if (batches.histogram[k] > 0) {
          hist[BucketLabel(k)] = batches.histogram[k];
        }
      }
      j["batch_size_histogram"] = hist;
    } else {
      j["server_stats"] = "unknown";
    }
    out << j.dump() << '\n';
    return absl::OkStatus();
  }
  out << absl::StrFormat(
      "model %s v%d, %s, %d sessions, chunk %d, %s, %.1f s\n"
      "throughput:  %.0f steps/s, %.0f requests/s\n"
      "latency ms:  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n"
      "per session: steps min %d  median %d  max %d; %d sessions completed "
      "nothing\n",
      info->name, info->version, o.mode, o.sessions, o.chunk,
      o.rate > 0 ? absl::StrFormat("%.1f req/s per session", o.rate)
                 : std::string("closed loop"),
      elapsed, steps_per_s, requests_per_s, p50, p90, p99, max_ms, steps_min,
      steps_median, steps_max, idle_sessions);
  out << "errors:      ";
  if (errors.empty()) out << "none";
  for (const auto& [code, n] : errors) out << code << " " << n << "  ";
  out << '\n';
  out << absl::StrFormat("after the window: %d answered (not counted)", late);
  for (const auto& [code, n] : late_errors) out << ", " << code << " " << n;
  out << (drained ? "" : "; the rest cancelled after --drain") << '\n';
  out << absl::StrFormat("client threads: %d\n", threads_running);
  if (!stats_known) {
    out << "batches:     unknown (GetServerStats failed)\n";
    return absl::OkStatus();
  }
  out << absl::StrFormat(
      "batches (from the server's own statistics): %d engine calls, mean "
      "size %.1f, %.0f us each; queue wait %.0f us mean; engine busy %.0f%% "
      "of one worker\n",
      batches.batches, batch_mean, compute_us_per_batch, queue_wait_us_mean,
      100 * engine_busy);
  for (size_t k = 0; k < batches.histogram.size(); ++k) {
    if (batches.histogram[k] > 0) {
      out << absl::StrFormat("  size %-9s %d\n", BucketLabel(k),
                             batches.histogram[k]);
    }
  }
  return absl::OkStatus();
}

}  // namespace lstmserve::client::cli
