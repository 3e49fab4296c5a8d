// StreamingSession: many sessions' chunks multiplexed over a few Stream
// calls (gRPC callback API), pipelined, with reconnection and exactly-once
// resends. No thread per session: one StreamMux per Client owns the calls
// and one worker thread, which opens calls, enforces per-chunk deadlines and
// decides what a call's end means.
//
// Moving parts, all guarded by StreamMux::mu:
//   Conn       one Stream call slot: the current StreamCall, its write
//              queue (one write on the wire at a time), the request ids it
//              awaits and their deadlines, and the sessions it carries.
//   Core       one session: its unanswered chunks in send order, of which
//              the first `inflight` are on the wire; the step index the
//              next unsent chunk starts at; its outbox of results whose
//              callbacks have not run. Whoever finds nobody delivering a
//              session's outbox drains it outside the lock, so one
//              session's callbacks run one at a time and in order.
// Each chunk carries its first_step. A session pipelines up to
// ClientOptions::max_inflight_chunks chunks; the server keeps that many in
// its replay record (--max-replay-chunks), so when a call breaks, every
// chunk that was on the wire is resent with the same first_step and is
// either applied or answered from the record: no step lost or doubled.
// When a chunk fails on the server (say INVALID_ARGUMENT), the chunks sent
// behind it were numbered as if it had run; they are taken back and resent
// with corrected first_steps, so one bad chunk fails alone.
//
// gRPC runs no reaction inline (Start* only schedule them), so starting
// operations while holding mu cannot deadlock.
//
// With ClientOptions::session_affinity each session has a Conn of its own
// whose calls carry the session's id as x-session-id (so a front proxy can
// route the stream to the server holding the session); the Conn is
// half-closed when its session closes, and reused by a later session once
// its call has ended.
//
// Lifetimes: Client::Shared owns the StreamMux; every StreamingSession
// holds the Shared. A call's reactions touch the mux only; the worker waits
// for each call's OnDone before starting another on its Conn or exiting.
#include <algorithm>
#include <deque>
#include <optional>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/internal.h"
#include "client/resend_log.h"
#include "lstmserve/client.h"

namespace lstmserve::client {

class StreamCall;

namespace {

struct Chunk {
  std::vector<float> inputs;
  int steps = 0;
  std::optional<int64_t> first_step;  // fixed when first written
  // Steps the server lost in a crash, sent again from the ResendLog: their
  // answers were delivered before and are not delivered again.
  bool resend = false;
  StreamingSession::Callback callback;
  uint64_t request_id = 0;  // of the attempt on the wire; 0: none
  // Set when answered (or refused here); delivered once it is the front.
  std::optional<absl::StatusOr<StepResult>> result;
  bool on_wire() const { return request_id != 0; }
};

struct Delivery {
  StreamingSession::Callback callback;
  absl::StatusOr<StepResult> result;
};

// Stream failures after which resending is worth it: the server went away
// or restarted, or the stream broke. Resending is always safe (first_step).
bool Retryable(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return true;
    default:
      return false;
  }
}

}  // namespace

// One session's state in the multiplexer. Guarded by the mux's mu.
struct StreamingSession::Core {
  std::string session_id;
  std::string create_model;  // empty: never create
  int64_t create_version = 0;
  bool explain = false;  // OpenSessionOptions::explain
  int conn = 0;          // index of the Conn that carries it

  // Undelivered chunks in send order: answered, on the wire or waiting.
  // Only the first few (about the window) are other than waiting.
  std::deque<Chunk> chunks;
  int inflight = 0;             // chunks on the wire
  int64_t next_first_step = 0;  // of the next chunk to number
  int64_t next_step = 0;        // from the last response
  std::deque<Delivery> outbox;
  // Answered inputs since the server's durable_step (resent after a crash).
  std::unique_ptr<internal::ResendLog> log;
  bool delivering = false;
  uint64_t sent = 0;       // chunks accepted by Send
  uint64_t delivered = 0;  // callbacks returned
  bool closed = false;
  // Threads about to deliver this session's outbox (Close waits for none).
  int drain_refs = 0;

