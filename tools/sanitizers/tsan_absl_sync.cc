// ThreadSanitizer builds only: tells TSan about abseil's locks.
//
// Debian's abseil is not built with TSan, so absl::Mutex, CondVar and
// Notification synchronize inside an uninstrumented library (atomics and
// futexes TSan never sees): without help, every ABSL_GUARDED_BY member of
// ours looks racy. This file, linked into every executable of a
// LSTMSERVE_SANITIZE=thread build (exported with -rdynamic so that abseil's
// and gRPC's own calls bind here too), defines those classes' lock, unlock
// and wait functions: each calls abseil's own (dlsym RTLD_NEXT) and records
// the happens-before edge TSan would have seen in an instrumented abseil
// (__tsan_release before a lock is given up, __tsan_acquire after it is
// taken). It changes no behaviour; it only makes TSan see what abseil does.
//
// Reader locks are recorded like writer locks, which orders readers with one
// another as well: that can only hide a race between two readers, which
// read only.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/base/options.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);

namespace {

#define LSTMSERVE_STR2(x) #x
#define LSTMSERVE_STR(x) LSTMSERVE_STR2(x)

// abseil's definition of a function mangled as _ZN[K]4absl<ns><suffix>,
// where <ns> is the inline namespace of this abseil (the "S0_" references
// in the suffixes are to it).
void* Real(bool is_const, const char* suffix) {
  const std::string ns = LSTMSERVE_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  const std::string name = std::string(is_const ? "_ZNK4absl" : "_ZN4absl") +
                           std::to_string(ns.size()) + ns + suffix;
  void* f = dlsym(RTLD_NEXT, name.c_str());
  if (f == nullptr) {
    std::fprintf(stderr, "tsan_absl_sync: %s not found in abseil\n",
                 name.c_str());
    std::abort();
  }
  return f;
}

template <typename Fn>
Fn RealFn(bool is_const, const char* suffix) {
  return reinterpret_cast<Fn>(Real(is_const, suffix));
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

#define LSTMSERVE_REAL(type, is_const, suffix) \
  static const auto real = RealFn<type>(is_const, suffix)

void Mutex::Lock() {
  LSTMSERVE_REAL(void (*)(Mutex*), false, "5Mutex4LockEv");
  real(this);
  __tsan_acquire(this);
}

void Mutex::ReaderLock() {
  LSTMSERVE_REAL(void (*)(Mutex*), false, "5Mutex10ReaderLockEv");
  real(this);
  __tsan_acquire(this);
}

bool Mutex::TryLock() {
  LSTMSERVE_REAL(bool (*)(Mutex*), false, "5Mutex7TryLockEv");
  const bool locked = real(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

bool Mutex::ReaderTryLock() {
  LSTMSERVE_REAL(bool (*)(Mutex*), false, "5Mutex13ReaderTryLockEv");
  const bool locked = real(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::Unlock() {
  LSTMSERVE_REAL(void (*)(Mutex*), false, "5Mutex6UnlockEv");
  __tsan_release(this);
  real(this);
}

void Mutex::ReaderUnlock() {
  LSTMSERVE_REAL(void (*)(Mutex*), false, "5Mutex12ReaderUnlockEv");
  __tsan_release(this);
  real(this);
}

void Mutex::LockWhen(const Condition& cond) {
  LSTMSERVE_REAL(void (*)(Mutex*, const Condition&), false,
                 "5Mutex8LockWhenERKNS0_9ConditionE");
  real(this, cond);
  __tsan_acquire(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  LSTMSERVE_REAL(void (*)(Mutex*, const Condition&), false,
                 "5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  real(this, cond);
  __tsan_acquire(this);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  LSTMSERVE_REAL(bool (*)(Mutex*, const Condition&, Duration), false,
                 "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const bool met = real(this, cond, timeout);
  __tsan_acquire(this);  // held either way
  return met;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  LSTMSERVE_REAL(bool (*)(Mutex*, const Condition&, Time), false,
                 "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const bool met = real(this, cond, deadline);
  __tsan_acquire(this);
  return met;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  LSTMSERVE_REAL(
      bool (*)(Mutex*, const Condition&, Duration), false,
      "5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const bool met = real(this, cond, timeout);
  __tsan_acquire(this);
  return met;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  LSTMSERVE_REAL(
      bool (*)(Mutex*, const Condition&, Time), false,
      "5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const bool met = real(this, cond, deadline);
  __tsan_acquire(this);
  return met;
}

// Await and CondVar waits give the lock up while they wait and hold it
// again when they return.
void Mutex::Await(const Condition& cond) {
  LSTMSERVE_REAL(void (*)(Mutex*, const Condition&), false,
                 "5Mutex5AwaitERKNS0_9ConditionE");
  __tsan_release(this);
  real(this, cond);
  __tsan_acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  LSTMSERVE_REAL(bool (*)(Mutex*, const Condition&, Duration), false,
                 "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  __tsan_release(this);
  const bool met = real(this, cond, timeout);
  __tsan_acquire(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  LSTMSERVE_REAL(bool (*)(Mutex*, const Condition&, Time), false,
                 "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  __tsan_release(this);
  const bool met = real(this, cond, deadline);
  __tsan_acquire(this);
  return met;
}

void CondVar::Wait(Mutex* mu) {
  LSTMSERVE_REAL(void (*)(CondVar*, Mutex*), false,
                 "7CondVar4WaitEPNS0_5MutexE");
  __tsan_release(mu);
  real(this, mu);
  __tsan_acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  LSTMSERVE_REAL(bool (*)(CondVar*, Mutex*, Duration), false,
                 "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  __tsan_release(mu);
  const bool timed_out = real(this, mu, timeout);
  __tsan_acquire(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  LSTMSERVE_REAL(bool (*)(CondVar*, Mutex*, Time), false,
                 "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  __tsan_release(mu);
  const bool timed_out = real(this, mu, deadline);
  __tsan_acquire(mu);
  return timed_out;
}

void Notification::Notify() {
  LSTMSERVE_REAL(void (*)(Notification*), false, "12Notification6NotifyEv");
  __tsan_release(this);
  real(this);
}

void Notification::WaitForNotification() const {
  LSTMSERVE_REAL(void (*)(const Notification*), true,
                 "12Notification19WaitForNotificationEv");
  real(this);
  __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  LSTMSERVE_REAL(
      bool (*)(const Notification*, Duration), true,
      "12Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  const bool notified = real(this, timeout);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  LSTMSERVE_REAL(bool (*)(const Notification*, Time), true,
                 "12Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  const bool notified = real(this, deadline);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
