#include "server/maintenance.h"

#include <utility>

#include "absl/time/clock.h"
#include "model/model.h"
#include "server/logging.h"
#include "spdlog/spdlog.h"

namespace lstmserve::server {

Maintenance::Maintenance(SessionManager& core, RepositoryWatcher& watcher,
                         absl::Duration tick, absl::Duration poll,
                         std::function<void()> versions_changed)
    : core_(core),
      watcher_(watcher),
      tick_(tick),
      poll_(poll),
      versions_changed_(std::move(versions_changed)) {
  if (tick_ > absl::ZeroDuration()) {
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "lstm-maint");  // for top, perf
      Run();
    });
  }
}

Maintenance::~Maintenance() { Stop(); }

void Maintenance::Stop() {
  std::deque<Job> left;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    cv_.Signal();
  }
  if (thread_.joinable()) thread_.join();
  {
    absl::MutexLock lock(&mu_);
    left.swap(jobs_);
  }
  for (Job& job : left) {
    job.done(absl::UnavailableError("the server is shutting down"));
  }
}

void Maintenance::Log(const RepositoryWatcher::Event& event,
                      const SessionManager& core) {
  using Kind = RepositoryWatcher::Event::Kind;
  const std::shared_ptr<spdlog::logger> log = Logger("reload");
  switch (event.kind) {
    case Kind::kLoaded: {
      auto m = core.models().Get(event.model, event.version);
      if (m.ok()) {
        const model::ModelConfig& c = (*m)->model->config();
        log->info(
            "model={} version={} loaded: {} {}x{}, {} parameters, {} weights "
            "({})",
            event.model, event.version, model::CellTypeName(c.cell),
            c.num_layers, c.hidden_size, (*m)->model->parameter_count(),
            model::WeightFormatName(c.weights),
            model::KernelDescription((*m)->model->kernels()));
      } else {
        log->info("{}", event.ToString());
      }
      break;
    }
    case Kind::kUnloaded:
    case Kind::kWaiting:
      log->info("{}", event.ToString());
      break;
    case Kind::kRefused:
      log->error("{}", event.ToString());
      break;
  }
}

void Maintenance::Report(const Events& events) {
  bool changed = false;
  for (const RepositoryWatcher::Event& e : events) {
    Log(e, core_);
    changed |= e.kind == RepositoryWatcher::Event::Kind::kLoaded ||
               e.kind == RepositoryWatcher::Event::Kind::kUnloaded;
  }
  if (changed && versions_changed_) versions_changed_();
}

void Maintenance::Post(std::function<void()> job, EventsDone done) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_ && thread_.joinable()) {
      jobs_.push_back(Job{std::move(job), std::move(done)});
      cv_.Signal();
      return;
    }
    if (stopping_) {
      done(absl::UnavailableError("the server is shutting down"));
      return;
    }
  }
  job();  // no thread (tests): run here
}

void Maintenance::LoadModel(std::string name, EventsDone done) {
  EventsDone reply = done;
  Post(
      [this, name = std::move(name), reply = std::move(reply)] {
        absl::StatusOr<Events> events = watcher_.LoadModel(name);
        if (events.ok()) Report(*events);
        reply(std::move(events));
      },
      std::move(done));
}

void Maintenance::UnloadModel(std::string name, int64_t version,
                              EventsDone done) {
  EventsDone reply = done;
  Post(
      [this, name = std::move(name), version, reply = std::move(reply)] {
        absl::StatusOr<Events> events = watcher_.UnloadModel(name, version);
        if (events.ok()) Report(*events);
        reply(std::move(events));
      },
      std::move(done));
}

void Maintenance::Tick(bool poll) {
  if (poll) {
    absl::StatusOr<Events> events = watcher_.Poll();
    if (!events.ok()) {
      Logger("reload")->warn("model repository not scanned: {}",
                             std::string(events.status().message()));
    } else {
      Report(*events);
    }
  }
  SessionManager::Maintained m = core_.Maintain();
  if (m.expired_idle > 0) {
    Logger("sessions")->info("expired {} idle session(s)", m.expired_idle);
  }
  if (m.closed_for_reload > 0) {
    Logger("sessions")
        ->info("closed {} session(s) of unloaded versions (reason reload)",
               m.closed_for_reload);
  }
  for (const std::string& v : m.versions_freed) {
    Logger("reload")->info("model version {} freed: its last session ended", v);
  }
}

void Maintenance::Run() {
  absl::Time next_tick = absl::Now() + tick_;
  absl::Time next_poll = poll_ > absl::ZeroDuration() ? absl::Now() + poll_
                                                      : absl::InfiniteFuture();
  while (true) {
    Job job;
    bool tick = false;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time wake = std::min(next_tick, next_poll);
      while (!stopping_ && jobs_.empty() && absl::Now() < wake) {
        cv_.WaitWithDeadline(&mu_, wake);
      }
      if (stopping_) return;
      if (!jobs_.empty()) {
        job = std::move(jobs_.front());
        jobs_.pop_front();
      } else {
        tick = true;
      }
    }
    if (job.run) {
      job.run();
      continue;
    }
    if (tick) {
      const absl::Time now = absl::Now();
      const bool poll = now >= next_poll;
      Tick(poll);
      next_tick = absl::Now() + tick_;
      if (poll) next_poll = absl::Now() + poll_;
    }
  }
}

}  // namespace lstmserve::server
