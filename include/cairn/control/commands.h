// The control command table: method name → handler. Each handler copies what
// it needs out of the request before any asynchronous step (aptly #1573: a
// recycled request context) and answers its Reply exactly once. Loop thread
// only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cairn/control/server.h"
#include "cairn/core/json.h"

namespace cairn::control {

// What the control plane may ask of the running node; implemented by the
// daemon's composition root.
class NodeView {
 public:
  virtual ~NodeView() = default;
  // The "status" result object (docs/control.md).
  virtual Json StatusJson() = 0;
};

class Commands final : public Dispatcher {
 public:
  explicit Commands(NodeView& node);
  void Handle(Request request, Reply reply) override;
  // Every method name, for "hello" and `cairn --help`.
  static std::vector<std::string> Methods();

 private:
  NodeView& node_;
};

}  // namespace cairn::control
