// StreamingSession: one session's chunks over a bidirectional Stream call
// (gRPC callback API), one chunk on the wire at a time, with reconnection
// and exactly-once resends.
//
// Moving parts, all guarded by Core::mu:
//   queue    chunks not yet answered, in send order; when `awaiting`, the
//            front one has been written on the current call.
//   outbox   answered chunks whose callbacks have not run yet. Whoever finds
//            nobody delivering drains it (Drain), outside the lock, so
//            callbacks run one at a time and in order.
//   call     the current StreamCall, kept alive by a hold that only the
//            worker thread removes (after the call's read side has ended),
//            so any thread may start a write on it while holding mu.
//   worker   a thread that opens calls when there is work, removes the hold
//            of a finished call and decides what its status means (resend
//            after a backoff, or fail the pending chunks), enforces the
//            per-chunk deadline, and half-closes the stream on Close.
// gRPC runs no reaction inline (Start* only schedule them), so starting
// operations while holding mu cannot deadlock.
//
// Lifetimes: the StreamingSession owns the Core, the Core owns a reference
// to the channel. A StreamCall points to the Core; the worker waits for each
// call's OnDone before starting another or exiting, so once Close() has
// joined the worker no gRPC thread touches the Core again.
#include <deque>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/internal.h"
#include "lstmserve/client.h"

namespace lstmserve::client {
namespace {

class StreamCall;

struct Chunk {
  uint64_t request_id = 0;
  std::vector<float> inputs;
  int steps = 0;
  std::optional<int64_t> first_step;  // fixed when first written
  absl::Status local_error;           // refused before sending
  StreamingSession::Callback callback;
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

struct StreamingSession::Core {
  Core(std::shared_ptr<Client::Shared> shared_in, std::string session_id_in,
       std::string create_model_in, int64_t create_version_in,
       int64_t next_step_in)
      : shared(std::move(shared_in)),
        session_id(std::move(session_id_in)),
        create_model(std::move(create_model_in)),
        create_version(create_version_in),
        next_step(next_step_in) {}

  ~Core() {
    absl::MutexLock lock(&join_mu);
    if (worker.joinable()) worker.join();  // Close() normally joined it
  }

  void Start() {
    absl::MutexLock lock(&join_mu);
    worker = std::thread([this] { Run(); });
  }

  void Send(std::vector<float> inputs, int steps, Callback callback);
  void Flush();
  absl::Status Close();

  // Reactions of the current call.
  void OnReadDone(StreamCall* c, bool ok);
  void OnWriteDone(StreamCall* c, bool ok);
  void OnCallDone(const grpc::Status& status);

