#include "server/core/repository_watcher.h"

#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/repository.h"
#include "server/core/validation.h"

namespace lstmserve::server {
namespace {

std::string PolicyName(const VersionPolicy& p) {
  switch (p.kind) {
    case VersionPolicy::Kind::kAll:
      return "all";
    case VersionPolicy::Kind::kLatest:
      return absl::StrCat("latest:", p.latest);
    case VersionPolicy::Kind::kSpecific:
      return absl::StrCat("specific:", absl::StrJoin(p.specific, ","));
  }
  return "?";
}

bool StatFile(const std::string& path, int64_t& size, int64_t& mtime_ns) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  size = st.st_size;
  mtime_ns =
      static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return true;
}

}  // namespace

std::string RepositoryWatcher::Event::ToString() const {
  const std::string what = absl::StrCat("model=", model, " version=", version);
  switch (kind) {
    case Kind::kLoaded:
      return absl::StrCat(what, " loaded");
    case Kind::kUnloaded:
      return absl::StrCat(what, " unloaded (", detail, "); its sessions drain");
    case Kind::kRefused:
      return absl::StrCat(what, " not loaded: ", detail);
    case Kind::kWaiting:
      return absl::StrCat(what, " not complete yet (", detail, ")");
  }
  return what;
}

RepositoryWatcher::RepositoryWatcher(SessionManager& core,
                                     WatcherOptions options)
    : core_(core), options_(std::move(options)) {}

const VersionPolicy& RepositoryWatcher::PolicyOf(
    const std::string& name) const {
  auto it = options_.policies.find(name);
  return it == options_.policies.end() ? options_.default_policy : it->second;
}

RepositoryWatcher::Files RepositoryWatcher::Look(const std::string& dir) {
  Files f;
  int64_t size, mtime;
  f.ready_marker = StatFile(dir + "/READY", size, mtime);
  const bool config =
      StatFile(dir + "/config.json", f.config_size, f.config_mtime_ns);
  const bool weights =
      StatFile(dir + "/model.safetensors", f.weights_size, f.weights_mtime_ns);
  f.complete = config && weights;
  return f;
}

absl::StatusOr<std::vector<RepositoryWatcher::Event>> RepositoryWatcher::Poll(
    bool start) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::vector<model::ModelEntry>> entries =
      model::ListModels(options_.repo);
  if (!entries.ok()) return entries.status();
  std::vector<Event> events;
  std::set<std::string> on_disk;
  for (const model::ModelEntry& e : *entries) {
    on_disk.insert(e.name);
    Reconcile(e.name, e.path, e.versions, start, events);
  }
  for (const std::string& name : core_.models().Names()) {
    if (on_disk.count(name)) continue;
    for (int64_t v : core_.models().Versions(name)) {
      Unload(name, v, "its directory is gone", events);
    }
  }
  return events;
}