  std::shared_ptr<Client::Shared> shared;  // keeps the mux alive
  StreamMux* mux = nullptr;                // shared->Mux()
};

class StreamMux {
 public:
  explicit StreamMux(Client::Shared* shared);
  ~StreamMux();  // ends the calls (half-close, bounded by the deadline)

  void Register(StreamingSession::Core* core);
  void Send(StreamingSession::Core* core, std::vector<float> inputs, int steps,
            StreamingSession::Callback callback);
  void Flush(StreamingSession::Core* core);
  void Close(StreamingSession::Core* core);
  void Cancel(StreamingSession::Core* core);
  int64_t NextStep(const StreamingSession::Core* core) const;

  // Reactions of a call on conn `c`.
  void OnReadDone(int c, StreamCall* call, bool ok);
  void OnWriteDone(int c, StreamCall* call, bool ok);
  void OnCallDone(int c, const grpc::Status& status);

 private:
  struct Awaited {
    StreamingSession::Core* core;
    absl::Time deadline;
  };
  struct Conn {
    StreamCall* call = nullptr;
    bool call_ending = false;  // its reads have ended
    bool call_done = false;    // OnDone ran (after the hold was removed)
    grpc::Status call_status;
    bool cancelled_for_deadline = false;
    bool writes_done = false;  // half-closed (the client is shutting down)
    absl::Time close_deadline = absl::InfiniteFuture();
    std::deque<pb::StreamRequest> writes;  // front: on the wire if pending
    bool write_pending = false;
    absl::flat_hash_map<uint64_t, Awaited> awaiting;  // by request id
    std::deque<uint64_t> sent_order;  // request ids, oldest first
    absl::flat_hash_set<StreamingSession::Core*> sessions;
    // session_affinity: the session this Conn was made for (sent as
    // x-session-id), and whether that session has closed (the call is
    // half-closed, and the Conn free for another once the call ends).
    std::string session_header;
    bool retired = false;
    int failures = 0;  // consecutive failed attempts
    absl::Time reconnect_at = absl::InfinitePast();
    bool has_work() const {
      for (StreamingSession::Core* s : sessions) {
        if (!s->chunks.empty()) return true;
      }
      return false;
    }
  };

