// Many sessions at once: 200 sessions driven concurrently from 8 client
// threads, each thread multiplexing its sessions over one stream in random
// chunk sizes, every session checked against its own reference.
#include <map>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "e2e_fixture.h"
#include "server/core/session_manager.h"

namespace lstmserve::e2e {
namespace {

struct SessionPlan {
  std::string id;
  std::string model;
  std::vector<float> inputs;
  std::vector<int> chunks;
  size_t next_chunk = 0;
  size_t t = 0;
  std::vector<float> outputs;
};

TEST(ConcurrencyTest, TwoHundredSessionsFromEightThreadsEachMatchItsReference) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  constexpr int kThreads = 8, kSessionsPerThread = 25, kSteps = 40;
  std::vector<std::vector<SessionPlan>> plans(kThreads);
  for (int th = 0; th < kThreads; ++th) {
    std::mt19937 rng(100 + th);
    for (int s = 0; s < kSessionsPerThread; ++s) {
      SessionPlan p;
      p.id = absl::StrCat("t", th, "-s", s);
      p.model = (s % 2) ? "elnino" : "sunspots";
      p.inputs = SeriesInputs(kSteps, 1000 * th + s);
      for (int left = kSteps; left > 0;) {
        const int len = std::min<int>(left, 1 + rng() % 6);
        p.chunks.push_back(len);
        left -= len;
      }
      plans[th].push_back(std::move(p));
    }
  }

  std::vector<std::thread> threads;
  std::vector<std::string> failures(kThreads);
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      auto stub = Connect(server->address());
      auto ctx = Ctx(60);
      auto stream = stub->Stream(ctx.get());
      std::vector<SessionPlan>& mine = plans[th];
      uint64_t request_id = 0;
      std::map<uint64_t, SessionPlan*> pending;
      bool more = true;
      while (more && failures[th].empty()) {
        // One round: the next chunk of every unfinished session, then all
        // the responses, which may come back in any order.
        more = false;
        for (SessionPlan& p : mine) {
          if (p.next_chunk == p.chunks.size()) continue;
          const int len = p.chunks[p.next_chunk++];
          v1::StreamRequest req;
          req.set_request_id(++request_id);
          req.set_session_id(p.id);
          req.set_create_model(p.model);
          req.set_first_step(p.t);
          *req.mutable_inputs() =
              MakeTensor(std::vector<float>(p.inputs.begin() + p.t,
                                            p.inputs.begin() + p.t + len),
                         1);
          p.t += len;
          pending[request_id] = &p;
          if (!stream->Write(req)) failures[th] = "write failed";
          more = true;
        }
        while (!pending.empty() && failures[th].empty()) {
          v1::StreamResponse resp;
          if (!stream->Read(&resp)) {
            failures[th] = "read failed";
            break;
          }
          auto it = pending.find(resp.request_id());
          if (it == pending.end() || resp.has_error()) {
            failures[th] = "bad response: " + resp.error().message();
            break;
          }
          // Chunks of one session are sent one per round, so appending in
          // response order keeps each session's outputs in step order.
          const auto v = Values(resp.outputs());
          it->second->outputs.insert(it->second->outputs.end(), v.begin(),
                                     v.end());
          pending.erase(it);
        }
      }
      stream->WritesDone();
      grpc::Status s = stream->Finish();
      if (!s.ok() && failures[th].empty()) failures[th] = s.error_message();
    });
  }
  for (std::thread& t : threads) t.join();
  for (int th = 0; th < kThreads; ++th) {
    ASSERT_TRUE(failures[th].empty())
        << "thread " << th << ": " << failures[th];
  }
  int checked = 0;
  for (const auto& mine : plans) {
    for (const SessionPlan& p : mine) {
      SCOPED_TRACE(p.id);
      ExpectClose(p.outputs, Reference(p.model, p.inputs));
      ++checked;
    }
  }
  EXPECT_EQ(checked, 200);
  EXPECT_EQ(server->core().sessions(), 200);
}

}  // namespace
}  // namespace lstmserve::e2e