void RepositoryWatcher::Reconcile(const std::string& name,
                                  const std::string& model_dir,
                                  const std::vector<int64_t>& on_disk,
                                  bool start, std::vector<Event>& events) {
  const VersionPolicy& policy = PolicyOf(name);
  const std::vector<int64_t> served_list = core_.models().Versions(name);
  const std::set<int64_t> served(served_list.begin(), served_list.end());

  // The versions that may be served, newest first.
  std::vector<std::pair<int64_t, Files>> complete;
  for (auto it = on_disk.rbegin(); it != on_disk.rend(); ++it) {
    const int64_t v = *it;
    const Key key{name, v};
    const std::string dir = absl::StrCat(model_dir, "/", v);
    const Files files = Look(dir);
    const auto prev = last_seen_.find(key);
    const bool stable = prev != last_seen_.end() && prev->second == files;
    last_seen_[key] = files;
    if (unloaded_models_.count(name) || unloaded_versions_.count(key)) {
      continue;
    }
    if (served.count(v)) {
      complete.emplace_back(v, files);
      continue;
    }
    // At start (and on LoadModel) nobody is copying: a version missing a
    // file is broken, and is tried (and refused, with the error) below.
    if (!start && (!files.complete || !(files.ready_marker || stable))) {
      if (waiting_reported_.insert(key).second) {
        events.push_back(Event{Event::Kind::kWaiting, name, v,
                               files.complete
                                   ? "its files changed since the last scan"
                                   : "config.json or model.safetensors is "
                                     "missing"});
      }
      continue;
    }
    waiting_reported_.erase(key);
    auto refused = refused_.find(key);
    if (refused != refused_.end() && refused->second == files) continue;
    complete.emplace_back(v, files);
  }

  std::vector<int64_t> chosen;
  for (const auto& [v, files] : complete) {
    if (policy.kind == VersionPolicy::Kind::kLatest &&
        static_cast<int64_t>(chosen.size()) >= policy.latest) {
      break;
    }
    if (policy.kind == VersionPolicy::Kind::kSpecific &&
        std::find(policy.specific.begin(), policy.specific.end(), v) ==
            policy.specific.end()) {
      continue;
    }
    if (served.count(v)) {
      chosen.push_back(v);
      continue;
    }
    const std::string dir = absl::StrCat(model_dir, "/", v);
    absl::StatusOr<std::unique_ptr<model::Model>> m =
        options_.load ? options_.load(name, dir) : model::Model::Load(dir);
    if (!m.ok()) {
      refused_[{name, v}] = files;
      events.push_back(Event{Event::Kind::kRefused, name, v,
                             std::string(m.status().message())});
      continue;
    }
    auto loaded = std::make_shared<LoadedModel>();
    loaded->name = name;
    loaded->version = v;
    loaded->model = *std::move(m);
    if (absl::Status s = core_.LoadVersion(std::move(loaded)); !s.ok()) {
      events.push_back(
          Event{Event::Kind::kRefused, name, v, std::string(s.message())});
      continue;
    }
    refused_.erase({name, v});
    events.push_back(Event{Event::Kind::kLoaded, name, v, ""});
    chosen.push_back(v);
  }

  for (int64_t v : served_list) {
    if (std::find(chosen.begin(), chosen.end(), v) != chosen.end()) continue;
    const bool present =
        std::find(on_disk.begin(), on_disk.end(), v) != on_disk.end();
    std::string why;
    if (!present) {
      why = "its directory is gone";
    } else if (unloaded_models_.count(name) ||
               unloaded_versions_.count({name, v})) {
      why = "UnloadModel";
    } else {
      why = absl::StrCat("not picked by version policy ", PolicyName(policy));
    }
    Unload(name, v, why, events);
  }
}

void RepositoryWatcher::Unload(const std::string& name, int64_t version,
                               const std::string& why,
                               std::vector<Event>& events) {
  if (core_.UnloadVersion(name, version, options_.drain).ok()) {
    events.push_back(Event{Event::Kind::kUnloaded, name, version, why});
  }
}

absl::StatusOr<std::vector<RepositoryWatcher::Event>>
RepositoryWatcher::LoadModel(const std::string& name) {
  absl::MutexLock lock(&mu_);
  const std::string dir = absl::StrCat(options_.repo, "/", name);
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  absl::StatusOr<std::vector<int64_t>> versions = model::ListVersions(dir);
  if (!versions.ok()) {
    return absl::NotFoundError(absl::StrCat("the repository has no model ",
                                            Quote(name),
                                            " (no version "
                                            "directory under ",
                                            Quote(dir), ")"));
  }
  unloaded_models_.erase(name);
  for (auto it = unloaded_versions_.begin(); it != unloaded_versions_.end();) {
    it = it->first == name ? unloaded_versions_.erase(it) : std::next(it);
  }
  for (auto it = refused_.begin(); it != refused_.end();) {
    it = it->first.first == name ? refused_.erase(it) : std::next(it);
  }
  std::vector<Event> events;
  Reconcile(name, dir, *versions, /*start=*/true, events);
  if (core_.models().Versions(name).empty()) {
    std::string why;
    for (const Event& e : events) absl::StrAppend(&why, "; ", e.ToString());
    return absl::FailedPreconditionError(absl::StrCat(
        "no version of model ", Quote(name), " could be served", why));
  }
  return events;
}

absl::StatusOr<std::vector<RepositoryWatcher::Event>>
RepositoryWatcher::UnloadModel(const std::string& name, int64_t version) {
  absl::MutexLock lock(&mu_);
  const std::vector<int64_t> served = core_.models().Versions(name);
  if (version < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("version ", version,
                     " is negative; expected 0 (every version) or a "
                     "version"));
  }
  if (served.empty() || (version != 0 && std::find(served.begin(), served.end(),
                                                   version) == served.end())) {
    return absl::NotFoundError(
        version == 0 ? absl::StrCat("model ", Quote(name), " is not served")
                     : absl::StrCat("model ", Quote(name), " version ", version,
                                    " is not served; versions: ",
                                    absl::StrJoin(served, ", ")));
  }
  std::vector<Event> events;
  if (version == 0) {
    unloaded_models_.insert(name);
    for (int64_t v : served) Unload(name, v, "UnloadModel", events);
  } else {
    unloaded_versions_.insert({name, version});
    Unload(name, version, "UnloadModel", events);
  }
  return events;
}

}  // namespace lstmserve::server
