#include "server/server_metrics.h"

#include <cmath>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/metrics/process_metrics.h"

#ifndef LSTMSERVE_VERSION
#define LSTMSERVE_VERSION "unknown"
#endif
#ifndef LSTMSERVE_COMMIT
#define LSTMSERVE_COMMIT "unknown"
#endif

namespace lstmserve::server {
namespace {

using metrics::FamilyDesc;
using metrics::MetricType;

// Request latencies: 50 us to 10 s.
const std::vector<double> kLatencyBounds = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};

// The core keeps log2 buckets: [k] counts values in (2^(k-1), 2^k], [0]
// values <= 1. `max_k` bounds are declared (2^0 .. 2^max_k times `unit`);
// anything above goes to +Inf.
std::vector<double> Log2Bounds(int max_k, double unit) {
  std::vector<double> bounds;
  for (int k = 0; k <= max_k; ++k) bounds.push_back(std::ldexp(unit, k));
  return bounds;
}
std::vector<uint64_t> Log2Counts(const std::vector<int64_t>& histogram,
                                 int max_k) {
  std::vector<uint64_t> counts(max_k + 2, 0);
  for (size_t k = 0; k < histogram.size(); ++k) {
    const size_t bucket = std::min<size_t>(k, max_k + 1);
    counts[bucket] += static_cast<uint64_t>(histogram[k]);
  }
  return counts;
}

constexpr int kWaitMaxK = 24;   // 2^24 us: 16.8 s
constexpr int kBatchMaxK = 16;  // 65536, the largest --max-batch

std::string CodeName(absl::StatusCode code) {
  return absl::StatusCodeToString(code);  // "OK", "NOT_FOUND", ...
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerMetrics>> ServerMetrics::Create(
    SessionManager& core) {
  auto m = std::unique_ptr<ServerMetrics>(new ServerMetrics(core));
  metrics::Registry& r = m->registry_;
  absl::StatusOr<metrics::CounterFamily*> requests = r.AddCounter(
      "lstmserve_requests_total",
      "Requests answered: unary calls, and stream messages (method "
      "\"Stream\"), by method, model (empty when the request named no "
      "served model) and gRPC status code.",
      {"method", "model", "code"});
  if (!requests.ok()) return requests.status();
  m->requests_ = *requests;
  absl::StatusOr<metrics::HistogramFamily*> latency = r.AddHistogram(
      "lstmserve_request_duration_seconds",
      "Time from a request's arrival to its answer: a unary call, or one "
      "stream message (read to response queued).",
      {"method"}, kLatencyBounds);
  if (!latency.ok()) return latency.status();
  m->latency_ = *latency;
  if (absl::Status s = m->RegisterCoreCollector(); !s.ok()) return s;
  if (absl::Status s = metrics::RegisterProcessCollector(r); !s.ok()) return s;
  if (absl::Status s =
          metrics::RegisterBuildInfo(r, LSTMSERVE_VERSION, LSTMSERVE_COMMIT);
      !s.ok()) {
    return s;
  }
  return m;
}

void ServerMetrics::RecordRequest(absl::string_view method,
                                  absl::string_view model,
                                  absl::StatusCode code,
                                  absl::Duration latency) {
  requests_
      ->WithLabels({std::string(method), std::string(model), CodeName(code)})
      .Increment();
  latency_->WithLabels({std::string(method)})
      .Observe(absl::ToDoubleSeconds(latency));
}

absl::Status ServerMetrics::RegisterCoreCollector() {
  const std::vector<std::string> mv = {"model", "version"};
  std::vector<FamilyDesc> families = {
      {"lstmserve_steps_total", MetricType::kCounter,
       "Steps run by the engine.", mv},
      {"lstmserve_chunks_total", MetricType::kCounter,
       "Chunks completed (run, answered from the replay record, or failed).",
       mv},
      {"lstmserve_batches_total", MetricType::kCounter,
       "Engine calls (batches of chunks of different sessions).", mv},
      {"lstmserve_batch_size", MetricType::kHistogram,
       "Chunks per engine call.", mv, Log2Bounds(kBatchMaxK, 1)},
      {"lstmserve_queue_wait_seconds", MetricType::kHistogram,
       "Time a chunk waited between its arrival and the engine.", mv,
       Log2Bounds(kWaitMaxK, 1e-6)},
      {"lstmserve_compute_seconds", MetricType::kHistogram,
       "Time of one engine call.", mv, Log2Bounds(kWaitMaxK, 1e-6)},
      {"lstmserve_queue_rejected_total", MetricType::kCounter,
       "Chunks refused because the queue was full (--max-queued-steps).", mv},
      {"lstmserve_chunks_expired_total", MetricType::kCounter,
       "Chunks dropped from the queue: cancelled or past their deadline.", mv},
      {"lstmserve_sessions", MetricType::kGauge,
       "Sessions held now, by the model version they run on.", mv},
      {"lstmserve_session_state_bytes", MetricType::kGauge,
       "Bytes of recurrent state held for all sessions (state floats x 4)."},
      {"lstmserve_sessions_created_total",
       MetricType::kCounter,
       "Sessions made, by how: create (CreateSession), stream (a stream "
       "message's create_model), import (ImportSession), restore (from the "
       "state store at start).",
       {"via"}},
      {"lstmserve_sessions_ended_total",
       MetricType::kCounter,
       "Sessions ended, by reason: closed (CloseSession), idle (unused past "
       "--session-idle-timeout), reload (their version's drain time "
       "passed).",
       {"reason"}},
      {"lstmserve_sessions_refused_total",
       MetricType::kCounter,
       "Sessions not created, by reason: limit (--max-sessions).",
       {"reason"}},
      {"lstmserve_queued_steps", MetricType::kGauge,
       "Steps waiting for a worker now."},
      {"lstmserve_model_versions",
       MetricType::kGauge,
       "Versions of a model served now.",
       {"model"}},
      {"lstmserve_model_versions_draining", MetricType::kGauge,
       "Unloaded versions whose sessions still run."},
      {"lstmserve_checkpoints_total", MetricType::kCounter,
       "Checkpoint transactions committed to the state store (--state-dir)."},
      {"lstmserve_checkpoint_failures_total", MetricType::kCounter,
       "Checkpoint transactions that failed (their writes are retried)."},
      {"lstmserve_checkpoint_records_total", MetricType::kCounter,
       "Session records written to the state store."},
      {"lstmserve_checkpoint_written_bytes_total", MetricType::kCounter,
       "Bytes of state and replay records written to the state store."},
      {"lstmserve_checkpoint_duration_seconds", MetricType::kGauge,
       "Duration of the last committed checkpoint transaction."},
      {"lstmserve_checkpoint_last_success_timestamp_seconds",
       MetricType::kGauge,
       "Unix time of the last committed checkpoint transaction."},
      {"lstmserve_checkpoint_pending_records", MetricType::kGauge,
       "Session records waiting to be written (failed ones included)."},
  };
  SessionManager& core = core_;
  return registry_.AddCollector(
      std::move(families), [&core](metrics::SampleSink& out) {
        for (const ModelStats& s : core.Stats()) {
          const metrics::LabelValues labels{s.model, absl::StrCat(s.version)};
          out.SetCounter("lstmserve_steps_total", labels, s.steps)
              .IgnoreError();
          out.SetCounter("lstmserve_chunks_total", labels, s.requests)
              .IgnoreError();
          out.SetCounter("lstmserve_batches_total", labels, s.batches)
              .IgnoreError();
          out.SetHistogram("lstmserve_batch_size", labels,
                           Log2Counts(s.batch_size_histogram, kBatchMaxK),
                           static_cast<double>(s.batched_chunks))
              .IgnoreError();
          out.SetHistogram("lstmserve_queue_wait_seconds", labels,
                           Log2Counts(s.queue_wait_histogram, kWaitMaxK),
                           s.queue_wait_us_total * 1e-6)
              .IgnoreError();
          out.SetHistogram("lstmserve_compute_seconds", labels,
                           Log2Counts(s.compute_histogram, kWaitMaxK),
                           s.compute_us_total * 1e-6)
              .IgnoreError();
          out.SetCounter("lstmserve_queue_rejected_total", labels, s.rejected)
              .IgnoreError();
          out.SetCounter("lstmserve_chunks_expired_total", labels, s.expired)
              .IgnoreError();
        }
        double state_bytes = 0;
        for (const auto& [version, count] : core.SessionsByVersion()) {
          out.SetGauge("lstmserve_sessions",
                       {version.first, absl::StrCat(version.second)}, count)
              .IgnoreError();
          auto m = core.models().Get(version.first, version.second);
          if (m.ok()) state_bytes += 4.0 * count * (*m)->model->state_size();
        }
        out.SetGauge("lstmserve_session_state_bytes", {}, state_bytes)
            .IgnoreError();
        const SessionManager::SessionCounters c = core.Counters();
        for (const auto& [via, n] :
             std::map<std::string, int64_t>{{"create", c.created},
                                            {"stream", c.created_on_stream},
                                            {"import", c.imported},
                                            {"restore", c.restored}}) {
          out.SetCounter("lstmserve_sessions_created_total", {via}, n)
              .IgnoreError();
        }
        for (const auto& [reason, n] :
             std::map<std::string, int64_t>{{"closed", c.closed},
                                            {"idle", c.expired},
                                            {"reload", c.reloaded}}) {
          out.SetCounter("lstmserve_sessions_ended_total", {reason}, n)
              .IgnoreError();
        }
        out.SetCounter("lstmserve_sessions_refused_total", {"limit"}, c.refused)
            .IgnoreError();
        out.SetGauge("lstmserve_queued_steps", {}, core.queued_steps())
            .IgnoreError();
        for (const std::string& name : core.models().Names()) {
          out.SetGauge("lstmserve_model_versions", {name},
                       core.models().Versions(name).size())
              .IgnoreError();
        }
        out.SetGauge("lstmserve_model_versions_draining", {},
                     core.draining_versions())
            .IgnoreError();
        if (core.has_store()) {
          const StoreWriter::Stats st = core.StoreStats();
          out.SetCounter("lstmserve_checkpoints_total", {}, st.commits)
              .IgnoreError();
          out.SetCounter("lstmserve_checkpoint_failures_total", {}, st.failures)
              .IgnoreError();
          out.SetCounter("lstmserve_checkpoint_records_total", {}, st.records)
              .IgnoreError();
          out.SetCounter("lstmserve_checkpoint_written_bytes_total", {},
                         st.bytes)
              .IgnoreError();
          out.SetGauge("lstmserve_checkpoint_duration_seconds", {},
                       absl::ToDoubleSeconds(st.last_duration))
              .IgnoreError();
          if (st.last_success != absl::InfinitePast()) {
            out.SetGauge("lstmserve_checkpoint_last_success_timestamp_seconds",
                         {}, absl::ToUnixMicros(st.last_success) * 1e-6)
                .IgnoreError();
          }
          out.SetGauge("lstmserve_checkpoint_pending_records", {}, st.pending)
              .IgnoreError();
        }
      });
}

}  // namespace lstmserve::server