  void Run();
  void StartCallLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void HandleCallEndLocked(const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void FailAllLocked(const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void WakeWorkerLocked(absl::Time needed_by) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Drain() ABSL_LOCKS_EXCLUDED(mu);

  const std::shared_ptr<Client::Shared> shared;
  const std::string session_id;
  const std::string create_model;  // empty: never create
  const int64_t create_version;

  mutable absl::Mutex mu;
  absl::CondVar worker_cv;  // the worker waits on it
  absl::CondVar flush_cv;   // Flush waits on it
  absl::Time worker_wake_at ABSL_GUARDED_BY(mu) = absl::InfinitePast();

  std::deque<Chunk> queue ABSL_GUARDED_BY(mu);
  std::deque<Delivery> outbox ABSL_GUARDED_BY(mu);
  bool delivering ABSL_GUARDED_BY(mu) = false;
  uint64_t next_request_id ABSL_GUARDED_BY(mu) = 1;
  int64_t next_step ABSL_GUARDED_BY(mu);
  uint64_t sent ABSL_GUARDED_BY(mu) = 0;       // chunks accepted by Send
  uint64_t delivered ABSL_GUARDED_BY(mu) = 0;  // callbacks returned

  // The current call and its state.
  StreamCall* call ABSL_GUARDED_BY(mu) = nullptr;
  bool call_ending ABSL_GUARDED_BY(mu) = false;  // its reads have ended
  bool write_pending ABSL_GUARDED_BY(mu) = false;
  bool awaiting ABSL_GUARDED_BY(mu) = false;  // front chunk on the wire
  bool writes_done ABSL_GUARDED_BY(mu) = false;
  bool cancelled_for_deadline ABSL_GUARDED_BY(mu) = false;
  absl::Time response_deadline ABSL_GUARDED_BY(mu) = absl::InfiniteFuture();

  // A call whose hold was removed, until its OnDone.
  bool call_done ABSL_GUARDED_BY(mu) = false;
  grpc::Status call_status ABSL_GUARDED_BY(mu);

  int failures ABSL_GUARDED_BY(mu) = 0;  // consecutive failed attempts
  absl::Time reconnect_at ABSL_GUARDED_BY(mu) = absl::InfinitePast();

  bool close_requested ABSL_GUARDED_BY(mu) = false;
  bool closed ABSL_GUARDED_BY(mu) = false;  // the worker has exited
  absl::Status final_status ABSL_GUARDED_BY(mu);

  absl::Mutex join_mu;
  std::thread worker ABSL_GUARDED_BY(join_mu);
};

namespace {

// One attempt of the Stream call; deletes itself in OnDone. The Core
// outlives it: the worker (and so Close) waits for OnCallDone, the last
// thing a call does.
class StreamCall final
    : public grpc::ClientBidiReactor<pb::StreamRequest, pb::StreamResponse> {
 public:
  explicit StreamCall(StreamingSession::Core* core) : core_(core) {}

  void OnReadDone(bool ok) override { core_->OnReadDone(this, ok); }
  void OnWriteDone(bool ok) override { core_->OnWriteDone(this, ok); }
  void OnDone(const grpc::Status& status) override {
    StreamingSession::Core* const core = core_;
    // The context holds a reference to the channel: release it while the
    // Core still holds another, so that the channel is never destroyed on
    // a gRPC thread. After OnCallDone the session may be gone at once.
    delete this;
    core->OnCallDone(status);
  }

  grpc::ClientContext context;
  pb::StreamRequest request;    // the write in progress
  pb::StreamResponse response;  // the read in progress

 private:
  StreamingSession::Core* const core_;
};

}  // namespace

void StreamingSession::Core::WakeWorkerLocked(absl::Time needed_by) {
  if (needed_by < worker_wake_at) worker_cv.Signal();
}

void StreamingSession::Core::Send(std::vector<float> inputs, int steps,
                                  Callback callback) {
  {
    absl::MutexLock lock(&mu);
    if (!close_requested) {
      Chunk chunk;
      chunk.request_id = next_request_id++;
      chunk.local_error = internal::CheckChunk(inputs, steps);
      chunk.inputs = std::move(inputs);
      chunk.steps = steps;
      chunk.callback = std::move(callback);
      queue.push_back(std::move(chunk));
      ++sent;
      MaybeWriteLocked();
      if (call == nullptr) WakeWorkerLocked(absl::Now());
      callback = nullptr;
    }
  }
  if (callback) {
    callback(absl::FailedPreconditionError(
        absl::StrCat("the stream of session \"", session_id, "\" is closed")));
    return;
  }
  Drain();
}

// Writes the front chunk if the call is idle; moves chunks refused locally
// to the outbox when they reach the front.
void StreamingSession::Core::MaybeWriteLocked() {
  while (!awaiting && !queue.empty() && !queue.front().local_error.ok()) {
    Chunk& chunk = queue.front();
    outbox.push_back({std::move(chunk.callback), chunk.local_error});
    queue.pop_front();
  }
  if (call == nullptr || call_ending || writes_done || awaiting ||
      write_pending || queue.empty()) {
    return;
  }
  Chunk& chunk = queue.front();
  if (!chunk.first_step.has_value()) chunk.first_step = next_step;
  pb::StreamRequest& request = call->request;
  request.Clear();
  request.set_request_id(chunk.request_id);
  request.set_session_id(session_id);
  internal::ToProto(chunk.inputs, chunk.steps, request.mutable_inputs());
  request.set_first_step(*chunk.first_step);
  if (!create_model.empty()) {
    request.set_create_model(create_model);
    request.set_create_version(create_version);
  }
  write_pending = true;
  awaiting = true;
  response_deadline = absl::Now() + absl::FromChrono(shared->options.deadline);
  call->StartWrite(&request);
  WakeWorkerLocked(response_deadline);
}

void StreamingSession::Core::OnWriteDone(StreamCall* c, bool ok) {
  {
    absl::MutexLock lock(&mu);
    if (c != call) return;  // a call the worker has already let go
    write_pending = false;
    // !ok: the stream is broken; the read side ends too and the worker
    // resends. Otherwise a response that beat this reaction may have left
    // the next chunk waiting for this write to complete.
    if (ok) MaybeWriteLocked();
    if (close_requested) worker_cv.Signal();
  }
  Drain();
}

void StreamingSession::Core::OnReadDone(StreamCall* c, bool ok) {
  {
    absl::MutexLock lock(&mu);
    if (!ok) {
      call_ending = true;  // the worker finishes the call
      worker_cv.Signal();
      return;
    }
    pb::StreamResponse& response = c->response;
    if (awaiting && !queue.empty() &&
        response.request_id() == queue.front().request_id) {
      Chunk chunk = std::move(queue.front());
      queue.pop_front();
      awaiting = false;
      failures = 0;
      absl::StatusOr<StepResult> result;
      if (response.has_error() && response.error().code() != 0) {
        result =
            absl::Status(static_cast<absl::StatusCode>(response.error().code()),
                         response.error().message());
      } else {
        next_step = response.next_step();
        StepResult step;
        step.steps = chunk.steps;
        step.first_step = *chunk.first_step;
        step.next_step = response.next_step();
        step.replayed = response.replayed();
        absl::Status shape =
            internal::OutputsFromProto(response.mutable_outputs(), chunk.steps,
                                       &step.outputs, &step.output_size);
        if (shape.ok()) {
          result = std::move(step);
        } else {
          result = shape;
        }
      }
      outbox.push_back({std::move(chunk.callback), std::move(result)});
      MaybeWriteLocked();
      if (close_requested) worker_cv.Signal();
    }
    // Any other response answers nothing we are waiting for; ignore it.
  }
  Drain();
  c->StartRead(&c->response);
}

// The last access of a call to the Core.
void StreamingSession::Core::OnCallDone(const grpc::Status& status) {
  absl::MutexLock lock(&mu);
  call_done = true;
  call_status = status;
  worker_cv.Signal();
}

void StreamingSession::Core::Drain() {
  mu.Lock();
  if (delivering) {  // another thread is delivering; it will see ours too
    mu.Unlock();
    return;
  }
  delivering = true;
  while (!outbox.empty()) {
    Delivery d = std::move(outbox.front());
    outbox.pop_front();
    mu.Unlock();
    if (d.callback) d.callback(std::move(d.result));
    mu.Lock();
    ++delivered;
    flush_cv.SignalAll();
  }
  delivering = false;
  mu.Unlock();
}

void StreamingSession::Core::StartCallLocked() {
  auto* c = new StreamCall(this);
  shared->stub->async()->Stream(&c->context, c);
  // The worker's hold: keeps the call alive (no OnDone) while other threads
  // may start writes on it; removed once its reads have ended.
  c->AddHold();
  c->StartRead(&c->response);
  call = c;
  call_ending = false;
  write_pending = false;
  awaiting = false;
  writes_done = false;
  cancelled_for_deadline = false;
  call_done = false;
  MaybeWriteLocked();
  c->StartCall();
}

void StreamingSession::Core::FailAllLocked(const absl::Status& status) {
  for (Chunk& chunk : queue) {
    outbox.push_back({std::move(chunk.callback),
                      chunk.local_error.ok() ? status : chunk.local_error});
  }
  queue.clear();
}

// Decides what the end of a call means for the chunks still pending.
void StreamingSession::Core::HandleCallEndLocked(const grpc::Status& status) {
  const bool deadline_hit = cancelled_for_deadline;
  awaiting = false;
  write_pending = false;
  writes_done = false;
  cancelled_for_deadline = false;
  if (queue.empty()) {
    // Nothing lost. A stream that ends while idle is simply reopened when
    // there is work again; only the end of a Close is reported.
    if (close_requested && deadline_hit) {
      final_status = absl::DeadlineExceededError(absl::StrCat(
          "the server did not end the stream of session \"", session_id,
          "\" within ", shared->options.deadline.count(), " ms"));
    } else if (close_requested && !status.ok()) {
      final_status = internal::FromGrpc(status);
    }
    return;
  }
  absl::Status error;
  if (deadline_hit) {
    error = absl::DeadlineExceededError(
        absl::StrCat("no response from the server for session \"", session_id,
                     "\" within ", shared->options.deadline.count(), " ms"));
  } else if (status.ok()) {
    error = absl::UnavailableError(
        absl::StrCat("the server ended the stream of session \"", session_id,
                     "\" before answering"));
  } else {
    error = internal::FromGrpc(status);
  }
  if (deadline_hit || status.ok() || Retryable(status)) {
    ++failures;
    if (failures <= shared->options.max_retries) {
      reconnect_at = absl::Now() + absl::FromChrono(internal::Backoff(
                                       shared->options, failures));
      return;  // the front chunk is resent with its first_step
    }
  }
  FailAllLocked(error);
  failures = 0;
  reconnect_at = absl::InfinitePast();
}

void StreamingSession::Core::Run() {
  mu.Lock();
  while (true) {
    if (call == nullptr) MaybeWriteLocked();  // refused chunks to the outbox
    if (!outbox.empty() && !delivering) {
      mu.Unlock();
      Drain();
      mu.Lock();
      continue;
    }
    if (call == nullptr) {
      if (queue.empty()) {
        if (close_requested) break;
        worker_wake_at = absl::InfiniteFuture();
        worker_cv.Wait(&mu);
        worker_wake_at = absl::InfinitePast();
        continue;
      }
      const absl::Time now = absl::Now();
      if (now < reconnect_at) {
        worker_wake_at = reconnect_at;
        worker_cv.WaitWithDeadline(&mu, reconnect_at);
        worker_wake_at = absl::InfinitePast();
        continue;
      }
      StartCallLocked();
      continue;
    }

    if (call_ending) {
      StreamCall* c = call;
      call = nullptr;
      mu.Unlock();
      c->RemoveHold();  // OnDone follows once its last reaction has run
      mu.Lock();
      while (!call_done) worker_cv.Wait(&mu);
      call_done = false;
      HandleCallEndLocked(call_status);
      mu.Unlock();
      Drain();
      mu.Lock();
      continue;
    }

    const absl::Time now = absl::Now();
    if ((awaiting || writes_done) && !cancelled_for_deadline &&
        now >= response_deadline) {
      // No answer in time: treat the stream as broken and resend.
      cancelled_for_deadline = true;
      call->context.TryCancel();
    }
    if (close_requested && queue.empty() && !awaiting && !write_pending &&
        !writes_done) {
      writes_done = true;  // the server ends the stream after this
      response_deadline =
          absl::Now() + absl::FromChrono(shared->options.deadline);
      call->StartWritesDone();
    }
    worker_wake_at = (awaiting || writes_done) && !cancelled_for_deadline
                         ? response_deadline
                         : absl::InfiniteFuture();
    worker_cv.WaitWithDeadline(&mu, worker_wake_at);
    worker_wake_at = absl::InfinitePast();
  }
  closed = true;
  flush_cv.SignalAll();
  mu.Unlock();
}

void StreamingSession::Core::Flush() {
  absl::MutexLock lock(&mu);
  const uint64_t target = sent;
  while (delivered < target) flush_cv.Wait(&mu);
}

absl::Status StreamingSession::Core::Close() {
  Flush();
  {
    absl::MutexLock lock(&mu);
    if (!close_requested) {
      close_requested = true;
      worker_cv.Signal();
    }
  }
  {
    absl::MutexLock lock(&join_mu);  // Close may race with Close
    if (worker.joinable() && worker.get_id() != std::this_thread::get_id()) {
      worker.join();
    }
  }
  Flush();  // chunks sent while closing
  absl::MutexLock lock(&mu);
  return final_status;
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
  core_->Send(std::move(inputs), steps, std::move(on_result));
}

std::future<absl::StatusOr<StepResult>> StreamingSession::Send(
    std::vector<float> inputs, int steps) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<StepResult>>>();
  std::future<absl::StatusOr<StepResult>> future = promise->get_future();
  core_->Send(std::move(inputs), steps,
              [promise](absl::StatusOr<StepResult> result) {
                promise->set_value(std::move(result));
              });
  return future;
}

void StreamingSession::Flush() { core_->Flush(); }

absl::Status StreamingSession::Close() { return core_->Close(); }

int64_t StreamingSession::next_step() const {
  absl::MutexLock lock(&core_->mu);
  return core_->next_step;
}

absl::StatusOr<std::unique_ptr<StreamingSession>> Client::OpenStream(
    const OpenSessionOptions& options) {
  bool created_by_stream = false;
  absl::StatusOr<SessionInfo> info = internal::FindOrCreate(
      *this, options, /*create_lazily=*/true, &created_by_stream);
  if (!info.ok()) return info.status();
  // Only a session that is missing now is created by the stream: one that
  // existed and later vanished must not come back silently at step 0.
  const std::string create_model = created_by_stream ? info->model : "";
  auto core = std::make_shared<StreamingSession::Core>(
      shared_, info->session_id, create_model, info->version, info->next_step);
  core->Start();
  return std::unique_ptr<StreamingSession>(new StreamingSession(
      std::move(core), info->session_id, info->model, info->version));
}

}  // namespace lstmserve::client
