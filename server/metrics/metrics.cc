#include "server/metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/metrics/logger.h"

namespace lstmserve::metrics {

// --- children ---------------------------------------------------------------

void Counter::Increment(double v) {
  if (std::isfinite(v) && v > 0) real_.fetch_add(v, std::memory_order_relaxed);
}

double Counter::Value() const {
  return static_cast<double>(integer_.load(std::memory_order_relaxed)) +
         real_.load(std::memory_order_relaxed);
}

void Counter::Snapshot(SeriesSnapshot& out) const {
  out.integer = integer_.load(std::memory_order_relaxed);
  out.real = real_.load(std::memory_order_relaxed);
}

void Gauge::Snapshot(SeriesSnapshot& out) const { out.real = Value(); }

Histogram::Histogram(const std::vector<double>& bounds)
    : bounds_(bounds),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds.size() + 1)) {}

void Histogram::Observe(double v) {
  if (std::isnan(v)) return;
  const size_t bucket =
      std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

uint64_t Histogram::Count() const {
  uint64_t n = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    n += counts_[i].load(std::memory_order_relaxed);
  }
  return n;
}

void Histogram::Snapshot(SeriesSnapshot& out) const {
  out.bucket_counts.resize(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    out.bucket_counts[i] = counts_[i].load(std::memory_order_relaxed);
  }
  out.sum = Sum();
}

// --- families ---------------------------------------------------------------

template <typename Child>
Family<Child>::Family(FamilyDesc desc)
    : internal::FamilyBase(std::move(desc)), detached_(NewChild()) {
  if (desc_.label_names.empty()) {
    absl::MutexLock lock(&mu_);
    children_.emplace(std::vector<std::string>{}, NewChild());
  }
}

template <typename Child>
std::unique_ptr<Child> Family<Child>::NewChild() const {
  if constexpr (std::is_same_v<Child, Histogram>) {
    return std::unique_ptr<Child>(new Histogram(desc_.bucket_bounds));
  } else {
    return std::unique_ptr<Child>(new Child());
  }
}

template <typename Child>
Child& Family<Child>::WithLabels(const LabelValues& values) {
  const std::vector<std::string>& v = values.values();
  if (v.size() != desc_.label_names.size()) {
    if (!warned_.exchange(true)) {
      Logger()->error(
          "metric {} takes {} label value(s) ({}), got {} ({}); these updates "
          "are not exported",
          desc_.name, desc_.label_names.size(),
          absl::StrJoin(desc_.label_names, ", "), v.size(),
          absl::StrJoin(v, ", "));
    }
    return *detached_;
  }
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = children_.try_emplace(v);
  if (inserted) it->second = NewChild();
  return *it->second;
}