  void Run();
  void StartCallLocked(int c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Puts the session's next chunks on the wire, up to its window.
  void PumpLocked(StreamingSession::Core* core)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeWriteLocked(Conn& conn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes back the session's chunks on the wire (not answered), keeping or
  // clearing their first_steps.
  // Takes back the session's chunks on the wire from index `from` on (their
  // answers, if any come, are ignored); `renumber` also forgets their
  // first_steps and any error answers they had.
  void TakeBackLocked(Conn& conn, StreamingSession::Core* core, size_t from,
                      bool renumber) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleCallEndLocked(int c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A response on `conn`: completes its chunk (or starts a recovery).
  void AnswerLocked(Conn& conn, pb::StreamResponse& response)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The server holds the session at `server_step`, behind chunk k: puts
  // the steps in between (from the ResendLog) in front of chunk k, to be
  // sent first; or fails the session's chunks with DATA_LOSS when they
  // were not kept.
  void RecoverLocked(Conn& conn, StreamingSession::Core* core, size_t k,
                     int64_t server_step) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailAllLocked(StreamingSession::Core* core, const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Drain(StreamingSession::Core* core) ABSL_LOCKS_EXCLUDED(mu_);
  // Delivery of `core`'s outbox by whoever takes to_drain_ next.
  void ScheduleDrainLocked(StreamingSession::Core* core)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Delivers the outboxes of what was taken from to_drain_.
  void RunDrains(std::vector<StreamingSession::Core*>& cores)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Time NextWakeLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Client::Shared* const shared_;
  mutable absl::Mutex mu_;
  absl::CondVar worker_cv_;
  absl::CondVar flush_cv_;
  // A deque: a Conn is never moved, so a reference to one stays good across
  // an unlock while another session adds a Conn.
  std::deque<Conn> conns_ ABSL_GUARDED_BY(mu_);
  std::vector<StreamingSession::Core*> to_drain_ ABSL_GUARDED_BY(mu_);
  uint64_t next_request_id_ ABSL_GUARDED_BY(mu_) = 1;
  int next_conn_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_;
};

// One attempt of the Stream call on one Conn; deletes itself in OnDone.
class StreamCall final
    : public grpc::ClientBidiReactor<pb::StreamRequest, pb::StreamResponse> {
 public:
  StreamCall(StreamMux* mux, int conn) : mux_(mux), conn_(conn) {}

  void OnReadDone(bool ok) override { mux_->OnReadDone(conn_, this, ok); }
  void OnWriteDone(bool ok) override { mux_->OnWriteDone(conn_, this, ok); }
  void OnDone(const grpc::Status& status) override {
    StreamMux* const mux = mux_;
    const int conn = conn_;
    delete this;  // releases the context's reference to the channel
    mux->OnCallDone(conn, status);
  }

  grpc::ClientContext context;
  pb::StreamResponse response;  // the read in progress

 private:
  StreamMux* const mux_;
  const int conn_;
};

StreamMux::StreamMux(Client::Shared* shared) : shared_(shared) {
  {
    absl::MutexLock lock(&mu_);
    // session_affinity: Conns are made per session (Register).
    if (!shared->options.session_affinity) {
      conns_.resize(shared->options.streams);
    }
  }
  worker_ = std::thread([this] { Run(); });
}

StreamMux::~StreamMux() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    worker_cv_.Signal();
  }
  worker_.join();
}

void StreamMux::Register(StreamingSession::Core* core) {
  absl::MutexLock lock(&mu_);
  if (shared_->options.session_affinity) {
    // A Conn of its own: a free one (its last call has ended), else a new
    // one.
    int c = 0;
    while (c < static_cast<int>(conns_.size()) &&
           !(conns_[c].retired && conns_[c].sessions.empty() &&
             conns_[c].call == nullptr)) {
      ++c;
    }
    if (c == static_cast<int>(conns_.size())) conns_.emplace_back();
    Conn& conn = conns_[c];
    conn.retired = false;
    conn.failures = 0;
    conn.reconnect_at = absl::InfinitePast();
    conn.session_header = core->session_id;
    core->conn = c;
    conn.sessions.insert(core);
    return;
  }
  core->conn = next_conn_;
  next_conn_ = (next_conn_ + 1) % static_cast<int>(conns_.size());
  conns_[core->conn].sessions.insert(core);
}

void StreamMux::Send(StreamingSession::Core* core, std::vector<float> inputs,
                     int steps, StreamingSession::Callback callback) {
  {
    absl::MutexLock lock(&mu_);
    if (!core->closed) {
      Chunk chunk;
      if (absl::Status s = internal::CheckChunk(inputs, steps); !s.ok()) {
        chunk.result = s;  // refused here; answered in its turn
      }
      chunk.inputs = std::move(inputs);
      chunk.steps = steps;
      chunk.callback = std::move(callback);
      core->chunks.push_back(std::move(chunk));
      ++core->sent;
      PumpLocked(core);
      if (conns_[core->conn].call == nullptr) worker_cv_.Signal();
      PumpLocked(core);  // a chunk refused here may be the front
      callback = nullptr;
    }
  }
  if (callback) {
    callback(absl::FailedPreconditionError(absl::StrCat(
        "the stream of session \"", core->session_id, "\" is closed")));
    return;
  }
  Drain(core);
}

void StreamMux::PumpLocked(StreamingSession::Core* core) {
  Conn& conn = conns_[core->conn];
  // Answers leave in send order, whatever order they came in.
  while (!core->chunks.empty() && core->chunks.front().result) {
    Chunk& chunk = core->chunks.front();
    if (chunk.resend) {
      // Its answer was delivered before the server lost the step.
      absl::Status failed = chunk.result->status();
      core->chunks.pop_front();
      if (!failed.ok()) {
        FailAllLocked(core, absl::Status(failed.code(),
                                         absl::StrCat("resending the steps the "
                                                      "server lost failed: ",
                                                      failed.message())));
        return;
      }
      continue;
    }
    core->outbox.push_back(
        {std::move(chunk.callback), *std::move(chunk.result)});
    core->chunks.pop_front();
    ScheduleDrainLocked(core);
  }
  if (conn.call == nullptr || conn.call_ending || stopping_) return;
  const int window = shared_->options.max_inflight_chunks;
  for (size_t i = 0; core->inflight < window && i < core->chunks.size(); ++i) {
    Chunk& chunk = core->chunks[i];
    if (chunk.result || chunk.on_wire()) continue;
    if (!chunk.first_step) {
      chunk.first_step = core->next_first_step;
      core->next_first_step += chunk.steps;
    }
    chunk.request_id = next_request_id_++;
    pb::StreamRequest& request = conn.writes.emplace_back();
    request.set_request_id(chunk.request_id);
    request.set_session_id(core->session_id);
    internal::ToProto(chunk.inputs, chunk.steps, request.mutable_inputs());
    request.set_first_step(*chunk.first_step);
    if (!core->create_model.empty()) {
      request.set_create_model(core->create_model);
      request.set_create_version(core->create_version);
    }
    if (core->explain) request.set_explain(true);
    const absl::Time deadline =
        absl::Now() + absl::FromChrono(shared_->options.deadline);
    conn.awaiting[chunk.request_id] = Awaited{core, deadline};
    conn.sent_order.push_back(chunk.request_id);
    ++core->inflight;
  }
  MaybeWriteLocked(conn);
}

void StreamMux::MaybeWriteLocked(Conn& conn) {
  if (conn.call == nullptr || conn.call_ending || conn.write_pending ||
      conn.writes.empty()) {
    return;
  }
  conn.write_pending = true;
  // With more requests queued behind this one, gRPC may hold it in the
  // stream's buffer (the write still completes), so they leave in one send;
  // the last one queued goes without the hint and flushes them all.
  grpc::WriteOptions options;
  if (conn.writes.size() > 1) options.set_buffer_hint();
  conn.call->StartWrite(&conn.writes.front(), options);
}

void StreamMux::OnWriteDone(int c, StreamCall* call, bool ok) {
  absl::MutexLock lock(&mu_);
  Conn& conn = conns_[c];
  if (call != conn.call) return;  // a call the worker has let go
  conn.write_pending = false;
  if (!conn.writes.empty()) conn.writes.pop_front();
  // !ok: the stream is broken; its read side ends too and the worker
  // resends what was on the wire.
  if (ok) MaybeWriteLocked(conn);
  // A stopping worker half-closes once no write is pending.
  if (stopping_) worker_cv_.Signal();
}

void StreamMux::TakeBackLocked(Conn& conn, StreamingSession::Core* core,
                               size_t from, bool renumber) {
  for (size_t i = from; i < core->chunks.size(); ++i) {
    Chunk& chunk = core->chunks[i];
    if (chunk.on_wire()) {
      conn.awaiting.erase(chunk.request_id);  // a late answer is ignored
      chunk.request_id = 0;
      --core->inflight;
    }
    if (renumber && chunk.first_step && !(chunk.result && chunk.result->ok())) {
      // Numbered as if an earlier chunk had run; an error here may only be
      // that numbering (FAILED_PRECONDITION), so it is asked again.
      chunk.first_step.reset();
      chunk.result.reset();
    }
  }
}

void StreamMux::OnReadDone(int c, StreamCall* call, bool ok) {
  std::vector<StreamingSession::Core*> drain;
  {
    absl::MutexLock lock(&mu_);
    Conn& conn = conns_[c];
    if (!ok) {
      conn.call_ending = true;  // the worker finishes the call
      worker_cv_.Signal();
      return;
    }
    AnswerLocked(conn, call->response);
    drain.swap(to_drain_);
  }
  RunDrains(drain);
  call->StartRead(&call->response);
}

void StreamMux::AnswerLocked(Conn& conn, pb::StreamResponse& response) {
  auto it = conn.awaiting.find(response.request_id());
  // Any other response answers nothing we wait for (a chunk taken back).
  if (it == conn.awaiting.end()) return;
  StreamingSession::Core* core = it->second.core;
  conn.awaiting.erase(it);
  conn.failures = 0;
  size_t k = 0;
  while (core->chunks[k].request_id != response.request_id()) ++k;
  Chunk& chunk = core->chunks[k];
  chunk.request_id = 0;
  --core->inflight;
  const std::optional<int64_t> durable =
      response.has_durable_step()
          ? std::optional<int64_t>(response.durable_step())
          : std::nullopt;
  const int code = response.has_error() ? response.error().code() : 0;
  if (code == static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION) &&
      response.next_step() < *chunk.first_step && core->log->active()) {
    // The server is behind this chunk: it came back from its last
    // checkpoint (a crash lost the steps after it).
    RecoverLocked(conn, core, k, response.next_step());
  } else if (code != 0) {
    chunk.result =
        internal::SessionLost(absl::Status(static_cast<absl::StatusCode>(code),
                                           response.error().message()),
                              core->session_id, *chunk.first_step);
    // It did not run, so the chunks behind it were numbered one chunk
    // too far: take them back and number them from where it started.
    TakeBackLocked(conn, core, k + 1, /*renumber=*/true);
    core->next_first_step = *chunk.first_step;
  } else {
    // The end of the furthest chunk answered: answers may come out of
    // order after a resend, and a replay carries where the server is now.
    const int64_t chunk_end = *chunk.first_step + chunk.steps;
    core->next_step = std::max(core->next_step, chunk_end);
    // The session exists now, and once it is durable (or the server keeps
    // no store), a server that loses it must answer NOT_FOUND, not create
    // it again at step 0. Until its first checkpoint a crash may lose it
    // whole: then the stream creates it again and the ResendLog replays it
    // from step 0.
    if (!durable || *durable >= 0) core->create_model.clear();
    if (chunk.resend) {
      core->log->Durable(durable);
      chunk.result = StepResult{};  // dropped, not delivered again
    } else {
      StepResult step;
      step.steps = chunk.steps;
      step.first_step = *chunk.first_step;
      // This chunk's end, not the server's position (they differ for a
      // replay answered after later chunks ran).
      step.next_step = chunk_end;
      step.replayed = response.replayed();
      step.durable_step = durable;
      absl::Status shape =
          internal::OutputsFromProto(response.mutable_outputs(), chunk.steps,
                                     &step.outputs, &step.output_size);
      absl::StatusOr<std::vector<ExplainField>> explain =
          internal::ExplainFromProto(response.mutable_explain(), chunk.steps);
      if (!explain.ok()) {
        chunk.result = explain.status();
      } else if (!shape.ok()) {
        chunk.result = shape;
      } else {
        step.explain = *std::move(explain);
        chunk.result = std::move(step);
      }
      core->log->Answered(*chunk.first_step, chunk.steps,
                          std::move(chunk.inputs), durable);
    }
  }
  PumpLocked(core);
}

void StreamMux::RecoverLocked(Conn& conn, StreamingSession::Core* core,
                              size_t k, int64_t server_step) {
  const int64_t from = *core->chunks[k].first_step;
  absl::StatusOr<std::vector<internal::ResendLog::Chunk>> lost =
      core->log->Between(server_step, from);
  // Chunk k and those behind it go out again as they were, after the lost
  // steps (or fail with them).
  TakeBackLocked(conn, core, k, /*renumber=*/false);
  if (!lost.ok()) {
    FailAllLocked(core, lost.status());
    return;
  }
  std::vector<Chunk> resends;
  for (internal::ResendLog::Chunk& c : *lost) {
    Chunk r;
    r.inputs = std::move(c.inputs);
    r.steps = c.steps;
    r.first_step = c.first_step;
    r.resend = true;
    resends.push_back(std::move(r));
  }
  core->chunks.insert(core->chunks.begin() + static_cast<std::ptrdiff_t>(k),
                      std::make_move_iterator(resends.begin()),
                      std::make_move_iterator(resends.end()));
}

void StreamMux::OnCallDone(int c, const grpc::Status& status) {
  absl::MutexLock lock(&mu_);
  conns_[c].call_done = true;
  conns_[c].call_status = status;
  worker_cv_.Signal();
}

void StreamMux::ScheduleDrainLocked(StreamingSession::Core* core) {
  ++core->drain_refs;
  to_drain_.push_back(core);
}

void StreamMux::RunDrains(std::vector<StreamingSession::Core*>& cores) {
  for (StreamingSession::Core* core : cores) Drain(core);
  absl::MutexLock lock(&mu_);
  for (StreamingSession::Core* core : cores) --core->drain_refs;
  flush_cv_.SignalAll();
  cores.clear();
}

void StreamMux::Drain(StreamingSession::Core* core) {
  mu_.Lock();
  if (core->delivering) {  // another thread delivers; it sees ours too
    mu_.Unlock();
    return;
  }
  core->delivering = true;
  while (!core->outbox.empty()) {
    Delivery d = std::move(core->outbox.front());
    core->outbox.pop_front();
    mu_.Unlock();
    if (d.callback) d.callback(std::move(d.result));
    mu_.Lock();
    ++core->delivered;
    flush_cv_.SignalAll();
  }
  core->delivering = false;
  mu_.Unlock();
}

void StreamMux::StartCallLocked(int c) {
  Conn& conn = conns_[c];
  auto* call = new StreamCall(this, c);
  internal::PrepareContext(shared_->options, &call->context);
  if (!conn.session_header.empty()) {
    call->context.AddMetadata("x-session-id", conn.session_header);
  }
  shared_->stub->async()->Stream(&call->context, call);
  // The worker's hold: keeps the call alive (no OnDone) while other threads
  // may start writes on it; removed once its reads have ended.
  call->AddHold();
  call->StartRead(&call->response);
  conn.call = call;
  conn.call_ending = false;
  conn.call_done = false;
  conn.write_pending = false;
  conn.cancelled_for_deadline = false;
  conn.writes_done = false;
  conn.close_deadline = absl::InfiniteFuture();
  for (StreamingSession::Core* core : conn.sessions) PumpLocked(core);
  call->StartCall();
}

void StreamMux::FailAllLocked(StreamingSession::Core* core,
                              const absl::Status& status) {
  for (Chunk& chunk : core->chunks) {
    core->outbox.push_back({std::move(chunk.callback),
                            chunk.result ? *std::move(chunk.result)
                                         : absl::StatusOr<StepResult>(status)});
  }
  core->chunks.clear();
  core->inflight = 0;
  ScheduleDrainLocked(core);
}

// Decides what the end of a call means for its sessions' unanswered chunks.
void StreamMux::HandleCallEndLocked(int c) {
  Conn& conn = conns_[c];
  const grpc::Status status = conn.call_status;
  const bool deadline_hit = conn.cancelled_for_deadline;
  conn.writes.clear();
  conn.write_pending = false;
  conn.cancelled_for_deadline = false;
  conn.sent_order.clear();
  for (StreamingSession::Core* core : conn.sessions) {
    TakeBackLocked(conn, core, 0, /*renumber=*/false);  // resent as they were
  }
  conn.awaiting.clear();
  if (!conn.has_work() || stopping_) return;  // reopened when needed
  absl::Status error;
  if (deadline_hit) {
    error = absl::DeadlineExceededError(
        absl::StrCat("no response from the server within ",
                     shared_->options.deadline.count(), " ms"));
  } else if (status.ok()) {
    error = absl::UnavailableError(
        "the server ended the stream before "
        "answering");
  } else {
    error = internal::FromGrpc(status);
  }
  if (deadline_hit || status.ok() || Retryable(status)) {
    ++conn.failures;
    if (conn.failures <= shared_->options.max_retries) {
      conn.reconnect_at = absl::Now() + absl::FromChrono(internal::Backoff(
                                            shared_->options, conn.failures));
      return;  // the chunks are resent with their first_steps
    }
  }
  for (StreamingSession::Core* core : conn.sessions) FailAllLocked(core, error);
  conn.failures = 0;
  conn.reconnect_at = absl::InfinitePast();
}

absl::Time StreamMux::NextWakeLocked() const {
  absl::Time wake = absl::InfiniteFuture();
  for (const Conn& conn : conns_) {
    if (conn.call == nullptr) {
      if (conn.has_work()) wake = std::min(wake, conn.reconnect_at);
    } else if (!conn.cancelled_for_deadline) {
      wake = std::min(wake, conn.close_deadline);
      if (!conn.sent_order.empty()) {
        auto it = conn.awaiting.find(conn.sent_order.front());
        if (it != conn.awaiting.end()) {
          wake = std::min(wake, it->second.deadline);
        }
      }
    }
  }
  return wake;
}

void StreamMux::Run() {
  mu_.Lock();
  while (true) {
    bool acted = false;
    for (int c = 0; c < static_cast<int>(conns_.size()); ++c) {
      Conn& conn = conns_[c];
      if (conn.call != nullptr && conn.call_ending) {
        StreamCall* call = conn.call;
        conn.call = nullptr;
        mu_.Unlock();
        call->RemoveHold();  // OnDone follows once its last reaction ran
        mu_.Lock();
        while (!conn.call_done) worker_cv_.Wait(&mu_);
        conn.call_done = false;
        HandleCallEndLocked(c);
        acted = true;
        continue;
      }
      if (conn.call != nullptr) {
        if ((stopping_ || (conn.retired && conn.sessions.empty())) &&
            !conn.writes_done && !conn.write_pending && conn.writes.empty()) {
          // Half-close (the client is stopping, or the Conn's one session
          // has closed); the server ends the stream after it. One that
          // does not within the deadline is cancelled below.
          conn.writes_done = true;
          conn.close_deadline =
              absl::Now() + absl::FromChrono(shared_->options.deadline);
          conn.call->StartWritesDone();
        }
        // The oldest unanswered request past its deadline: the stream is
        // treated as broken and everything on it resent.
        while (!conn.sent_order.empty() &&
               !conn.awaiting.contains(conn.sent_order.front())) {
          conn.sent_order.pop_front();
        }
        const absl::Time now = absl::Now();
        if (!conn.cancelled_for_deadline &&
            ((!conn.sent_order.empty() &&
              now >= conn.awaiting[conn.sent_order.front()].deadline) ||
             now >= conn.close_deadline)) {
          conn.cancelled_for_deadline = true;
          conn.call->context.TryCancel();
        }
        continue;
      }
      if (!stopping_ && conn.has_work() && absl::Now() >= conn.reconnect_at) {
        StartCallLocked(c);
        acted = true;
      }
    }
    if (!to_drain_.empty()) {
      std::vector<StreamingSession::Core*> drain;
      drain.swap(to_drain_);
      mu_.Unlock();
      RunDrains(drain);
      mu_.Lock();
      continue;
    }
    if (acted) continue;
    if (stopping_) {
      bool open = false;
      for (const Conn& conn : conns_) open |= conn.call != nullptr;
      if (!open) break;
    }
    worker_cv_.WaitWithDeadline(&mu_, NextWakeLocked());
  }
  mu_.Unlock();
}

void StreamMux::Flush(StreamingSession::Core* core) {
  absl::MutexLock lock(&mu_);
  const uint64_t target = core->sent;
  while (core->delivered < target) flush_cv_.Wait(&mu_);
}

void StreamMux::Cancel(StreamingSession::Core* core) {
  {
    absl::MutexLock lock(&mu_);
    Conn& conn = conns_[core->conn];
    TakeBackLocked(conn, core, 0, /*renumber=*/false);
    FailAllLocked(core, absl::CancelledError(absl::StrCat(
                            "session \"", core->session_id,
                            "\": cancelled while waiting for the server")));
  }
  Drain(core);
  Close(core);
}

void StreamMux::Close(StreamingSession::Core* core) {
  Flush(core);
  absl::MutexLock lock(&mu_);
  // Nobody may still hold the session to deliver its (empty) outbox once
  // Close returns: the session may be destroyed then.
  while (core->drain_refs > 0 || core->delivering) flush_cv_.Wait(&mu_);
  if (core->closed) return;
  core->closed = true;
  Conn& conn = conns_[core->conn];
  conn.sessions.erase(core);
  if (shared_->options.session_affinity) {
    conn.retired = true;
    worker_cv_.Signal();  // half-closes its call
  }
}

int64_t StreamMux::NextStep(const StreamingSession::Core* core) const {
  absl::MutexLock lock(&mu_);
  return core->next_step;
}

Client::Shared::Shared() = default;

Client::Shared::~Shared() {
  absl::MutexLock lock(&mux_mu);
  mux.reset();
}

StreamMux& Client::Shared::Mux() {
  absl::MutexLock lock(&mux_mu);
  if (!mux) mux = std::make_unique<StreamMux>(this);
  return *mux;
}

// ---------------------------------------------------------------------------
// StreamingSession

StreamingSession::StreamingSession(std::shared_ptr<Core> core, std::string id,
                                   std::string model, int64_t version)
    : core_(std::move(core)),
      id_(std::move(id)),
      model_(std::move(model)),
      version_(version) {}

StreamingSession::~StreamingSession() { Close().IgnoreError(); }

void StreamingSession::Send(std::vector<float> inputs, int steps,
                            Callback on_result) {
  core_->mux->Send(core_.get(), std::move(inputs), steps, std::move(on_result));
}

std::future<absl::StatusOr<StepResult>> StreamingSession::Send(
    std::vector<float> inputs, int steps) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<StepResult>>>();
  std::future<absl::StatusOr<StepResult>> future = promise->get_future();
  Send(std::move(inputs), steps, [promise](absl::StatusOr<StepResult> result) {
    promise->set_value(std::move(result));
  });
  return future;
}

