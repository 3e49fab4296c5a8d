// The one place where absl::Status becomes grpc::Status (TF Serving's
// convention): everything below the service edge speaks absl::Status.
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace lstmserve::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace lstmserve::server