template <typename Child>
FamilySnapshot Family<Child>::Snapshot() const {
  FamilySnapshot out;
  out.desc = &desc_;
  absl::MutexLock lock(&mu_);
  out.series.reserve(children_.size());
  for (const auto& [labels, child] : children_) {
    SeriesSnapshot& s = out.series.emplace_back();
    s.label_values = labels;
    child->Snapshot(s);
  }
  return out;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// --- collectors' samples ----------------------------------------------------

SampleSink::SampleSink(const std::vector<FamilyDesc>& descs)
    : descs_(descs), families_(descs.size()), seen_(descs.size()) {
  for (size_t i = 0; i < descs.size(); ++i) families_[i].desc = &descs[i];
}

absl::StatusOr<SeriesSnapshot*> SampleSink::NewSeries(
    std::string_view family, MetricType type, const LabelValues& labels) {
  auto reject = [&](absl::Status status) {
    Logger()->warn("collector sample dropped: {}",
                   std::string(status.message()));
    return status;
  };
  size_t i = 0;
  while (i < descs_.size() && descs_[i].name != family) ++i;
  if (i == descs_.size()) {
    std::vector<std::string> names;
    for (const FamilyDesc& d : descs_) names.push_back(d.name);
    return reject(absl::NotFoundError(
        absl::StrCat("metric ", std::string(family),
                     " is not one of the families this collector declared (",
                     absl::StrJoin(names, ", "), ")")));
  }
  const FamilyDesc& desc = descs_[i];
  if (desc.type != type) {
    return reject(absl::InvalidArgumentError(
        absl::StrCat("metric ", desc.name, " was declared a ",
                     std::string(MetricTypeName(desc.type)), ", and set as a ",
                     std::string(MetricTypeName(type)))));
  }
  const std::vector<std::string>& v = labels.values();
  if (v.size() != desc.label_names.size()) {
    return reject(absl::InvalidArgumentError(
        absl::StrCat("metric ", desc.name, " takes ", desc.label_names.size(),
                     " label value(s) (", absl::StrJoin(desc.label_names, ", "),
                     "), got ", v.size(), " (", absl::StrJoin(v, ", "), ")")));
  }
  if (!seen_[i].insert(v).second) {
    std::vector<std::string> pairs;
    for (size_t k = 0; k < v.size(); ++k) {
      pairs.push_back(absl::StrCat(desc.label_names[k], "=\"",
                                   EscapeLabelValue(v[k]), "\""));
    }
    return reject(absl::AlreadyExistsError(
        absl::StrCat("metric ", desc.name, "{", absl::StrJoin(pairs, ","),
                     "} was already set in this scrape")));
  }
  SeriesSnapshot& s = families_[i].series.emplace_back();
  s.label_values = v;
  return &s;
}

absl::Status SampleSink::SetCounter(std::string_view family,
                                    const LabelValues& labels, double value) {
  if (std::isnan(value) || value < 0) {
    absl::Status status = absl::InvalidArgumentError(
        absl::StrCat("counter ", std::string(family), " set to ",
                     FormatDouble(value), "; expected a value >= 0"));
    Logger()->warn("collector sample dropped: {}",
                   std::string(status.message()));
    return status;
  }
  absl::StatusOr<SeriesSnapshot*> s =
      NewSeries(family, MetricType::kCounter, labels);
  if (!s.ok()) return s.status();
  (*s)->real = value;
  return absl::OkStatus();
}

absl::Status SampleSink::SetGauge(std::string_view family,
                                  const LabelValues& labels, double value) {
  absl::StatusOr<SeriesSnapshot*> s =
      NewSeries(family, MetricType::kGauge, labels);
  if (!s.ok()) return s.status();
  (*s)->real = value;
  return absl::OkStatus();
}

absl::Status SampleSink::SetHistogram(std::string_view family,
                                      const LabelValues& labels,
                                      absl::Span<const uint64_t> bucket_counts,
                                      double sum) {
  for (const FamilyDesc& desc : descs_) {
    if (desc.name == family && desc.type == MetricType::kHistogram &&
        bucket_counts.size() != desc.bucket_bounds.size() + 1) {
      absl::Status status = absl::InvalidArgumentError(absl::StrCat(
          "histogram ", desc.name, " has ", desc.bucket_bounds.size(),
          " bucket bound(s), so takes ", desc.bucket_bounds.size() + 1,
          " bucket counts (the last for +Inf); got ", bucket_counts.size()));
      Logger()->warn("collector sample dropped: {}",
                     std::string(status.message()));
      return status;
    }
  }
  absl::StatusOr<SeriesSnapshot*> s =
      NewSeries(family, MetricType::kHistogram, labels);
  if (!s.ok()) return s.status();
  (*s)->bucket_counts.assign(bucket_counts.begin(), bucket_counts.end());
  (*s)->sum = sum;
  return absl::OkStatus();
}

// --- registry ---------------------------------------------------------------

absl::StatusOr<std::vector<FamilyDesc>> Registry::Reserve(
    std::vector<FamilyDesc> descs) {
  std::vector<std::string> names;
  for (FamilyDesc& desc : descs) {
    absl::StatusOr<FamilyDesc> normalized =
        NormalizeFamilyDesc(std::move(desc));
    if (!normalized.ok()) return normalized.status();
    desc = *std::move(normalized);
    std::vector<std::string> written = SampleNames(desc);
    if (desc.type == MetricType::kHistogram) written.push_back(desc.name);
    for (std::string& name : written) {
      if (taken_names_.contains(name) ||
          std::find(names.begin(), names.end(), name) != names.end()) {
        return absl::AlreadyExistsError(absl::StrCat(
            "metric ", desc.name, ": the name ", name,
            " is already used by another family of this registry"));
      }
      names.push_back(std::move(name));
    }
  }
  taken_names_.insert(names.begin(), names.end());
  return descs;
}

template <typename Child>
absl::StatusOr<Family<Child>*> Registry::AddFamily(FamilyDesc desc) {
  absl::MutexLock lock(&mu_);
  std::vector<FamilyDesc> descs;
  descs.push_back(std::move(desc));
  absl::StatusOr<std::vector<FamilyDesc>> reserved = Reserve(std::move(descs));
  if (!reserved.ok()) return reserved.status();
  auto* family = new Family<Child>(std::move(reserved->front()));
  families_.emplace_back(family);
  return family;
}

absl::StatusOr<CounterFamily*> Registry::AddCounter(
    std::string name, std::string help, std::vector<std::string> label_names) {
  return AddFamily<Counter>(FamilyDesc(std::move(name), MetricType::kCounter,
                                       std::move(help),
                                       std::move(label_names)));
}

absl::StatusOr<GaugeFamily*> Registry::AddGauge(
    std::string name, std::string help, std::vector<std::string> label_names) {
  return AddFamily<Gauge>(FamilyDesc(std::move(name), MetricType::kGauge,
                                     std::move(help), std::move(label_names)));
}

absl::StatusOr<HistogramFamily*> Registry::AddHistogram(
    std::string name, std::string help, std::vector<std::string> label_names,
    std::vector<double> bucket_bounds) {
  return AddFamily<Histogram>(
      FamilyDesc(std::move(name), MetricType::kHistogram, std::move(help),
                 std::move(label_names), std::move(bucket_bounds)));
}

absl::Status Registry::AddCollector(std::vector<FamilyDesc> families,
                                    CollectFunction collect) {
  if (!collect) {
    return absl::InvalidArgumentError(
        "AddCollector: the collect function is empty; expected a callable");
  }
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::vector<FamilyDesc>> reserved =
      Reserve(std::move(families));
  if (!reserved.ok()) return reserved.status();
  collectors_.push_back(std::make_unique<Collector>(
      Collector{*std::move(reserved), std::move(collect)}));
  return absl::OkStatus();
}

std::string Registry::Render() const {
  std::vector<const internal::FamilyBase*> families;
  std::vector<const Collector*> collectors;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& f : families_) families.push_back(f.get());
    for (const auto& c : collectors_) collectors.push_back(c.get());
  }
  std::vector<FamilySnapshot> snapshots;
  snapshots.reserve(families.size());
  for (const internal::FamilyBase* f : families) {
    snapshots.push_back(f->Snapshot());
  }
  {
    absl::MutexLock lock(&collect_mu_);
    for (const Collector* c : collectors) {
      SampleSink sink(c->families);
      c->collect(sink);
      for (FamilySnapshot& f : sink.TakeFamilies()) {
        snapshots.push_back(std::move(f));
      }
    }
  }
  return RenderFamilies(snapshots);
}

}  // namespace lstmserve::metrics