void StreamingSession::Flush() { core_->mux->Flush(core_.get()); }

void StreamingSession::Cancel() { core_->mux->Cancel(core_.get()); }

absl::Status StreamingSession::Close() {
  core_->mux->Close(core_.get());
  return absl::OkStatus();
}

int64_t StreamingSession::next_step() const {
  return core_->mux->NextStep(core_.get());
}

absl::StatusOr<std::unique_ptr<StreamingSession>> Client::OpenStream(
    const OpenSessionOptions& options) {
  bool created_by_stream = false;
  absl::StatusOr<SessionInfo> info = internal::FindOrCreate(
      *this, options, /*create_lazily=*/true, &created_by_stream);
  if (!info.ok()) return info.status();
  auto core = std::make_shared<StreamingSession::Core>();
  core->session_id = info->session_id;
  // Only a session that is missing now is created by the stream: one that
  // existed and later vanished must not come back silently at step 0.
  if (created_by_stream) core->create_model = info->model;
  core->create_version = info->version;
  core->explain = options.explain;
  core->next_first_step = info->next_step;
  core->next_step = info->next_step;
  core->log =
      std::make_unique<internal::ResendLog>(shared_->options.max_resend_steps);
  core->shared = shared_;
  core->mux = &shared_->Mux();
  core->mux->Register(core.get());
  return std::unique_ptr<StreamingSession>(new StreamingSession(
      std::move(core), info->session_id, info->model, info->version));
}

}  // namespace lstmserve::client
