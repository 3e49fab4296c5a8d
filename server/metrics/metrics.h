// A small Prometheus client library: a Registry of metric families
// (counters, gauges, histograms) whose children are updated with atomics on
// hot paths, collectors that compute samples at scrape time, and Render(),
// the text exposition format 0.0.4 of all of it. No gRPC, no protobuf.
//
//   Registry registry;
//   CounterFamily* requests = *registry.AddCounter(
//       "lstmserve_requests_total", "Requests by method and code.",
//       {"method", "code"});
//   Counter& predict_ok = requests->WithLabels({"Predict", "OK"});  // once
//   predict_ok.Increment();                                 // then, per call
//   std::string text = registry.Render();                   // per scrape
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "server/metrics/desc.h"
#include "server/metrics/exposition.h"

namespace lstmserve::metrics {

template <typename Child>
class Family;
class Registry;

// The values of a family's labels, in the order of its label names:
// WithLabels({"Predict", "OK"}), or from a std::vector<std::string>.
// Any UTF-8 text is a valid value. Thread-safety: a plain value.
class LabelValues {
 public:
  LabelValues() = default;
  LabelValues(std::initializer_list<std::string_view> values)
      : values_(values.begin(), values.end()) {}
  // Implicit, like the list above, so that callers pass values directly.
  LabelValues(std::vector<std::string> values)  // NOLINT(runtime/explicit)
      : values_(std::move(values)) {}

  const std::vector<std::string>& values() const { return values_; }

 private:
  std::vector<std::string> values_;
};

// A monotonic count. Thread-safe and lock-free. Owned by its Family, which
// keeps it for the life of the Registry.
class Counter {
 public:
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void Increment() { integer_.fetch_add(1, std::memory_order_relaxed); }
  // Integer increments are counted exactly (up to 2^64); a negative one is
  // ignored: a counter never goes down.
  template <typename T>
  requires(std::is_integral_v<T> &&
           !std::is_same_v<T, bool>) void Increment(T v) {
    if (v > 0) {
      integer_.fetch_add(static_cast<uint64_t>(v), std::memory_order_relaxed);
    }
  }
  // Fractional increments (seconds, say). Negative, NaN and infinite
  // values are ignored.
  void Increment(double v);

  double Value() const;

 private:
  friend class Family<Counter>;
  Counter() = default;
  void Snapshot(SeriesSnapshot& out) const;

  std::atomic<uint64_t> integer_{0};
  std::atomic<double> real_{0};
};

// A value that goes up and down. Thread-safe and lock-free. Owned by its
// Family, which keeps it for the life of the Registry.
class Gauge {
 public:
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  friend class Family<Gauge>;
  Gauge() = default;
  void Snapshot(SeriesSnapshot& out) const;

  std::atomic<double> value_{0};
};

// Observations counted into the family's fixed buckets. Thread-safe and
// lock-free: Observe() is two relaxed atomic adds after a binary search of
// the bounds. Render() computes _count from the bucket counts, so the
// +Inf bucket always equals _count; _sum may lag by the observations being
// made at that instant. Owned by its Family, which keeps it for the life of
// the Registry.
class Histogram {
 public:
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Counts v in the first bucket whose bound is >= v (+Inf if none) and
  // adds it to the sum. NaN is ignored.
  void Observe(double v);

  uint64_t Count() const;
  double Sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  friend class Family<Histogram>;
  explicit Histogram(const std::vector<double>& bounds);
  void Snapshot(SeriesSnapshot& out) const;

  const std::vector<double>& bounds_;                      // the family's
  const std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_ + 1
  std::atomic<double> sum_{0};
};

namespace internal {

// What Registry::Render() needs of a family, whatever its child type.
class FamilyBase {
 public:
  virtual ~FamilyBase() = default;
  const FamilyDesc& desc() const { return desc_; }
  // The family's series now (empty for a labelled family with no child).
  virtual FamilySnapshot Snapshot() const = 0;

 protected:
  explicit FamilyBase(FamilyDesc desc) : desc_(std::move(desc)) {}
  const FamilyDesc desc_;
};

}  // namespace internal

// A metric family: its description and its children, one per set of label
// values. Thread-safe. Owned by the Registry; children are never removed,
// so a reference from WithLabels() stays valid for the Registry's life: look
// a child up once, keep the reference, and only do atomic adds after that.
template <typename Child>
class Family final : public internal::FamilyBase {
 public:
  // The child for these label values, created (at zero) on first use. Takes
  // the family's lock; cheap, but not meant for every call of a hot path.
  // With the wrong number of values (a programming error) it logs an error
  // on the "metrics" logger (once per family) and returns a detached child
  // that is never rendered, so the caller's updates go nowhere.
  Child& WithLabels(const LabelValues& values) ABSL_LOCKS_EXCLUDED(mu_);

