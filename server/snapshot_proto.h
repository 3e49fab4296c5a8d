// A session snapshot (ExportSession's answer, ImportSession's request) in
// wire and core terms. Decoding takes a client's message, which may be
// hostile: shapes are checked here, every other field by the core
// (ValidateSnapshot, server/core/validation.h). Split from the service so
// that tests/fuzz/ can reach it without a server.
//
// Thread-safety: pure functions.
#pragma once

#include "absl/status/statusor.h"
#include "lstmserve/v1/lstmserve.pb.h"
#include "model/model.h"
#include "server/core/types.h"

namespace lstmserve::server {

// INVALID_ARGUMENT unless each replay chunk (or, without replay, the
// last_inputs/last_outputs pair) has shape [T, width] for inputs and
// outputs with the same T in [1, 2^24].
absl::StatusOr<SessionSnapshot> SnapshotFromProto(const v1::SessionSnapshot& p);

// The snapshot as a message, its chunks shaped for model `m`; the last
// chunk is repeated in last_* for clients that predate `replay`.
void SnapshotToProto(const SessionSnapshot& snap, const model::Model& m,
                     v1::SessionSnapshot* out);

}  // namespace lstmserve::server
