// Where sessions outlive the process: the interface the core writes its
// checkpoints through, and reads back from when the server starts. The
// embedded default is SQLite in --state-dir (server/store/); a store shared
// by several replicas can implement the same interface later without the
// core changing.
//
// A session is stored as one record, keyed by its id. Each session the
// server creates gets a fresh random `incarnation`, so that writes of a
// closed session can never touch a later session that reuses its id: an
// update or delete applies only to the record of the same incarnation.
//
// Thread-safety: an implementation is used by one thread at a time (the
// core's StoreWriter thread, or the server's start-up before that thread
// exists); it need not be thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/core/types.h"

namespace lstmserve::server {

// Everything the core needs to bring a session back.
struct SessionRecord {
  std::string id;
  std::string owner;         // the identity the session belongs to
  uint64_t incarnation = 0;  // random, fixed when the session was created
  std::string model;
  int64_t version = 0;
  int64_t next_step = 0;
  std::vector<float> state;
  std::vector<float> initial_state;  // what a reset returns to; empty: zeros
  std::vector<ReplayChunk> replay;   // oldest first, ends at next_step
  // The replay record as the session holds it (its chunks never change
  // once applied); when not empty, a store writes these instead of
  // `replay`: a checkpoint shares the chunks instead of copying them, and
  // the store encodes them on its own thread. A store may skip a chunk
  // whose nonzero `serial` it wrote before. Reads fill `replay`.
  std::vector<std::shared_ptr<const ReplayChunk>> replay_chunks;
  int64_t created_unix_us = 0;
  int64_t last_used_unix_us = 0;
};

struct StoreWrite {
  enum class Kind {
    // The record replaces whatever is stored under its id (a session that
    // was just created, imported or restored for the first time).
    kPut,
    // The record replaces the stored one only if that has the same
    // incarnation (a checkpoint of a session already stored).
    kUpdate,
    // Removes the stored record of the same id and incarnation.
    kDelete,
  };
  Kind kind = Kind::kUpdate;
  SessionRecord record;  // kDelete: only id and incarnation are read
};

class StateStore {
 public:
  virtual ~StateStore() = default;

  // Applies the writes in order, in one transaction: all of them or none.
  virtual absl::Status Apply(std::span<const StoreWrite> writes) = 0;

  struct Contents {
    std::vector<SessionRecord> records;
    // A line for each stored record that could not be read (it is left
    // where it is).
    std::vector<std::string> problems;
  };
  // Every stored session, ordered by id.
  virtual absl::StatusOr<Contents> LoadAll() = 0;

  // Where the records live, for log lines ("/var/lib/lstm/sessions.db").
  virtual std::string Describe() const = 0;
};

}  // namespace lstmserve::server