  FamilySnapshot Snapshot() const override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class Registry;
  explicit Family(FamilyDesc desc);
  std::unique_ptr<Child> NewChild() const;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::vector<std::string>, std::unique_ptr<Child>>
      children_ ABSL_GUARDED_BY(mu_);
  const std::unique_ptr<Child> detached_;  // for wrong label counts
  std::atomic<bool> warned_{false};
};

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;
using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// Where a collector writes its samples during one Render(): each call sets
// one series of one of the families the collector declared. A call that
// breaks a rule (unknown family, wrong type, wrong number of label values, a
// series set twice, a negative or NaN counter, bucket_counts not one longer
// than the bounds) drops that sample, logs a warning on the "metrics"
// logger and returns INVALID_ARGUMENT, NOT_FOUND or ALREADY_EXISTS saying
// so. Not thread-safe: it belongs to the one collector call it is passed to.
class SampleSink {
 public:
  SampleSink(const SampleSink&) = delete;
  SampleSink& operator=(const SampleSink&) = delete;

  absl::Status SetCounter(std::string_view family, const LabelValues& labels,
                          double value);
  absl::Status SetGauge(std::string_view family, const LabelValues& labels,
                        double value);
  // bucket_counts: one count per bucket, not cumulative, the declared bounds'
  // buckets then the one above them all (bucket_bounds.size() + 1 counts).
  absl::Status SetHistogram(std::string_view family, const LabelValues& labels,
                            absl::Span<const uint64_t> bucket_counts,
                            double sum);

 private:
  friend class Registry;
  explicit SampleSink(const std::vector<FamilyDesc>& descs);
  absl::StatusOr<SeriesSnapshot*> NewSeries(std::string_view family,
                                            MetricType type,
                                            const LabelValues& labels);
  std::vector<FamilySnapshot> TakeFamilies() { return std::move(families_); }

  const std::vector<FamilyDesc>& descs_;
  std::vector<FamilySnapshot> families_;  // one per desc, same order
  std::vector<absl::flat_hash_set<std::vector<std::string>>> seen_;
};

// Owns metric families and collectors, and renders them all. Thread-safe:
// families and collectors may be added, children updated and Render()
// called from any threads at once. Families and collectors are never
// removed. A family name (or a name a histogram writes: _bucket, _sum,
// _count) may be registered once per Registry.
class Registry {
 public:
  // Computes a collector's samples at scrape time. Called on the thread
  // that calls Render(), never concurrently with another collect function of
  // the same Registry; it must not call into the Registry.
  using CollectFunction = std::function<void(SampleSink&)>;

  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Each returns the new family (owned by the Registry), or
  // INVALID_ARGUMENT for a name, help text, label name or bucket bound
  // that breaks the rules in desc.h, or ALREADY_EXISTS for a name that is
  // taken. A family without labels has its one child from the start, so
  // it renders as 0 before any update.
  absl::StatusOr<CounterFamily*> AddCounter(
      std::string name, std::string help,
      std::vector<std::string> label_names = {});
  absl::StatusOr<GaugeFamily*> AddGauge(
      std::string name, std::string help,
      std::vector<std::string> label_names = {});
  absl::StatusOr<HistogramFamily*> AddHistogram(
      std::string name, std::string help, std::vector<std::string> label_names,
      std::vector<double> bucket_bounds);

  // A collector declares its families up front and fills them on each
  // Render() through the SampleSink. Its families obey the same rules as
  // the ones above (INVALID_ARGUMENT, ALREADY_EXISTS), and a null `collect`
  // is INVALID_ARGUMENT. A declared family that gets no sample in a scrape
  // is left out of that scrape.
  absl::Status AddCollector(std::vector<FamilyDesc> families,
                            CollectFunction collect);

  // The text exposition format 0.0.4 (Content-Type "text/plain;
  // version=0.0.4"): every family with at least one series, sorted by name,
  // each with one # HELP and one # TYPE line, its series sorted by label
  // values.
  std::string Render() const ABSL_LOCKS_EXCLUDED(mu_, collect_mu_);

 private:
  struct Collector {
    std::vector<FamilyDesc> families;
    CollectFunction collect;
  };

  // Validates `descs` and takes their names (all or none).
  absl::StatusOr<std::vector<FamilyDesc>> Reserve(std::vector<FamilyDesc> descs)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  template <typename Child>
  absl::StatusOr<Family<Child>*> AddFamily(FamilyDesc desc)
      ABSL_LOCKS_EXCLUDED(mu_);

  mutable absl::Mutex mu_;
  // Family names, and the sample names they write.
  absl::flat_hash_set<std::string> taken_names_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<internal::FamilyBase>> families_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Collector>> collectors_ ABSL_GUARDED_BY(mu_);
  // Serializes collect functions; taken after mu_ is released.
  mutable absl::Mutex collect_mu_;
};

}  // namespace lstmserve::metrics
