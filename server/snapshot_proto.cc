#include "server/snapshot_proto.h"

#include <vector>

#include "absl/strings/str_cat.h"

namespace lstmserve::server {
namespace {

void FillTensor(const std::vector<float>& values, int rows, int cols,
                v1::Tensor* t) {
  t->add_shape(rows);
  t->add_shape(cols);
  t->mutable_values()->Assign(values.begin(), values.end());
}

}  // namespace

absl::StatusOr<SessionSnapshot> SnapshotFromProto(
    const v1::SessionSnapshot& p) {
  SessionSnapshot snap;
  snap.id = p.session_id();
  snap.model = p.model();
  snap.version = p.version();
  snap.next_step = p.next_step();
  snap.state.assign(p.state().begin(), p.state().end());
  auto chunk = [](int64_t first_step, const v1::Tensor& in,
                  const v1::Tensor& out,
                  absl::string_view what) -> absl::StatusOr<ReplayChunk> {
    if (in.shape_size() != 2 || out.shape_size() != 2 ||
        in.shape(0) != out.shape(0) || in.shape(0) < 1 ||
        in.shape(0) > (int64_t{1} << 24)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "snapshot ", what,
          ": inputs and outputs must both have shape [T, width] with the "
          "same T >= 1"));
    }
    ReplayChunk c;
    c.first_step = first_step;
    c.steps = static_cast<int>(in.shape(0));
    c.inputs.assign(in.values().begin(), in.values().end());
    c.outputs.assign(out.values().begin(), out.values().end());
    return c;
  };
  if (p.replay_size() > 0) {
    for (int i = 0; i < p.replay_size(); ++i) {
      const v1::ReplayChunk& r = p.replay(i);
      absl::StatusOr<ReplayChunk> c =
          chunk(r.first_step(), r.inputs(), r.outputs(),
                absl::StrCat("replay[", i, "]"));
      if (!c.ok()) return c.status();
      snap.replay.push_back(*std::move(c));
    }
  } else if (p.last_inputs().shape_size() > 0 ||
             p.last_outputs().shape_size() > 0) {
    absl::StatusOr<ReplayChunk> c = chunk(p.last_first_step(), p.last_inputs(),
                                          p.last_outputs(), "last chunk");
    if (!c.ok()) return c.status();
    snap.replay.push_back(*std::move(c));
  }
  return snap;
}

void SnapshotToProto(const SessionSnapshot& snap, const model::Model& m,
                     v1::SessionSnapshot* out) {
  out->set_session_id(snap.id);
  out->set_model(snap.model);
  out->set_version(snap.version);
  out->set_next_step(snap.next_step);
  out->mutable_state()->Assign(snap.state.begin(), snap.state.end());
  for (const ReplayChunk& c : snap.replay) {
    v1::ReplayChunk* r = out->add_replay();
    r->set_first_step(c.first_step);
    FillTensor(c.inputs, c.steps, m.input_size(), r->mutable_inputs());
    FillTensor(c.outputs, c.steps, m.output_size(), r->mutable_outputs());
  }
  if (!snap.replay.empty()) {
    const ReplayChunk& last = snap.replay.back();
    out->set_last_first_step(last.first_step);
    FillTensor(last.inputs, last.steps, m.input_size(),
               out->mutable_last_inputs());
    FillTensor(last.outputs, last.steps, m.output_size(),
               out->mutable_last_outputs());
  }
}

}  // namespace lstmserve::server
